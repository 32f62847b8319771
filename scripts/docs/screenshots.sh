#!/usr/bin/env bash
# Screenshot pages of the built site (site/, from `make docs`) with headless Chromium.
#
#   scripts/docs/screenshots.sh [OUT_DIR] [PAGE...]
#
# Serves site/ over HTTP on a free 127.0.0.1 port (the search index and some assets do
# not load from file://), and writes OUT_DIR/<page>.png (default build/docs-shots/) for
# each PAGE (site-relative .html paths; default: the endpoints walk-through, the
# command line reference and the performance page). Installs Debian's `chromium`
# package when no `chromium` is on PATH. Every name but 127.0.0.1 resolves to nothing,
# so the shots never wait for the network (web fonts fall back to system fonts).
# SHOTS_WINDOW=WIDTH,HEIGHT sets the window (default 1280,2400: what a shot shows).
set -euo pipefail
window=${SHOTS_WINDOW:-1280,2400}

root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/build/docs-shots}
shift || true
pages=("$@")
if [ ${#pages[@]} -eq 0 ]; then
    pages=(connectors/endpoint.html reference/cli.html performance.html)
fi
site=$root/site
if [ ! -f "$site/index.html" ]; then
    echo "screenshots: $site/index.html is missing; run 'make docs' first" >&2
    exit 1
fi

if ! command -v chromium >/dev/null 2>&1; then
    echo "screenshots: installing Debian's chromium (apt-get)"
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get install -y --no-install-recommends chromium ||
        { "${sudo[@]}" apt-get update && "${sudo[@]}" apt-get install -y --no-install-recommends chromium; }
fi

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
profile=$(mktemp -d)
python3 -m http.server --bind 127.0.0.1 --directory "$site" "$port" >"$profile/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$profile"' EXIT
for _ in $(seq 100); do
    (: <>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done

mkdir -p "$out"
for page in "${pages[@]}"; do
    shot="$out/$(echo "${page%.html}" | tr '/' '-').png"
    chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
        --no-first-run --disable-component-update --disable-sync \
        --host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE 127.0.0.1" \
        --hide-scrollbars --virtual-time-budget=5000 \
        --user-data-dir="$profile/chromium" --window-size="$window" \
        --screenshot="$shot" "http://127.0.0.1:$port/$page" >"$profile/chromium.log" 2>&1 ||
        { cat "$profile/chromium.log" >&2; exit 1; }
    echo "screenshot: $shot"
done
