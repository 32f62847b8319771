"""Call forms of the reference API that users' code relies on (names and kinds)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from proxystore.connectors.local import LocalConnector
from proxystore.store import Store, get_store, register_store, unregister_store
from proxystore.store.executor import ProxyType, StoreExecutor
from proxystore.store.lifetimes import ContextLifetime, LeaseLifetime, StaticLifetime


def _double(x: int) -> int:
    return 2 * x


def test_register_store_takes_exist_ok_positionally() -> None:
    name = f"compat-{uuid.uuid4().hex}"
    with Store(name, LocalConnector()) as first, Store(name, LocalConnector()) as other:
        register_store(first)
        try:
            register_store(other, True)
            assert get_store(name) is other
        finally:
            unregister_store(name)
    assert get_store(name) is None


def test_static_lifetime_name_is_readable_on_the_class() -> None:
    assert StaticLifetime.name == "static"
    assert StaticLifetime().name == "static"


def test_executor_map_accepts_the_reference_keywords() -> None:
    data: dict[Any, bytes] = {}
    name = f"compat-{uuid.uuid4().hex}"
    store: Store[Any] = Store(name, LocalConnector(data), register=True)
    with StoreExecutor(ThreadPoolExecutor(2), store, ProxyType(int)) as executor:
        assert list(executor.map(function=_double, timeout=5, chunksize=1)) == []
        results = list(executor.map(_double, [1, 2, 3], timeout=5))
        assert results == [2, 4, 6]
        # The results (owned proxies) are evicted when dropped.
        del results
    # Arguments are evicted as their tasks finish (shutdown waited for them).
    assert data == {}


def test_lifetime_repr_matches_the_reference_text() -> None:
    with Store("lt-repr", LocalConnector()) as store:
        store_repr = repr(store)
        assert store_repr.startswith("Store(name=lt-repr, connector=")
        with ContextLifetime(store, name="ctx") as ctx:
            assert repr(ctx) == f"Lifetime(name=ctx, store={store_repr})"
        lease = LeaseLifetime(store, 60, name="lease")
        try:
            assert repr(lease) == f"Lifetime(name=lease, store={store_repr})"
        finally:
            lease.close()


def _upper(text: str) -> str:
    return text.upper()


class _ClientLike(ThreadPoolExecutor):
    """An executor whose map() takes an extra option and returns futures."""

    def __init__(self) -> None:
        super().__init__(1)
        self.options: dict[str, Any] = {}

    def map(self, fn: Any, *iterables: Any, **options: Any) -> Any:
        self.options = options
        return [self.submit(fn, *args) for args in zip(*iterables, strict=True)]


def test_executor_map_hands_extra_keywords_to_the_wrapped_map() -> None:
    data: dict[Any, bytes] = {}
    name = f"compat-{uuid.uuid4().hex}"
    store: Store[Any] = Store(name, LocalConnector(data), register=True)
    client = _ClientLike()
    with StoreExecutor(client, store, ProxyType(str), ownership=False) as executor:
        results = executor.map(_upper, ["a", "b"], priority=3, timeout=5)
        # Arguments were proxied before the call and stay until consumed (results
        # of tasks that already ran may be stored too).
        assert len(data) >= 2
        assert client.options == {"priority": 3, "timeout": 5}
        values: list[Any] = list(results)
        assert values == ["A", "B"]
        # The results are plain proxies (ownership=False): evict them by hand.
        for value in values:
            store.evict(value.__proxy_factory__.key)
    assert data == {}
