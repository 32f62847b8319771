"""Helpers shared by the pattern tests (unit, property and integration); no tests.

"No key left behind": every pattern test runs its store through
:func:`pattern_store`, which, when the test is done, collects garbage (owners evict
when collected) and fails if the connector still holds objects the test created.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

from proxystore.store import Store


def stored_keys(connector: Any) -> set[Any]:
    """Return what ``connector`` holds: dict keys, file names or Redis keys."""
    from proxystore.connectors.file import FileConnector
    from proxystore.connectors.local import LocalConnector

    if isinstance(connector, LocalConnector):
        return set(connector._store)
    if isinstance(connector, FileConnector):
        if not os.path.isdir(connector.store_dir):
            return set()
        # Dot-files are a writer's temporary files, not stored objects.
        return {n for n in os.listdir(connector.store_dir) if not n.startswith(".")}
    return set(connector._redis.keys())


def wait_until_drained(
    connector: Any,
    baseline: set[Any] | frozenset[Any] = frozenset(),
    timeout: float = 5,
) -> set[Any]:
    """Wait until ``connector`` holds nothing beyond ``baseline``; return the rest.

    Other processes (pool workers) evict after they have already answered, so the
    last eviction may trail the result by a moment.
    """
    deadline = time.monotonic() + timeout
    while True:
        gc.collect()
        left = stored_keys(connector) - baseline
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.01)


@contextlib.contextmanager
def pattern_store(
    connector: Any, prefix: str, *, timeout: float = 0
) -> Iterator[Store[Any]]:
    """A registered store over ``connector``; asserts no key is left at the end."""
    baseline = stored_keys(connector)
    with Store(f"{prefix}-{uuid.uuid4().hex}", connector, register=True) as store:
        yield store
        # Collected owners evict through the registry: drain before closing.
        left = wait_until_drained(connector, baseline, timeout)
    assert not left, f"the test left {len(left)} object(s) behind: {sorted(left)[:3]}"
