"""Unit tests of StoreFactory / PollingStoreFactory, including a spawned process."""

from __future__ import annotations

import concurrent.futures
import copy
import multiprocessing
import pathlib
import pickle
import threading
import uuid
from typing import Any

import pytest

from proxystore.connectors.file import FileConnector
from proxystore.connectors.local import LocalConnector
from proxystore.proxy import Proxy, get_factory, is_resolved
from proxystore.store import Store, StoreFactory, get_store, unregister_store
from proxystore.store.exceptions import ProxyResolveMissingKeyError
from proxystore.store.factory import PollingStoreFactory
from proxystore.store.utils import get_key, resolve_async


def _name() -> str:
    return f"fac-{uuid.uuid4().hex[:12]}"


def test_resolve_and_call(any_store: Store[Any]) -> None:
    key = any_store.put([1, 2])
    factory: StoreFactory[Any, list[int]] = StoreFactory(key, any_store.config())
    assert factory.resolve() == [1, 2]
    assert factory() == [1, 2]
    assert factory.get_store() is any_store
    assert any_store.exists(key)
    assert repr(key) in repr(factory)


def test_evict_after_resolve(any_store: Store[Any]) -> None:
    key = any_store.put("e")
    factory: StoreFactory[Any, str] = StoreFactory(key, any_store.config(), evict=True)
    assert factory() == "e"
    assert not any_store.exists(key)
    with pytest.raises(ProxyResolveMissingKeyError):
        factory()


def test_custom_deserializer(local_store: Store[Any]) -> None:
    key = local_store.put(b"abc", serializer=bytes)
    factory: StoreFactory[Any, str] = StoreFactory(
        key, local_store.config(), deserializer=lambda b: bytes(b).decode()
    )
    assert factory() == "abc"


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"evict": True},
        {"deserializer": bytes},
        {"evict": True, "deserializer": bytes},
    ],
)
def test_pickle_keeps_fields(local_store: Store[Any], options: dict[str, Any]) -> None:
    key = local_store.put("p")
    factory: StoreFactory[Any, Any] = StoreFactory(key, local_store.config(), **options)
    again = pickle.loads(pickle.dumps(factory))
    assert type(again) is StoreFactory
    assert again.key == key
    assert again.evict == options.get("evict", False)
    assert again.deserializer is options.get("deserializer")
    assert again.store_config == local_store.config()
    assert copy.copy(factory).key == key


def test_pickled_proxy_is_small(local_store: Store[Any]) -> None:
    # DESIGN goal: <= 300 B for a small object (the reference release: ~700 B).
    assert len(pickle.dumps(local_store.proxy("hello"))) <= 300
    assert len(pickle.dumps(local_store.proxy(12345))) <= 300


def test_resolve_recreates_store_from_config(tmp_path: pathlib.Path) -> None:
    name = _name()
    with Store(name, FileConnector(str(tmp_path / "d"), clear=False)) as store:
        data = pickle.dumps(store.proxy({"k": "v"}))
    assert get_store(name) is None
    proxy = pickle.loads(data)
    try:
        assert proxy == {"k": "v"}
        rebuilt = get_store(name)
        assert rebuilt is not None
        assert isinstance(rebuilt.connector, FileConnector)
    finally:
        unregister_store(name)
    rebuilt.close(clear=True)


def test_resolve_async(local_store: Store[Any]) -> None:
    proxy = pickle.loads(pickle.dumps(local_store.proxy("bg")))
    resolve_async(proxy)
    factory = get_factory(proxy)
    assert isinstance(factory, StoreFactory)
    assert factory._obj_future is not None
    assert pickle.loads(pickle.dumps(factory))._obj_future is None
    assert proxy == "bg"
    assert factory._obj_future is None
    resolve_async(proxy)  # already resolved: nothing started
    assert factory._obj_future is None


def test_utils_reject_foreign_proxies() -> None:
    from proxystore.store.exceptions import ProxyStoreFactoryError

    foreign: Proxy[int] = Proxy(lambda: 1)
    with pytest.raises(ProxyStoreFactoryError):
        get_key(foreign)
    with pytest.raises(ProxyStoreFactoryError):
        resolve_async(foreign)


