"""What every example needs: a throwaway store over a temporary directory."""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any

from proxystore.connectors.file import FileConnector
from proxystore.store import Store


@contextlib.contextmanager
def file_store(prefix: str) -> Iterator[Store[Any]]:
    """A registered store over a FileConnector in a temporary directory.

    A FileConnector is visible to every process on this machine, so proxies made
    here resolve in pool workers and spawned processes too.
    """
    with (
        tempfile.TemporaryDirectory(prefix=f"proxystore-{prefix}-") as tmp,
        Store(
            f"{prefix}-{uuid.uuid4().hex[:8]}",
            FileConnector(tmp, clear=False),
            register=True,
        ) as store,
    ):
        yield store


def leftover(store: Store[Any]) -> int:
    """How many objects the store's FileConnector still holds (0: nothing leaked).

    Waits a moment first: a pool worker may evict just after it answered.
    """
    import gc
    import os
    import time

    directory = store.connector.store_dir
    deadline = time.monotonic() + 5
    while True:
        gc.collect()
        # Dot-files are a writer's temporary files, not stored objects.
        count = sum(not name.startswith(".") for name in os.listdir(directory))
        if count == 0 or time.monotonic() > deadline:
            return count
        time.sleep(0.01)
