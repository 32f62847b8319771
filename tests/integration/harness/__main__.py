"""Build the local server images: ``python -m tests.integration.harness [name ...]``."""

from __future__ import annotations

import os

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

from .images import main

raise SystemExit(main())
