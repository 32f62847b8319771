"""Function-as-a-Service: the function runtime sees only a small pickled task.

A FaaS platform (Globus Compute, Lambda, ...) passes each invocation as a payload
with a size limit. Here a spawned worker process plays the platform: it receives a
pickled task (function + proxies of the arguments) over a pipe, runs it, and answers
with a pickled proxy of the result. The data itself goes through the store: the
pipe carries a few hundred bytes per call however large the arguments and results.

Argument proxies evict their object when the handler resolves them, and the result
proxy evicts when the caller resolves it, so nothing is left behind.

    uv run --frozen python -m examples.faas_handler
"""

from __future__ import annotations

import multiprocessing
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any, Self

from examples._common import file_store, leftover
from proxystore.proxy import Proxy
from proxystore.store import Store, StoreConfig, get_or_create_store


@dataclass(frozen=True)
class Task:
    """One invocation: the function, its (proxied) arguments, the result store."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    result_store: StoreConfig


def handler(payload: bytes) -> bytes:
    """The platform's entry point: a pickled task in, a pickled result proxy out."""
    task: Task = pickle.loads(payload)
    result = task.fn(*task.args)
    store = get_or_create_store(task.result_store)
    # Unpopulated: only the key and store config travel back.
    return pickle.dumps(store.proxy(result, evict=True, populate_target=False))


def serve(conn: Connection) -> None:
    """The worker process: answer invocations until an empty message arrives."""
    with conn:
        while payload := conn.recv_bytes():
            conn.send_bytes(handler(payload))


class FaaSWorker:
    """A spawned process standing in for a FaaS endpoint."""

    def __init__(self, store: Store[Any]) -> None:
        self.store = store
        self.bytes_sent = 0
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=serve, args=(child,), daemon=True)
        self._process.start()
        child.close()

    def invoke(self, fn: Callable[..., Any], *args: Any) -> Proxy[Any]:
        """Run ``fn(*args)`` remotely; return a proxy of its result."""
        proxies = tuple(self.store.proxy(a, evict=True) for a in args)
        payload = pickle.dumps(Task(fn, proxies, self.store.config()))
        self.bytes_sent += len(payload)
        self._conn.send_bytes(payload)
        result: Proxy[Any] = pickle.loads(self._conn.recv_bytes())
        return result

    def close(self) -> None:
        """Stop the worker process."""
        if self._process.is_alive():
            self._conn.send_bytes(b"")
        self._process.join(timeout=10)
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def histogram(data: bytes, bins: int) -> list[int]:
    """An example cloud function: byte-value histogram of a large blob."""
    counts = [0] * bins
    for value in bytes(data):
        counts[value * bins // 256] += 1
    return counts


def run(store: Store[Any], size: int = 1_000_000) -> tuple[list[int], int]:
    """Invoke ``histogram`` on ``size`` bytes; return the result and bytes sent."""
    data = bytes(range(256)) * (size // 256)
    with FaaSWorker(store) as worker:
        result = worker.invoke(histogram, data, 4)
        counts = list(result)
    return counts, worker.bytes_sent


def main() -> None:
    with file_store("faas") as store:
        counts, sent = run(store)
        print(f"histogram={counts}")
        print(f"a 1,000,000-byte argument was invoked with a {sent}-byte payload")
        assert leftover(store) == 0


if __name__ == "__main__":
    main()
