"""Small helpers shared by the built-in connectors.

``proxystore.utils`` provides the public versions of these; this private module keeps
the connectors importable while that package is being written and gives the
connectors one place to change when switching over.
"""

from __future__ import annotations

import importlib
import socket
from typing import Any

__all__ = ["get_object_path", "hostname", "import_from_path"]


def get_object_path(obj: Any) -> str:
    """Return the dotted import path of a class or function (``module.QualName``)."""
    return f"{obj.__module__}.{obj.__qualname__}"


def import_from_path(path: str) -> Any:
    """Import and return the object named by a dotted path.

    Raises:
        ImportError: if ``path`` has no module part or the module/attribute is missing.
    """
    module_path, _, name = path.rpartition(".")
    if not module_path:
        raise ImportError(f"Object path {path!r} must have a module part.")
    module = importlib.import_module(module_path)
    try:
        return getattr(module, name)
    except AttributeError as exc:
        raise ImportError(f"Module {module_path!r} has no attribute {name!r}.") from exc


def hostname() -> str:
    """Return this machine's host name."""
    return socket.gethostname()
