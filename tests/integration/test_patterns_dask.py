"""The Dask plugin against a real ``distributed.LocalCluster`` (one per module).

The claim under test: with :class:`proxystore.store.dask.Client`, large arguments and
results never pass through the scheduler — it records a proxy of a 10 MB array as a
few dozen bytes — and every key the client made is evicted once used.
"""

from __future__ import annotations

import pathlib
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from distributed import LocalCluster, wait

from examples.dask_pipeline import make, result_nbytes, total
from proxystore.connectors.file import FileConnector
from proxystore.proxy import Proxy
from proxystore.store import Store
from proxystore.store.dask import Client
from tests.integration.test_patterns_support import stored_keys, wait_until_drained

TEN_MB = 1_250_000  # float64 items

# With `--dist loadgroup`, xdist keeps this module on one worker: one cluster.
pytestmark = pytest.mark.xdist_group("dask-cluster")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        # ":0": no dashboard on a fixed port (None would still take 8787).
        dashboard_address=":0",
        host="127.0.0.1",
    ) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store[Any]]:
    directory = tmp_path_factory.mktemp("dask-store")
    connector = FileConnector(str(directory), clear=True)
    with Store(f"dask-{uuid.uuid4().hex}", connector, register=True) as store:
        yield store


@pytest.fixture(scope="module")
def client(cluster: Any, store: Store[Any]) -> Iterator[Client]:
    with Client(cluster, ps_store=store, ps_threshold=100_000) as client:
        yield client


@pytest.fixture(autouse=True)
def _no_key_left_behind(store: Store[Any]) -> Iterator[None]:
    baseline = stored_keys(store.connector)
    yield
    left = wait_until_drained(store.connector, baseline)
    assert not left, f"the test left {len(left)} object(s) in the store"


def _run_spec_size(client: Client, key: Any) -> int:
    """Pickled size of a task's definition as the scheduler holds it."""

    def _size(dask_scheduler: Any, key: Any) -> int:
        import cloudpickle

        return len(cloudpickle.dumps(dask_scheduler.tasks[key].run_spec))

    return int(client.run_on_scheduler(_size, key=key))  # type: ignore[no-untyped-call]


def test_large_result_travels_as_a_proxy(client: Client) -> None:
    proxied = client.submit(make, TEN_MB)
    plain = client.submit(make, TEN_MB, proxy_result=False, pure=False)
    wait([proxied, plain])  # type: ignore[no-untyped-call]
    assert result_nbytes(client, proxied.key) < 1_000
    assert result_nbytes(client, plain.key) >= 10_000_000
    result = proxied.result()
    assert type(result) is Proxy
    assert float(result[-1]) == TEN_MB - 1
    assert plain.result().shape == (TEN_MB,)


def test_large_argument_never_reaches_the_scheduler(client: Client) -> None:
    data = np.ones(TEN_MB)
    proxied = client.submit(total, data)
    assert proxied.result() == TEN_MB
    assert _run_spec_size(client, proxied.key) < 10_000
    # Without proxying, the 10 MB array is part of the task the scheduler holds
    # (Dask itself warns about the size of the graph).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        plain = client.submit(total, data, proxy_args=False)
        assert plain.result() == TEN_MB
    assert _run_spec_size(client, plain.key) >= 10_000_000


def test_small_values_pass_through(client: Client) -> None:
    future = client.submit(total, np.ones(10))
    assert future.result() == 10.0
    made = client.submit(make, 10).result()
    assert type(made) is np.ndarray


def test_map_proxies_items_and_shared_kwargs(client: Client) -> None:
    def scaled_total(values: Any, *, weights: Any) -> float:
        return float((values * weights).sum())

    weights = np.full(TEN_MB // 10, 2.0)
    items = [np.ones(TEN_MB // 10) * i for i in range(3)]
    # As the reference does, the client warns that a keyword argument was proxied.
    with pytest.warns(UserWarning, match="keyword argument to map"):
        futures = client.map(scaled_total, items, weights=weights)
    assert [f.result() for f in futures] == [0.0, 250_000.0, 500_000.0]


def test_map_with_small_kwargs_does_not_warn(client: Client) -> None:
    def scaled(value: int, *, factor: int) -> int:
        return value * factor

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        futures = client.map(scaled, [1, 2], factor=3)
    assert [f.result() for f in futures] == [3, 6]


def test_unregistered_store_warns(cluster: Any, tmp_path: pathlib.Path) -> None:
    connector = FileConnector(str(tmp_path / "unregistered"))
    with (
        Store(f"unreg-{uuid.uuid4().hex}", connector) as store,
        pytest.warns(UserWarning, match="not registered"),
        Client(cluster, ps_store=store),
    ):
        pass
