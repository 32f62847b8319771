"""ProxyStore: transparent object proxies over pluggable stores.

This module is the only one the ``proxystore`` install name ships: it gives the
namespace the ``proxystore.__version__`` that code written for the reference reads.
Everything else comes from the members (``proxystore-proxy``, ``proxystore-store``,
...), which ship no ``proxystore/__init__.py`` of their own.

Installed from wheels, every member unpacks into this same ``proxystore/``
directory. Installed in editable mode (the uv workspace), each member's
``proxystore/`` lives in its own ``sys.path`` entry; like `pkgutil.extend_path`,
this module adds every ``proxystore/`` directory found on ``sys.path`` to
``__path__``, so every ``proxystore.*`` module is found whichever entry it comes from.
(It does so with two ``os`` calls per entry: importing `pkgutil` would add about
6 ms to every interpreter that imports ``proxystore``.) Without the install name,
``proxystore`` stays a plain PEP 420 namespace (with no ``__version__``).

``__version__`` is the ``proxystore`` distribution's version, read from the installed
metadata on first access (not at import: reading metadata scans ``sys.path``).
"""

from __future__ import annotations

__all__ = ["__version__"]


def _portions(first: list[str]) -> list[str]:
    """Return ``first`` plus every other ``proxystore/`` directory on ``sys.path``."""
    import os
    import sys

    found = list(first)
    seen = {os.path.abspath(path) for path in found}
    for entry in sys.path:
        if not isinstance(entry, str):
            continue
        candidate = os.path.abspath(os.path.join(entry, __name__))
        if candidate not in seen and os.path.isdir(candidate):
            seen.add(candidate)
            found.append(candidate)
    return found


__path__ = _portions(__path__)
del _portions


def __getattr__(name: str) -> str:
    if name == "__version__":
        from importlib.metadata import version

        found = version("proxystore")
        globals()["__version__"] = found  # later reads skip this function
        return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
