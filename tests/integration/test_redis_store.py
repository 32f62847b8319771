"""Stores over a real Redis, through the public API only."""

from __future__ import annotations

import hashlib
import multiprocessing
import multiprocessing.pool
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from proxystore.connectors.exceptions import ConnectorConnectionError
from proxystore.connectors.redis import RedisConnector
from proxystore.proxy import Proxy
from proxystore.store import Store
from proxystore.store.future import Future
from tests.integration.conftest import RestartableServer
from tests.integration.harness import ServerAddress
from tests.integration.harness.spawned import (
    digest_of_proxy,
    result_of_future,
    set_future_result,
)


@pytest.fixture(scope="module")
def spawn_pool() -> Iterator[multiprocessing.pool.Pool]:
    """One spawned worker for the module: a fresh interpreter, no inherited state."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        yield pool
        pool.close()
        pool.join()


@pytest.fixture
def store(redis_server: ServerAddress) -> Iterator[Store[RedisConnector]]:
    connector = RedisConnector(redis_server.host, redis_server.port)
    with Store("redis-it", connector) as store:
        yield store


class MyDataType:
    def __init__(self, values: list[int]) -> None:
        self.values = values


def test_reference_readme_example(redis_server: ServerAddress) -> None:
    port = redis_server.port
    # --- the reference README's example, verbatim but for the port ---------------
    from proxystore.connectors.redis import RedisConnector
    from proxystore.store import Store

    def my_function(x: MyDataType) -> int:
        assert isinstance(x, MyDataType)  # x is transparently resolved
        return sum(x.values)

    store = Store('my-store', RedisConnector('localhost', port))  # fmt: skip

    my_object = MyDataType([1, 2, 3])
    p = store.proxy(my_object)
    # The README passes the proxy where the target type is expected (duck typing);
    # a static checker sees Proxy[MyDataType], hence the one ignore.
    result = my_function(p)  # type: ignore[arg-type]
    # ------------------------------------------------------------------------------
    try:
        assert result == 6
        assert isinstance(p, Proxy)
    finally:
        store.close()


def test_proxy_resolves_in_spawned_process(
    store: Store[RedisConnector], spawn_pool: multiprocessing.pool.Pool
) -> None:
    data = bytes(range(256)) * 4096
    proxy = store.proxy(data)
    kind, digest = spawn_pool.apply(digest_of_proxy, (proxy,))
    assert kind == "Proxy"
    assert digest == hashlib.sha256(data).hexdigest()


def test_future_set_here_resolved_in_spawned_process(
    store: Store[RedisConnector], spawn_pool: multiprocessing.pool.Pool
) -> None:
    future: Future[dict[str, Any]] = store.future()
    pending = spawn_pool.apply_async(result_of_future, (future, 60.0))
    # The child is (most likely) already waiting: the result wakes it.
    future.set_result({"answer": 42})
    assert pending.get(timeout=120) == {"answer": 42}


def test_future_set_in_spawned_process_resolved_here(
    store: Store[RedisConnector], spawn_pool: multiprocessing.pool.Pool
) -> None:
    future: Future[list[str]] = store.future()
    assert not future.done()
    setter = spawn_pool.apply_async(set_future_result, (future, ["a", "b"]))
    assert future.result(timeout=60) == ["a", "b"]
    setter.get(timeout=60)
    assert future.done()


def test_future_wakes_a_waiting_thread(store: Store[RedisConnector]) -> None:
    future: Future[int] = store.future()
    got: list[int] = []
    waiter = threading.Thread(target=lambda: got.append(future.result(timeout=60)))
    waiter.start()
    future.set_result(7)
    waiter.join(timeout=60)
    assert got == [7]


def test_sigkill_then_restart(restartable_redis: RestartableServer) -> None:
    address = restartable_redis.address
    with Store("redis-restart", RedisConnector(address.host, address.port)) as store:
        key = store.put("before")
        assert store.get(key) == "before"

        restartable_redis.kill()
        with pytest.raises(ConnectorConnectionError) as info:
            store.put("while down")
        assert f"{address.host}:{address.port}" in str(info.value)
        assert info.value.address == f"{address.host}:{address.port}"

        restartable_redis.restart()
        # Same store, same connector object: it reconnects by itself.
        key = store.put("after")
        assert store.get(key) == "after"


def test_100_mb_numpy_array_round_trip(store: Store[RedisConnector]) -> None:
    array = np.random.default_rng(0).integers(0, 255, 100_000_000, dtype=np.uint8)
    key = store.put(array)
    try:
        back = store.get(key)
        assert isinstance(back, np.ndarray)
        assert back.dtype == array.dtype
        assert np.array_equal(back, array)
    finally:
        store.evict(key)
    assert not store.exists(key)


def test_proxy_batch_round_trip(store: Store[RedisConnector]) -> None:
    objs = [{"i": i} for i in range(50)]
    proxies = store.proxy_batch(objs)
    assert [dict(p) for p in proxies] == objs
