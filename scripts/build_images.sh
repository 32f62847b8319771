#!/usr/bin/env bash
# Build the local images the integration tests run in Testcontainers mode: each is a
# host binary (redis-server, valkey-server, tansu) plus the libraries ldd lists,
# imported into the engine at $DOCKER_HOST. Images already present are kept.
# Usage: scripts/build_images.sh [redis-server|valkey-server|tansu ...]
set -euo pipefail
cd "$(dirname "$0")/.."
UV="$(command -v uv 2>/dev/null || echo "python3 -m uv")"
exec $UV run --frozen python -m tests.integration.harness "$@"
