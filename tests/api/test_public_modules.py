"""Public classes and functions report the public module that exports them.

`Proxy.__module__ == "proxystore.proxy"`, not a private `_proxy` module: reprs,
tracebacks and pickles then name what a user imports (issue 14).
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
import warnings

import proxystore
from proxystore.proxy import Proxy, ProxyResolveError


def _public_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(proxystore.__path__, "proxystore."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts) or "mypy_plugin" in parts:
            continue
        names.append(info.name)
    return names


def test_exported_classes_and_functions_name_a_public_module() -> None:
    private = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in _public_modules():
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue  # an optional backend is not installed
            for attr in getattr(module, "__all__", []):
                obj = getattr(module, attr)
                if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                    continue
                if any(p.startswith("_") for p in obj.__module__.split(".")):
                    private.append(f"{name}.{attr} -> {obj.__module__}")
    assert private == []


def test_proxy_and_its_error_report_proxystore_proxy() -> None:
    assert Proxy.__module__ == "proxystore.proxy"
    assert ProxyResolveError.__module__ == "proxystore.proxy"
    error = pickle.loads(pickle.dumps(ProxyResolveError("failed", KeyError("k"))))
    assert isinstance(error, ProxyResolveError)
    assert f"{type(error).__module__}.{type(error).__qualname__}" == (
        "proxystore.proxy.ProxyResolveError"
    )
