"""Finding a store by name or by proxy (the public face of the registry).

These two functions return a `Store`, so they sit above `base`; the registry itself
(`proxystore.store._registry`) holds stores as `StoreLike` and sits below it.
"""

from __future__ import annotations

from typing import Any, cast

from proxystore.proxy import Proxy, get_factory
from proxystore.store._registry import _get_or_create, _stores
from proxystore.store.base import Store
from proxystore.store.config import StoreConfig
from proxystore.store.exceptions import ProxyStoreFactoryError
from proxystore.store.factory import StoreFactory

__all__ = ["get_or_create_store", "get_store"]


def get_store(val: str | Proxy[Any]) -> Store[Any] | None:
    """Return the registered store named ``val``, or the store behind a proxy.

    For a proxy, the store is found through its factory, which creates and registers
    the store from its config when this process has none by that name.

    Returns:
        The store, or ``None`` when no store is registered under the name.

    Raises:
        ProxyStoreFactoryError: if ``val`` is a proxy not made by a store.
    """
    # Test for a proxy first: isinstance(proxy_of_a_str, str) would resolve it.
    if not isinstance(val, Proxy):
        return cast("Store[Any] | None", _stores.get(val))
    factory = get_factory(val)
    if not isinstance(factory, StoreFactory):
        raise ProxyStoreFactoryError(
            f"The proxy's factory is a {type(factory).__name__}, not a StoreFactory, "
            "so it belongs to no store."
        )
    return cast("Store[Any]", factory.get_store())


def get_or_create_store(
    store_config: StoreConfig, *, register: bool = True
) -> Store[Any]:
    """Return the store named ``store_config.name``, creating it if missing.

    Args:
        store_config: Config used to create the store when none is registered.
        register: Register the created store.

    Raises:
        ValueError: if the config names an unknown connector type.
    """
    return cast("Store[Any]", _get_or_create(store_config, register=register))
