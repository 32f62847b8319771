"""Globus Compute: `StoreExecutor` around a `globus_compute_sdk.Executor`.

Globus Compute runs Python functions on remote endpoints (clusters, supercomputers)
and ships every argument and result through its cloud service, which limits the size
of a task's payload. Wrapping its `Executor` in a `StoreExecutor` sends large
arguments and results through a store both sides can reach (Redis, a shared file
system, Globus Transfer, ...): the Compute service carries only the proxies.

`run()` takes any `concurrent.futures.Executor`. Without an endpoint, `main()` uses a
spawn process pool as a stand-in for the remote endpoint (the store side is real:
a FileConnector). With an endpoint:

    GLOBUS_COMPUTE_ENDPOINT=<endpoint uuid> \\
    PROXYSTORE_STORE_CONFIG=store.toml \\
        uv run --frozen python -m examples.globus_compute_pattern

where `store.toml` is a `StoreConfig` (`StoreConfig.write_toml`) for a store the
endpoint's workers can reach, and the endpoint's Python has proxystore installed.
Without either variable:

    uv run --frozen python -m examples.globus_compute_pattern
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import pickle
from collections.abc import Iterable
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

from examples._common import file_store, leftover
from proxystore.proxy import get_factory
from proxystore.store import Store, StoreConfig
from proxystore.store.executor import ProxyType, StoreExecutor

if TYPE_CHECKING:
    from globus_compute_sdk import Executor as ComputeExecutor

#: Large enough that it should not travel inside a Compute task payload.
SAMPLE_BYTES = 12_000_000


def simulate(seed: int, size: int = SAMPLE_BYTES) -> bytes:
    """Remote step 1: produce a large sample (comes back as a proxy)."""
    block = hashlib.sha256(seed.to_bytes(8, "little")).digest()
    return (block * (size // len(block) + 1))[:size]


def analyze(sample: bytes) -> dict[str, Any]:
    """Remote step 2: reduce a sample to a small summary (comes back inline)."""
    data = bytes(sample)
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def wrap(executor: Executor, store: Store[Any]) -> StoreExecutor:
    """The pattern: an executor whose `bytes` arguments and results go by proxy.

    Results come back as owned proxies; the store stays open when the executor is
    shut down (it may serve other executors).
    """
    return StoreExecutor(executor, store, ProxyType(bytes), close_store=False)


def run(
    executor: StoreExecutor, seeds: Iterable[int] = range(3)
) -> tuple[list[dict[str, Any]], int]:
    """Simulate then analyze each seed remotely; large bytes travel by proxy.

    Args:
        executor: `wrap()` of a `globus_compute_sdk.Executor`, or of any other
            `concurrent.futures.Executor` whose workers reach the store.
        seeds: One simulation per seed.

    Returns:
        The summaries, and the number of bytes a sample occupied in a task's
        arguments (a proxy's factory, not the sample).
    """
    samples: list[Any] = [executor.submit(simulate, seed).result() for seed in seeds]
    # An owned proxy moves into the task that consumes it (and is evicted there),
    # so measure its factory, then hand the proxies over.
    wire = len(pickle.dumps(get_factory(samples[0])))
    futures = [executor.submit(analyze, sample) for sample in samples]
    del samples
    summaries = [future.result() for future in futures]
    return summaries, wire


def globus_compute_executor(endpoint_id: str) -> ComputeExecutor:
    """Return a Globus Compute executor for the endpoint (logs in if needed).

    Imported here: globus-compute-sdk is heavy and only this path needs it.
    """
    from globus_compute_sdk import Executor as ComputeExecutor

    return ComputeExecutor(endpoint_id=endpoint_id)


def _print(summaries: list[dict[str, Any]], wire: int) -> None:
    print(f"{len(summaries)} samples of {SAMPLE_BYTES:,} bytes analyzed remotely")
    print(f"each crossed the executor as a {wire}-byte proxy factory")


def main() -> None:
    endpoint = os.environ.get("GLOBUS_COMPUTE_ENDPOINT")
    config = os.environ.get("PROXYSTORE_STORE_CONFIG")
    if endpoint and config:
        with (
            Store.from_config(StoreConfig.from_toml(config)) as store,
            wrap(globus_compute_executor(endpoint), store) as executor,
        ):
            _print(*run(executor))
        return
    print("no GLOBUS_COMPUTE_ENDPOINT: a local spawn pool stands in for the endpoint")
    pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
    with file_store("globus-compute") as store:
        with wrap(pool, store) as executor:
            summaries, wire = run(executor)
        _print(summaries, wire)
        assert summaries[0] == analyze(simulate(0))
        left = leftover(store)
        print(f"objects left in the store: {left}")
        assert left == 0


if __name__ == "__main__":
    main()
