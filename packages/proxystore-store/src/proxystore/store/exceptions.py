"""Errors raised by stores and store factories.

::

    StoreError
    ├── StoreExistsError            a store with that name is already registered
    ├── ProxyStoreFactoryError      a proxy's factory is not a StoreFactory
    └── RefCountNotSupportedError   (also a TypeError) connector cannot count holders
    ProxyResolveMissingKeyError     (also a KeyError) no object at a proxy's key
    NonProxiableTypeError           (also a TypeError) None/bool cannot be proxied

``ProxyResolveMissingKeyError`` subclasses `KeyError` because it *is* a
missing key: code that already catches ``KeyError`` around a lookup keeps working.
When it is raised while a proxy resolves, the proxy wraps it: the caller sees
`proxystore.proxy.ProxyResolveError` whose ``cause`` is this error.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "NonProxiableTypeError",
    "ProxyResolveMissingKeyError",
    "ProxyStoreFactoryError",
    "RefCountNotSupportedError",
    "StoreError",
    "StoreExistsError",
]


class StoreError(Exception):
    """Base class of the store errors that are not also a builtin lookup error."""


class StoreExistsError(StoreError):
    """Raised when registering a store whose name is already registered."""


class ProxyStoreFactoryError(StoreError):
    """Raised when a proxy's factory is not a store factory (so no store or key)."""


class RefCountNotSupportedError(StoreError, TypeError):
    """Raised when ``refcount=True`` is asked of a connector that cannot count holders.

    See `proxystore.store.refcount` for the connectors that can.
    """


class ProxyResolveMissingKeyError(KeyError):
    """Raised when a store factory finds no object at its key.

    Args:
        key: The key that was looked up.
        store_type: Type of the store searched.
        store_name: Name of the store searched.
    """

    def __init__(self, key: Any, store_type: type[Any], store_name: str) -> None:
        self.key = key
        self.store_type = store_type
        self.store_name = store_name
        super().__init__(key)

    def __str__(self) -> str:
        # KeyError.__str__ would print only repr(key); say what was missing and where.
        return (
            f"No object at key={self.key!r} in "
            f"{self.store_type.__name__}(name={self.store_name!r}): it was never "
            "stored there, or it was evicted while proxies of it still existed."
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # The default reduce would call __init__ with args=(key,) only.
        return (type(self), (self.key, self.store_type, self.store_name))


class NonProxiableTypeError(TypeError):
    """Raised when asked to proxy ``None`` or a ``bool`` (identity would break)."""
