"""Byte-level storage connectors.

Import a connector from its own module (``proxystore.connectors.file``,
``proxystore.connectors.redis``, ...); this package itself exports nothing so that
importing it never pulls in a backend's client library.
"""

from __future__ import annotations

__all__: list[str] = []