# ------------------------------------------------------------------ polling
def _polling(
    store: Store[Any], key: Any, **kwargs: Any
) -> PollingStoreFactory[Any, Any]:
    return PollingStoreFactory(key, store.config(), **kwargs)


def test_polling_times_out_with_missing_key_error(local_store: Store[Any]) -> None:
    key = local_store.connector.new_key()
    factory = _polling(local_store, key, polling_interval=0.001, polling_timeout=0.02)
    with pytest.raises(ProxyResolveMissingKeyError) as info:
        factory.resolve()
    assert info.value.store_name == local_store.name


class _SleepyConnector(LocalConnector):
    """A LocalConnector that cannot notify: forces the polling path."""

    wait = None  # type: ignore[assignment]


def test_polling_without_notification() -> None:
    from proxystore.connectors.protocols import WaitableConnector

    assert not isinstance(_SleepyConnector(), WaitableConnector)
    with Store(_name(), _SleepyConnector(), register=True) as store:
        key = store.connector.new_key()
        factory = _polling(
            store,
            key,
            polling_interval=0.001,
            polling_backoff_factor=2,
            polling_interval_limit=0.004,
            polling_timeout=5,
        )
        timer = threading.Timer(0.02, store._set, args=(key, "late"))
        timer.start()
        try:
            assert factory.resolve() == "late"
        finally:
            timer.join()
        assert factory.polling_interval == 0.001  # the loop does not mutate it


def test_polling_waits_on_notification(local_store: Store[Any]) -> None:
    key = local_store.connector.new_key()
    # A polling interval far longer than the test: only a notification can wake it.
    factory = _polling(local_store, key, polling_interval=60, evict=True)
    timer = threading.Timer(0.01, local_store._set, args=(key, [3]))
    timer.start()
    try:
        assert factory.resolve() == [3]
    finally:
        timer.join()
    assert not local_store.exists(key)


def test_polling_factory_pickles(local_store: Store[Any]) -> None:
    factory = _polling(
        local_store,
        ("k",),
        polling_interval=0.5,
        polling_backoff_factor=2,
        polling_interval_limit=3,
        polling_timeout=9,
    )
    again = pickle.loads(pickle.dumps(factory))
    assert type(again) is PollingStoreFactory
    fields = ("polling_interval", "polling_backoff_factor", "polling_timeout")
    assert [getattr(again, f) for f in fields] == [0.5, 2, 9]
    assert again.polling_interval_limit == 3
    assert copy.copy(factory).polling_timeout == 9


def test_polling_validation(local_store: Store[Any]) -> None:
    with pytest.raises(ValueError, match="polling_interval"):
        _polling(local_store, ("k",), polling_interval=0)
    with pytest.raises(ValueError, match="backoff"):
        _polling(local_store, ("k",), polling_backoff_factor=0.5)


# ----------------------------------------------------------- another process
def _resolve_in_child(proxy: Any) -> tuple[bool, Any, str]:
    """Runs in a spawned interpreter: only the pickled proxy arrives."""
    was_resolved = is_resolved(proxy)
    value = [x * 2 for x in proxy]
    return was_resolved, value, type(proxy).__name__


def test_proxy_resolves_in_spawned_process(tmp_path: pathlib.Path) -> None:
    connector = FileConnector(str(tmp_path / "spawn"))
    with Store(_name(), connector, register=True) as store:
        proxy = store.proxy([1, 2, 3])
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
            was_resolved, value, _ = pool.submit(_resolve_in_child, proxy).result()
        assert was_resolved is False
        assert value == [2, 4, 6]
        assert store.exists(get_key(proxy))


def test_factories_are_generic_in_connector_and_object(local_store: Store[Any]) -> None:
    from proxystore.connectors.local import LocalConnector

    key = local_store.put("x")
    alias = StoreFactory[LocalConnector, str]
    factory = alias(key, local_store.config())
    assert factory() == "x"
    assert PollingStoreFactory[LocalConnector, str].__origin__ is PollingStoreFactory  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        StoreFactory[str]  # type: ignore[misc]
