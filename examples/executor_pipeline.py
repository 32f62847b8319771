"""StoreExecutor: a process-pool pipeline whose data never goes through the pool.

:class:`~proxystore.store.executor.StoreExecutor` wraps any executor. Arguments and
results chosen by a policy (here: ``bytes``) are replaced by proxies, so the pool's
pipes carry a few hundred bytes per task however big the data is. Results come back
as owned proxies: passing one to the next stage *moves* it to the worker that
consumes it, and it is evicted there once used. Argument keys are evicted when their
task completes. Nothing is left in the store at the end.

    uv run --frozen python -m examples.executor_pipeline
"""

from __future__ import annotations

import hashlib
import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from examples._common import file_store, leftover
from proxystore.proxy import get_factory
from proxystore.store import Store
from proxystore.store.executor import ProxyType, StoreExecutor

PAYLOAD_BYTES = 2_000_000


def generate(seed: int, size: int = PAYLOAD_BYTES) -> bytes:
    """Stage 1: produce a large blob (returned as a proxy by the policy)."""
    block = hashlib.sha256(str(seed).encode()).digest()
    return (block * (size // len(block) + 1))[:size]


def digest(blob: bytes) -> str:
    """Stage 2: reduce a blob to a small digest (not proxied: a str).

    ``bytes(blob)``: a proxy forwards ``__bytes__`` but cannot export the C buffer
    protocol that ``hashlib`` reads.
    """
    return hashlib.sha256(bytes(blob)).hexdigest()


def run(store: Store[Any], seeds: range = range(4)) -> tuple[list[str], int]:
    """Run generate → digest on a spawn pool; return digests and a task's wire size."""
    pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
    with StoreExecutor(pool, store, ProxyType(bytes), close_store=False) as executor:
        blobs: list[Any] = [executor.submit(generate, seed).result() for seed in seeds]
        # What the pool ships per task is the proxy's factory (key + store config),
        # not 2 MB of bytes. (Pickling the owned proxy itself here would move it.)
        wire = len(pickle.dumps(get_factory(blobs[0])))
        # Passing an owned proxy moves it (the worker evicts it once done with it),
        # so the local handles die here: forget them.
        futures = [executor.submit(digest, blob) for blob in blobs]
        del blobs
        digests = [future.result() for future in futures]
        # map() applies the same policy per item: the large bytes go as proxies.
        mapped = list(executor.map(digest, [generate(s) for s in seeds]))
    assert mapped == digests
    return digests, wire


def main() -> None:
    with file_store("executor") as store:
        digests, wire = run(store)
        print(f"{len(digests)} digests, e.g. {digests[0][:16]}...")
        print(f"a {PAYLOAD_BYTES:,}-byte result crossed the pool as {wire} bytes")
        left = leftover(store)
        print(f"objects left in the store: {left}")
        assert left == 0


if __name__ == "__main__":
    main()
