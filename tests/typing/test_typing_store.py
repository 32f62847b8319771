"""Static typing of the store API: this file must pass ``mypy --strict``.

The functions are never called; pytest only imports the module.

Decisions checked here:
- ``Store.proxy(obj: T)`` returns ``Proxy[T]``; with ``skip_nonproxiable=True`` it
  returns ``Proxy[T] | T`` (None/bool come back unchanged).
- ``Store.get(key)`` returns ``Any``: a key does not record its object's type (use
  a proxy, or annotate the variable).
- ``Store.future()`` returns ``Future[Any]``; annotate to narrow:
  ``f: Future[int] = store.future()``.
"""

from __future__ import annotations

from typing import Any, assert_type

from proxystore.connectors.file import FileConnector
from proxystore.connectors.local import LocalConnector
from proxystore.proxy import Proxy, ProxyLocker
from proxystore.store import Store, StoreConfig, StoreFactory, get_store
from proxystore.store.future import Future
from proxystore.store.ref import OwnedProxy
from proxystore.store.types import ConnectorKeyT


def _store_is_generic_in_its_connector() -> None:
    store = Store("t", LocalConnector())
    assert_type(store, Store[LocalConnector])
    assert_type(store.connector, LocalConnector)
    file_store = Store("f", FileConnector("/tmp/x"))
    assert_type(file_store.connector, FileConnector)
    assert_type(Store.from_config(store.config()), Store[Any])
    assert_type(store.config(), StoreConfig)
    assert_type(get_store("t"), Store[Any] | None)


def _proxies_keep_the_object_type(store: Store[LocalConnector]) -> None:
    assert_type(store.proxy([1]), Proxy[list[int]])
    assert_type(store.proxy("s", evict=True), Proxy[str])
    assert_type(store.proxy(1, skip_nonproxiable=True), Proxy[int] | int)
    assert_type(store.proxy_batch([1, 2]), list[Proxy[int]])
    assert_type(store.locked_proxy(1.5, skip_nonproxiable=False), ProxyLocker[float])
    assert_type(store.locked_proxy(1.5), ProxyLocker[float])
    assert_type(store.locked_proxy(None), None)
    assert_type(store.owned_proxy([1]), OwnedProxy[list[int]])
    assert_type(store.owned_proxy(True), bool)
    assert_type(store.owned_proxy(b"x", skip_nonproxiable=False), OwnedProxy[bytes])
    assert_type(store.proxy_from_key(("k",)), Proxy[Any])


def _keys_and_gets(store: Store[LocalConnector]) -> None:
    key = store.put({"a": 1})
    assert_type(key, ConnectorKeyT)
    assert_type(store.put_batch([1, 2]), list[ConnectorKeyT])
    assert_type(store.get(key), Any)
    assert_type(store.get(key, default=0), Any)
    assert_type(store.exists(key), bool)
    assert_type(store.is_cached(key), bool)


def _futures(store: Store[LocalConnector]) -> None:
    future: Future[int] = store.future()
    assert_type(future.result(), int)
    assert_type(future.proxy(), Proxy[int])


def _factories(config: StoreConfig) -> None:
    factory: StoreFactory[LocalConnector, list[str]] = StoreFactory(("k",), config)
    assert_type(factory(), list[str])
    assert_type(factory.resolve(), list[str])
    assert_type(Proxy(factory), Proxy[list[str]])
