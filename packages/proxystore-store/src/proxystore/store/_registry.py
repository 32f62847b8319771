"""The process-wide registry of stores, keyed by name.

Proxies find their store here when they resolve: an unpickled proxy carries only its
store's config, and the first resolve in a process rebuilds the store from it and
registers it, so later proxies of the same store reuse one instance.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from proxystore.store.exceptions import ProxyStoreFactoryError, StoreExistsError

if TYPE_CHECKING:
    from proxystore.proxy import Proxy
    from proxystore.store.base import Store
    from proxystore.store.config import StoreConfig

# Reads are single dict lookups (atomic under the GIL) and take no lock: they sit on
# the resolve hot path. Writes and create-if-missing hold the lock.
_stores: dict[str, Store[Any]] = {}
_lock = threading.RLock()


def register_store(store: Store[Any], exist_ok: bool = False) -> None:
    """Register ``store`` under its name in this process.

    Args:
        store: The store to register.
        exist_ok: Replace a store already registered under the same name instead of
            raising.

    Raises:
        StoreExistsError: if a store with the same name is registered and
            ``exist_ok`` is false.
    """
    with _lock:
        if not exist_ok and store.name in _stores:
            raise StoreExistsError(f'A store named "{store.name}" already exists.')
        _stores[store.name] = store


def unregister_store(name_or_store: str | Store[Any]) -> None:
    """Remove a store (given by name or itself) from the registry; no-op if absent."""
    name = name_or_store if isinstance(name_or_store, str) else name_or_store.name
    with _lock:
        _stores.pop(name, None)


def get_store(val: str | Proxy[Any]) -> Store[Any] | None:
    """Return the registered store named ``val``, or the store behind a proxy.

    For a proxy, the store is found through its factory, which creates and registers
    the store from its config when this process has none by that name.

    Returns:
        The store, or ``None`` when no store is registered under the name.

    Raises:
        ProxyStoreFactoryError: if ``val`` is a proxy not made by a store.
    """
    from proxystore.proxy import Proxy, get_factory
    from proxystore.store.factory import StoreFactory

    # Test for a proxy first: isinstance(proxy_of_a_str, str) would resolve it.
    if not isinstance(val, Proxy):
        return _stores.get(val)
    factory = get_factory(val)
    if not isinstance(factory, StoreFactory):
        raise ProxyStoreFactoryError(
            f"The proxy's factory is a {type(factory).__name__}, not a StoreFactory, "
            "so it belongs to no store."
        )
    return factory.get_store()


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
    store = _stores.get(store_config.name)
    if store is not None:
        return store
    from proxystore.store.base import Store

    with _lock:
        # Another thread may have created it while we waited for the lock.
        store = _stores.get(store_config.name)
        if store is None:
            store = Store.from_config(store_config)
            if register:
                _stores[store.name] = store
        return store


@contextlib.contextmanager
def store_registration(
    *stores: Store[Any], exist_ok: bool = False
) -> Generator[None, None, None]:
    """Register ``stores`` for the duration of a ``with`` block.

    Raises:
        StoreExistsError: if a name is taken and ``exist_ok`` is false.
    """
    registered: list[Store[Any]] = []
    try:
        for store in stores:
            register_store(store, exist_ok=exist_ok)
            registered.append(store)
    except BaseException:
        # All or nothing: do not leave the earlier stores behind.
        for store in registered:
            unregister_store(store)
        raise
    try:
        yield
    finally:
        for store in stores:
            unregister_store(store)
