"""Dask: large task data travels through a store, not through the scheduler.

:class:`proxystore.store.dask.Client` is a ``distributed.Client`` that replaces
arguments and results of ``ps_threshold`` bytes or more with proxies. The scheduler
and the client/worker comms only ever see the small proxies.

    uv run --frozen python -m examples.dask_pipeline
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from distributed import LocalCluster, wait

from examples._common import file_store, leftover
from proxystore.store.dask import Client

Array = npt.NDArray[np.float64]


def make(n: int) -> Array:
    """A task whose result is large (returned as a proxy)."""
    return np.arange(n, dtype=np.float64)


def total(values: Array) -> float:
    """A task whose argument is large (sent as a proxy) and result small."""
    return float(values.sum())


def result_nbytes(client: Client, key: Any) -> int:
    """What the scheduler believes the task's result weighs in worker memory."""

    def _nbytes(dask_scheduler: Any, key: Any) -> int:
        return int(dask_scheduler.tasks[key].nbytes)

    return int(client.run_on_scheduler(_nbytes, key=key))  # type: ignore[no-untyped-call]


def run(client: Client, n: int = 1_250_000) -> tuple[float, float, int]:
    """Return (sum computed remotely from a local array, sum of a remote result,
    scheduler-side size of that remote result)."""
    local = np.ones(n)
    first = client.submit(total, local).result()
    made = client.submit(make, n)
    wait(made)  # type: ignore[no-untyped-call]
    nbytes = result_nbytes(client, made.key)
    second = float(made.result().sum())  # resolving the proxy evicts its key
    return first, second, nbytes


def main() -> None:
    with (
        file_store("dask") as store,
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            host="127.0.0.1",
        ) as cluster,
        Client(cluster, ps_store=store, ps_threshold=100_000) as client,
    ):
        first, second, nbytes = run(client)
        print(f"sum of a 10 MB argument: {first}; sum of a 10 MB result: {second}")
        print(f"the scheduler saw the 10 MB result as {nbytes} bytes")
        assert leftover(store) == 0


if __name__ == "__main__":
    main()
