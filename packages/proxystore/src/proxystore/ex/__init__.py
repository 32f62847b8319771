"""Extension modules (`proxystore.ex`), as with the reference's `proxystore-ex`.

The reference's ``proxystore.ex`` re-exports the separate ``proxystore-ex``
package; here its modules ship with the members (``proxystore.ex.connectors`` with
``proxystore-connectors``, ``proxystore.ex.plugins`` with ``proxystore-store``).
Like ``proxystore/__init__.py``, this module ships with the ``proxystore`` install
name: it gives ``proxystore.ex.__version__`` (the ``proxystore`` distribution's
version, read on first access), and adds every member's ``proxystore/ex/``
directory to ``__path__`` so each ``proxystore.ex.*`` module is found whichever
``sys.path`` entry it comes from (the workspace's editable installs).
"""

from __future__ import annotations

__all__ = ["__version__"]


def _portions(first: list[str]) -> list[str]:
    """Return ``first`` plus the ``ex/`` directory of every ``proxystore/`` portion."""
    import os

    import proxystore

    found = list(first)
    seen = {os.path.abspath(path) for path in found}
    for parent in proxystore.__path__:
        candidate = os.path.abspath(os.path.join(parent, "ex"))
        if candidate not in seen and os.path.isdir(candidate):
            seen.add(candidate)
            found.append(candidate)
    return found


__path__ = _portions(__path__)
del _portions


def __getattr__(name: str) -> str:
    if name == "__version__":
        import proxystore

        found: str = proxystore.__version__
        globals()["__version__"] = found  # later reads skip this function
        return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
