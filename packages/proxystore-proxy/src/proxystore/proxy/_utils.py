"""Helpers that inspect or drive a proxy without touching its target by accident."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from proxystore.proxy import Proxy
    from proxystore.proxy._proxy import FactoryType

__all__ = [
    "ProxyLocker",
    "extract",
    "get_factory",
    "is_resolved",
    "resolve",
]

T = TypeVar("T")


def get_factory(proxy: Proxy[T]) -> FactoryType[T]:
    """Return the factory of `proxy` (never resolves)."""
    factory: FactoryType[T] = object.__getattribute__(proxy, "__proxy_factory__")
    return factory


def extract(proxy: Proxy[T]) -> T:
    """Return the target of `proxy`, resolving it first if needed.

    Raises:
        ProxyResolveError: The factory raised while resolving.
    """
    return proxy.__proxy_wrapped__


def is_resolved(proxy: Proxy[T]) -> bool:
    """Whether `proxy` has its target cached (never resolves)."""
    return proxy.__proxy_resolved__


def resolve(proxy: Proxy[T]) -> None:
    """Resolve `proxy` now (no-op when already resolved).

    Raises:
        ProxyResolveError: The factory raised while resolving.
    """
    proxy.__proxy_wrapped__  # noqa: B018 - the read itself resolves


class ProxyLocker(Generic[T]):
    """A container that keeps a proxy from being resolved by accident.

    Code that inspects attributes (debuggers, serializers walking objects) could
    resolve a proxy stored in a plain attribute. The locker hides it: reading
    `locker._proxy` raises `AttributeError`; only `unlock()` returns the proxy.
    A locker pickles with the proxy inside (and the proxy, as always, pickles
    without its target).

    Args:
        proxy: The proxy to lock.
    """

    # A `__dict__` too: other attributes can be set on a locker, as in the reference.
    __slots__ = ("__dict__", "_proxy")

    def __init__(self, proxy: Proxy[T]) -> None:
        self._proxy = proxy

    def __getattribute__(self, name: str) -> Any:
        if name == "_proxy":
            raise AttributeError(
                "The proxy in a ProxyLocker is hidden: call unlock() to get it."
            )
        return super().__getattribute__(name)

    def __getstate__(self) -> Proxy[T]:
        return self.unlock()

    def __setstate__(self, proxy: Proxy[T]) -> None:
        object.__setattr__(self, "_proxy", proxy)

    def unlock(self) -> Proxy[T]:
        """Return the locked proxy (without resolving it)."""
        proxy: Proxy[T] = object.__getattribute__(self, "_proxy")
        return proxy
