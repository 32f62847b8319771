"""ProxyStore: transparent object proxies over pluggable stores.

This module is the only one the ``proxystore`` install name ships: it gives the
namespace the ``proxystore.__version__`` that code written for the reference reads.
Everything else comes from the members (``proxystore-proxy``, ``proxystore-store``,
...), which ship no ``proxystore/__init__.py`` of their own.

Installed from wheels, every member unpacks into this same ``proxystore/``
directory. Installed in editable mode (the uv workspace), each member's
``proxystore/`` lives in its own ``sys.path`` entry; `pkgutil.extend_path` adds
them all to ``__path__``, so every ``proxystore.*`` module is found whichever entry it
comes from. Without the install name, ``proxystore`` stays a plain PEP 420 namespace
(with no ``__version__``).

``__version__`` is the ``proxystore`` distribution's version, read from the installed
metadata on first access (not at import: reading metadata scans ``sys.path``).
"""

from __future__ import annotations

import pkgutil

__all__ = ["__version__"]

__path__ = pkgutil.extend_path(__path__, __name__)


def __getattr__(name: str) -> str:
    if name == "__version__":
        from importlib.metadata import version

        found = version("proxystore")
        globals()["__version__"] = found  # later reads skip this function
        return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
