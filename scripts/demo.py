"""ProxyStore in one minute: proxy an object, use it here and in another process.

Run with ``make demo`` (or ``uv run --frozen python scripts/demo.py``). Uses a
FileConnector in a temporary directory, so no server is needed.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import os
import pickle
import tempfile

from proxystore.connectors.file import FileConnector
from proxystore.proxy import Proxy, ProxyOr, is_resolved
from proxystore.store import Store
from proxystore.store.utils import get_key


@dataclasses.dataclass
class MyObject:
    """Some user data that is costly to send around."""

    name: str
    values: list[float]

    def total(self) -> float:
        return sum(self.values)


def my_function(x: ProxyOr[MyObject]) -> str:
    """User code that knows nothing about proxies (``ProxyOr`` is for mypy only)."""
    assert isinstance(x, MyObject)
    return f"{x.name}: total={x.total():g}"


def in_worker(p: Proxy[MyObject]) -> tuple[int, bool, str]:
    """Runs in a spawned process that received only the pickled proxy."""
    resolved_on_arrival = is_resolved(p)
    return os.getpid(), resolved_on_arrival, my_function(p)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="proxystore-demo-") as tmp:
        connector = FileConnector(os.path.join(tmp, "cache"))
        with Store("my-store", connector, register=True) as store:
            print(f"store:    {store.name!r} over {connector!r}")

            my_object = MyObject("sensor-7", [0.5 * i for i in range(100_000)])
            p = store.proxy(my_object)
            size = len(pickle.dumps(p))
            print(f"proxy:    key={get_key(p)} (resolved here: {is_resolved(p)})")
            print(
                f"wire:     the object pickles to {len(pickle.dumps(my_object)):,} B, "
                f"its proxy to {size} B"
            )
            print(f"here:     my_function(p) -> {my_function(p)}")

            spawn = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as pool:
                pid, was_resolved, result = pool.submit(in_worker, p).result()
                print(
                    f"worker:   pid {pid} got an unresolved proxy "
                    f"(resolved on arrival: {was_resolved}), fetched it from the "
                    f"store -> {result}"
                )

                once = store.proxy(my_object, evict=True)
                pool.submit(in_worker, once).result()
                print(
                    "evict:    a proxy made with evict=True was resolved by the "
                    f"worker; object still stored: {store.exists(get_key(once))}"
                )
            store.evict(get_key(p))
        print(f"cleanup:  store closed, {tmp} removed")


if __name__ == "__main__":
    main()
