"""Futures: consume a result before it exists; the producer is another process.

``store.future()`` reserves a key. The future (and proxies of it) pickle, so a
spawned process can :meth:`~proxystore.store.future.Future.set_result` while this
process already holds a proxy that blocks on first use until the value is there.

With a connector that notifies (LocalConnector in-process, Redis via pub/sub) the
waiter wakes as soon as the result is set; otherwise it polls. Run it to measure:

    uv run --frozen python -m examples.future_pattern
"""

from __future__ import annotations

import multiprocessing
import statistics
import threading
import time
import uuid
from typing import Any

from examples._common import file_store, leftover
from proxystore.connectors.local import LocalConnector
from proxystore.store import Store
from proxystore.store.future import Future


def produce(future: Future[dict[str, int]], delay: float) -> None:
    """The producer: compute for ``delay`` seconds, then set the result."""
    time.sleep(delay)
    future.set_result({"answer": 42})


def across_processes(store: Store[Any], delay: float = 0.1) -> int:
    """Hand a future to a spawned producer; read its result through a proxy here."""
    future: Future[dict[str, int]] = store.future(
        evict=True, polling_interval=0.005, polling_timeout=60
    )
    proxy = future.proxy()
    producer = multiprocessing.get_context("spawn").Process(
        target=produce, args=(future, delay)
    )
    producer.start()
    try:
        answer = int(proxy["answer"])  # blocks until the producer set the result
    finally:
        producer.join()
    return answer


def notification_latency(
    store: Store[Any], delay: float = 0.03, repeats: int = 5
) -> list[float]:
    """Seconds from ``set_result`` (``delay`` s after waiting began) to wake-up."""
    latencies = []
    for _ in range(repeats):
        future: Future[int] = store.future(
            evict=True, polling_interval=1, polling_timeout=30
        )
        set_at: list[float] = []

        def _set(future: Future[int] = future, set_at: list[float] = set_at) -> None:
            time.sleep(delay)
            set_at.append(time.perf_counter())
            future.set_result(1)

        setter = threading.Thread(target=_set)
        setter.start()
        future.result()
        woke = time.perf_counter()
        setter.join()
        latencies.append(woke - set_at[0])
    return latencies


def main() -> None:
    with file_store("future") as store:
        print(f"cross-process future result: {across_processes(store)}")
        assert leftover(store) == 0
        file_lat = notification_latency(store, repeats=3)
    with Store(f"future-{uuid.uuid4().hex[:8]}", LocalConnector()) as store:
        local_lat = notification_latency(store)
    for name, lat in (("LocalConnector", local_lat), ("FileConnector", file_lat)):
        print(
            f"{name:15} set_result 30 ms after waiting began; woke after "
            f"median {statistics.median(lat) * 1e3:.2f} ms, "
            f"max {max(lat) * 1e3:.2f} ms (polling interval 1 s)"
        )


if __name__ == "__main__":
    main()
