"""Ownership: the owner's key is evicted when the owner is dropped; tasks borrow.

* ``store.owned_proxy(obj)`` gives an :class:`~proxystore.store.ref.OwnedProxy`.
* Tasks get :func:`~proxystore.store.ref.borrow` (shared, read-only) or
  :func:`~proxystore.store.ref.mut_borrow` (exclusive) references; submitting them
  with :func:`proxystore.store.scopes.submit` ends each borrow when its task is done.
* :func:`~proxystore.store.ref.update` writes a mutable borrow's changes back.
* Dropping the owner evicts the object: no cleanup code, nothing leaked.

    uv run --frozen python -m examples.ownership_pattern
"""

from __future__ import annotations

import gc
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

from examples._common import file_store, leftover
from proxystore.store import Store
from proxystore.store.ref import (
    MutableBorrowError,
    RefMutProxy,
    RefProxy,
    borrow,
    mut_borrow,
    update,
)
from proxystore.store.scopes import submit
from proxystore.store.utils import get_key


def mean(values: RefProxy[list[float]]) -> float:
    """A read-only task."""
    return sum(values) / len(values)


def scale(values: RefMutProxy[list[float]], factor: float) -> None:
    """A task that mutates its argument and writes it back to the store."""
    values[:] = [v * factor for v in values]
    update(values)


def run(store: Store[Any]) -> tuple[list[float], list[float], bool]:
    """Borrow in parallel, then mutably; return means, new data, whether evicted."""
    owned = store.owned_proxy([1.0, 2.0, 3.0], skip_nonproxiable=False)
    key = get_key(owned)
    with ThreadPoolExecutor(4) as pool:
        readers = [submit(pool.submit, args=(mean, borrow(owned))) for _ in range(3)]
        means = [f.result() for f in readers]
    # While a reader could still hold a shared borrow, a mutable one is refused.
    held = borrow(owned)
    try:
        mut_borrow(owned)
    except MutableBorrowError as exc:
        print(f"refused as expected: {exc}")
    del held
    with ThreadPoolExecutor(1) as pool:
        submit(pool.submit, args=(scale, mut_borrow(owned), 10.0)).result()
    store.cache.evict(key)
    scaled = store.get(key)
    del owned
    gc.collect()
    return means, scaled, not store.exists(key)


def across_processes(store: Store[Any]) -> tuple[float, list[float]]:
    """Borrow into spawned workers: the borrows travel by pickle and end when done.

    A mutable borrow that went to another process is written back there with
    ``update``; when it ends, the owner re-reads the object instead of trusting
    its cached copy.
    """
    owned = store.owned_proxy([1.0, 2.0, 3.0], skip_nonproxiable=False)
    spawn = multiprocessing.get_context("spawn")
    # Leaving the pool's block waits for the done-callbacks that end the borrows.
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        average = submit(pool.submit, args=(mean, borrow(owned))).result()
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        submit(pool.submit, args=(scale, mut_borrow(owned), 10.0)).result()
    return average, list(owned)


def main() -> None:
    with file_store("ownership") as store:
        means, scaled, evicted = run(store)
        print(f"means={means} scaled={scaled} evicted-on-drop={evicted}")
        assert evicted
        average, scaled = across_processes(store)
        print(f"in spawned workers: mean={average} scaled={scaled}")
        assert scaled == [10.0, 20.0, 30.0]
        assert leftover(store) == 0


if __name__ == "__main__":
    main()
