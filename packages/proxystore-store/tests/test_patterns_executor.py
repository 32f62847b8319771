"""StoreExecutor: arguments and results travel through the store by policy."""

from __future__ import annotations

import gc
import uuid
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from proxystore.connectors.local import LocalConnector
from proxystore.proxy import Proxy
from proxystore.store import Store
from proxystore.store.executor import ProxyAlways, ProxyNever, ProxyType, StoreExecutor
from proxystore.store.ref import OwnedProxy
from tests.integration.test_patterns_support import pattern_store


@pytest.fixture
def connector() -> LocalConnector:
    return LocalConnector()


@pytest.fixture
def store(connector: LocalConnector) -> Iterator[Store[LocalConnector]]:
    with pattern_store(connector, "exe") as store:
        yield store


def _describe(obj: object, *_: object) -> tuple[str, Any]:
    return type(obj).__name__, obj


def test_policies() -> None:
    assert ProxyAlways()(None)
    assert not ProxyNever()(1)
    policy = ProxyType(str, bytes)
    assert policy("s")
    assert not policy(1)
    assert repr(policy) == "ProxyType(str, bytes)"


def test_default_policy_proxies_nothing(store: Store[Any]) -> None:
    with StoreExecutor(ThreadPoolExecutor(1), store, close_store=False) as executor:
        result = executor.submit(_describe, [1]).result()
    assert result == ("list", [1])


def test_args_and_results_proxied_and_args_evicted(
    store: Store[Any], connector: LocalConnector
) -> None:
    pool = ThreadPoolExecutor(1)
    with StoreExecutor(pool, store, ProxyType(list), close_store=False) as executor:
        future = executor.submit(_describe, [1, 2], 3)
        name, value = future.result()
        # The task saw a proxy of its list argument and returned a tuple (not proxied).
        assert name == "Proxy"
        assert value == [1, 2]
        listy: object = executor.submit(list, "ab").result()
        assert type(listy) is OwnedProxy
        assert listy == ["a", "b"]
    # Only the owned result remains; dropping it evicts it.
    assert len(connector._store) == 1
    del listy
    gc.collect()


def test_results_without_ownership_are_plain_proxies(store: Store[Any]) -> None:
    with StoreExecutor(
        ThreadPoolExecutor(1), store, ProxyAlways(), ownership=False, close_store=False
    ) as executor:
        result: Any = executor.submit(lambda s: s.upper(), "abc").result()
        assert type(result) is Proxy
        assert result == "ABC"
        # A task returning None (non-proxiable) gets None back.
        assert executor.submit(lambda: None).result() is None
    store.evict(result.__proxy_factory__.key)


def test_map_uses_the_policy_per_item(store: Store[Any]) -> None:
    with StoreExecutor(
        ThreadPoolExecutor(2), store, ProxyType(int), ownership=False, close_store=False
    ) as executor:
        results = list(executor.map(_describe, [1, 2, 3]))
    assert [r[0] for r in results] == ["Proxy"] * 3
    assert [r[1] for r in results] == [1, 2, 3]


def test_keys_are_evicted_when_the_task_fails(store: Store[Any]) -> None:
    def boom(_: object) -> None:
        raise ValueError("boom")

    with StoreExecutor(
        ThreadPoolExecutor(1), store, ProxyAlways(), close_store=False
    ) as ex:
        future = ex.submit(boom, "data")
        with pytest.raises(ValueError, match="boom"):
            future.result()


def test_shutdown_closes_the_store() -> None:
    connector = LocalConnector()
    store = Store(f"exe-{uuid.uuid4().hex}", connector, register=True)
    executor = StoreExecutor(ThreadPoolExecutor(1), store)
    executor.shutdown()
    from proxystore.store import get_store

    assert get_store(store.name) is None
    with pytest.raises(RuntimeError):
        executor.submit(len, "x")


def test_shutdown_of_closeable_and_unknown_executors(store: Store[Any]) -> None:
    class Closeable:
        closed = False

        def close(self) -> None:
            self.closed = True

    closeable = Closeable()
    StoreExecutor(closeable, store, close_store=False).shutdown()  # type: ignore[arg-type]
    assert closeable.closed
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        StoreExecutor(object(), store, close_store=False).shutdown()  # type: ignore[arg-type]
    assert any(issubclass(w.category, RuntimeWarning) for w in caught)
