"""Helpers for proxies made by a store."""

from __future__ import annotations

from typing import Any

from proxystore.proxy import Proxy, get_factory, is_resolved
from proxystore.store.exceptions import ProxyStoreFactoryError
from proxystore.store.factory import StoreFactory
from proxystore.store.types import ConnectorKeyT

__all__ = ["get_key", "resolve_async"]


def _store_factory(proxy: Proxy[Any]) -> StoreFactory[Any, Any]:
    factory = get_factory(proxy)
    if not isinstance(factory, StoreFactory):
        raise ProxyStoreFactoryError(
            f"The proxy's factory is a {type(factory).__name__}, not a StoreFactory: "
            "it was not made by a store, so it has no key."
        )
    return factory


def get_key(proxy: Proxy[Any]) -> ConnectorKeyT:
    """Return the store key behind ``proxy`` (without resolving it).

    Raises:
        ProxyStoreFactoryError: if the proxy was not made by a store.
    """
    return _store_factory(proxy).key


def resolve_async(proxy: Proxy[Any]) -> None:
    """Start fetching ``proxy``'s target in a background thread.

    The proxy's first use then waits only for what is left of the fetch. Does
    nothing for an already resolved proxy.

    Raises:
        ProxyStoreFactoryError: if the proxy was not made by a store.
    """
    factory = _store_factory(proxy)
    if not is_resolved(proxy):
        factory.resolve_async()
