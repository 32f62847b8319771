"""Futures: set in one place, awaited in another; typed timeouts; pickling."""

from __future__ import annotations

import pickle
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from proxystore.connectors.local import LocalConnector
from proxystore.proxy import ProxyResolveError, is_resolved
from proxystore.store import Store
from proxystore.store.exceptions import ProxyResolveMissingKeyError
from proxystore.store.future import Future
from tests.integration.test_patterns_support import pattern_store


class _Without:
    """A LocalConnector with some methods hidden (protocol checks fail for them)."""

    def __init__(self, *hidden: str) -> None:
        self.hidden = hidden
        self.inner = LocalConnector()

    def __getattr__(self, name: str) -> Any:
        if name in self.hidden:
            raise AttributeError(name)
        return getattr(self.inner, name)


@pytest.fixture
def store() -> Iterator[Store[LocalConnector]]:
    with pattern_store(LocalConnector(), "fut") as store:
        yield store


def test_set_result_then_result(store: Store[Any]) -> None:
    future: Future[list[int]] = store.future(evict=True)
    assert not future.done()
    future.set_result([1, 2])
    assert future.done()
    assert future.result() == [1, 2]


def test_proxy_blocks_until_result_is_set(store: Store[Any]) -> None:
    future: Future[str] = store.future(evict=True, polling_interval=0.001)
    proxy = future.proxy()
    assert not is_resolved(proxy)
    setter = threading.Timer(0.01, future.set_result, args=("done",))
    setter.start()
    try:
        assert proxy.upper() == "DONE"
    finally:
        setter.join()


def test_result_timeout_names_store_and_key(store: Store[Any]) -> None:
    future: Future[int] = store.future(polling_interval=0.001)
    with pytest.raises(ProxyResolveMissingKeyError) as info:
        future.result(timeout=0.01)
    assert info.value.key == future.key
    assert info.value.store_name == store.name
    assert store.name in str(info.value)


def test_factory_polling_timeout_is_the_default(store: Store[Any]) -> None:
    future: Future[int] = store.future(polling_interval=0.001, polling_timeout=0.01)
    with pytest.raises(ProxyResolveError) as info:
        bool(future.proxy())
    assert isinstance(info.value.cause, ProxyResolveMissingKeyError)
    # The per-call override did not change the future's own factory.
    assert future.factory.polling_timeout == 0.01


def test_future_and_its_proxy_pickle(store: Store[Any]) -> None:
    future: Future[dict[str, int]] = store.future(evict=True, polling_timeout=5)
    restored: Future[dict[str, int]] = pickle.loads(pickle.dumps(future))
    proxy = pickle.loads(pickle.dumps(future.proxy()))
    restored.set_result({"a": 1})
    assert future.done()
    assert proxy["a"] == 1  # resolving evicts (evict=True)
    assert not future.done()
    assert "Future(key=" in repr(future)


def test_future_needs_deferrable_connector() -> None:
    with (
        Store(f"fut-{uuid.uuid4().hex}", _Without("new_key", "set")) as store,  # type: ignore[type-var]
        pytest.raises(NotImplementedError),
    ):
        store.future()


def test_polling_with_backoff_when_the_connector_cannot_notify() -> None:
    from proxystore.connectors.protocols import WaitableConnector

    connector = _Without("wait")
    assert not isinstance(connector, WaitableConnector)
    name = f"poll-{uuid.uuid4().hex}"
    with Store(name, connector, register=True) as store:  # type: ignore[type-var]
        future: Future[int] = store.future(
            evict=True,
            polling_interval=0.001,
            polling_backoff_factor=2,
            polling_interval_limit=0.004,
        )
        with pytest.raises(ProxyResolveMissingKeyError):
            future.result(timeout=0.02)
        setter = threading.Timer(0.01, future.set_result, args=(5,))
        setter.start()
        try:
            assert future.result(timeout=30) == 5
        finally:
            setter.join()
    assert connector.inner._store == {}
