"""Every public module of the ``proxystore`` namespace declares an accurate ``__all__``.

Accurate means: every listed name exists, the list has no duplicates, and every public
class or function *defined* in the module is listed (ruff's RUF022 keeps it sorted).
Modules whose name has a ``_private`` part are skipped (a façade re-exports them).
"""

from __future__ import annotations

import importlib
import inspect
import pathlib
import pkgutil
import warnings
from types import ModuleType

import pytest

import proxystore.connectors
import proxystore.proxy

# Optional transports (UCX, Margo) import their client library lazily, so importing
# their modules works everywhere and they are checked like any other module.


def _public_modules() -> list[str]:
    names: set[str] = set()
    for root in ("proxystore",):
        # ``proxystore``'s __path__ spans every member (extended by the install
        # name's ``__init__``, or as a PEP 420 namespace without it).
        pkg = importlib.import_module(root)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{root}."):
            if any(part.startswith("_") for part in info.name.split(".")):
                continue
            names.add(info.name)
    return sorted(names)


def _import(name: str) -> ModuleType:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module(name)


MODULES = _public_modules()


def test_namespace_spans_every_member() -> None:
    expected = {
        "proxystore.proxy",
        "proxystore.factory",
        "proxystore.serialize",
        "proxystore.utils",
        "proxystore.warnings",
        "proxystore.connectors",
        "proxystore.store",
        "proxystore.stream",
    }
    assert expected <= set(MODULES)
    # Only the install name ships proxystore/__init__.py; no member does.
    top = importlib.import_module("proxystore")
    inits = [p for p in map(pathlib.Path, top.__path__) if (p / "__init__.py").exists()]
    assert [p.parents[1].name for p in inits] in ([], ["proxystore"])
    assert proxystore.proxy.__name__ == "proxystore.proxy"
    assert proxystore.connectors.__all__ == []


@pytest.mark.parametrize("name", MODULES)
def test_module_all_is_accurate(name: str) -> None:
    module = _import(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert isinstance(exported, list | tuple)
    assert len(set(exported)) == len(exported), f"{name}.__all__ has duplicates"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ lists undefined names {missing}"
    defined_here = [
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", None) == name
    ]
    unlisted = sorted(set(defined_here) - set(exported))
    assert not unlisted, f"{name} defines public {unlisted} missing from __all__"
