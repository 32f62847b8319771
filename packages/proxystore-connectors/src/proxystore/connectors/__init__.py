"""Byte-level storage connectors.

Import a connector from its own module (``proxystore.connectors.file``,
``proxystore.connectors.redis``, ...); this package itself exports nothing so that
importing it never pulls in a backend's client library.

Other distributions add connector modules to this package (``proxystore-endpoint``
ships ``proxystore.connectors.endpoint``): ``extend_path`` lets Python find them in
their own install location, so this distribution never depends on theirs.
"""

from __future__ import annotations

import pkgutil

__path__ = pkgutil.extend_path(__path__, __name__)

__all__: list[str] = []
