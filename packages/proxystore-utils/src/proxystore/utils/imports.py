"""Turn objects into dotted import paths and back."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["get_object_path", "import_from_path"]


def get_object_path(obj: Any) -> str:
    """Return ``obj``'s fully qualified path, ``'<module>.<qualname>'``.

    Example:
        >>> from collections import OrderedDict
        >>> get_object_path(OrderedDict)
        'collections.OrderedDict'
    """
    return f"{obj.__module__}.{obj.__qualname__}"


def import_from_path(path: str) -> Any:
    """Import and return the object at the dotted ``path``.

    The longest importable module prefix is imported and the rest is resolved as
    attributes, so nested classes (``'pkg.mod.Outer.Inner'``) work too.

    Raises:
        ImportError: If ``path`` has no module part, no prefix of it is an
            importable module, or an attribute along the way is missing.
    """
    parts = path.split(".")
    if len(parts) < 2 or not all(parts):
        raise ImportError(
            f"Object path must contain at least one module and a name. Got {path!r}."
        )
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # Only "this prefix is not a module" means: try a shorter prefix.
            missing = exc.name or ""
            if module_name == missing or module_name.startswith(missing + "."):
                continue
            raise
        for attr in parts[split:]:
            try:
                obj = getattr(obj, attr)
            except AttributeError as exc:
                raise ImportError(
                    f"Cannot import {path!r}: {module_name!r} has no attribute "
                    f"path {'.'.join(parts[split:])!r}."
                ) from exc
        return obj
    raise ImportError(f"Cannot import {path!r}: no module found in the path.")
