"""Run a DIM server: ``python -m proxystore.connectors.dim zmq 127.0.0.1 5555``."""

from __future__ import annotations

import sys

from proxystore.connectors.dim.server import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
