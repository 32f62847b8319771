"""Where an endpoint keeps its objects: in memory or in a SQLite database.

Both storages implement the `Storage` protocol (async `get`/`set`/`exists`/`evict`
and `close`) and enforce the maximum object size with `ObjectSizeExceededError`.
`SQLiteStorage` runs the standard library's `sqlite3` on one private thread, so
the event loop never blocks on disk and no third-party driver is needed.
"""

from __future__ import annotations

import asyncio
import pathlib
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeVar

from proxystore.endpoint.config import secure_file
from proxystore.endpoint.constants import MAX_OBJECT_SIZE_DEFAULT
from proxystore.endpoint.exceptions import ObjectSizeExceededError
from proxystore.utils.data import bytes_to_readable

__all__ = ["DictStorage", "SQLiteStorage", "Storage"]

T = TypeVar("T")


class Storage(Protocol):
    """Async byte storage used by an endpoint."""

    async def evict(self, key: str) -> None:
        """Remove the object at `key` (a missing key is not an error)."""
        ...

    async def exists(self, key: str) -> bool:
        """Return whether an object is stored at `key`."""
        ...

    async def get(self, key: str, default: bytes | None = None) -> bytes | None:
        """Return the object at `key`, or `default` when there is none."""
        ...

    async def set(self, key: str, blob: bytes) -> None:
        """Store `blob` at `key`, replacing any previous object.

        Raises:
            ObjectSizeExceededError: If `blob` is larger than the maximum size.
        """
        ...

    async def close(self) -> None:
        """Release the storage's resources."""
        ...


def _check_size(blob: bytes, max_object_size: int | None) -> None:
    if max_object_size is not None and len(blob) > max_object_size:
        raise ObjectSizeExceededError(
            f"Object of {bytes_to_readable(len(blob))} exceeds the endpoint's "
            f"maximum object size of {bytes_to_readable(max_object_size)}."
        )


class DictStorage:
    """Objects kept in a dictionary (lost when the endpoint stops).

    Args:
        max_object_size: Largest object accepted, in bytes (`None`: no limit).
    """

    def __init__(
        self, *, max_object_size: int | None = MAX_OBJECT_SIZE_DEFAULT
    ) -> None:
        self._data: dict[str, bytes] = {}
        self.max_object_size = max_object_size

    async def evict(self, key: str) -> None:
        """Remove the object at `key`."""
        self._data.pop(key, None)

    async def exists(self, key: str) -> bool:
        """Return whether an object is stored at `key`."""
        return key in self._data

    async def get(self, key: str, default: bytes | None = None) -> bytes | None:
        """Return the object at `key`, or `default`."""
        return self._data.get(key, default)

    async def set(self, key: str, blob: bytes) -> None:
        """Store `blob` at `key`.

        Raises:
            ObjectSizeExceededError: If `blob` exceeds the maximum object size.
        """
        _check_size(blob, self.max_object_size)
        self._data[key] = blob

    async def close(self) -> None:
        """Drop every object."""
        self._data.clear()


class SQLiteStorage:
    """Objects persisted in a SQLite database file.

    Args:
        database_path: Database file (`':memory:'` for a private in-memory one).
        max_object_size: Largest object accepted, in bytes (`None`: no limit).
        file_mode: Permission bits the database file gets (SQLite gives its
            journal files the same); a new parent directory is 0700 when the
            mode is private to the user, else 0755.
    """

    def __init__(
        self,
        database_path: str | pathlib.Path = ":memory:",
        *,
        max_object_size: int | None = MAX_OBJECT_SIZE_DEFAULT,
        file_mode: int = 0o600,
    ) -> None:
        if str(database_path) == ":memory:":
            self.database_path = ":memory:"
        else:
            self.database_path = str(pathlib.Path(database_path).expanduser().resolve())
        self.max_object_size = max_object_size
        self.file_mode = file_mode
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            if self.database_path != ":memory:":
                private = not self.file_mode & 0o077
                pathlib.Path(self.database_path).parent.mkdir(
                    mode=0o700 if private else 0o755, parents=True, exist_ok=True
                )
                secure_file(self.database_path, self.file_mode)
            conn = sqlite3.connect(self.database_path, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS blobs "
                "(key TEXT PRIMARY KEY, value BLOB NOT NULL)"
            )
            conn.commit()
            self._conn = conn
        return self._conn

    async def db(self) -> sqlite3.Connection:
        """Return the database connection, opening it on first use.

        The connection belongs to the storage's private thread: use it only
        through that thread (as the storage's own methods do).
        """
        return await self._run(lambda conn: conn)

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="endpoint-sqlite")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(self._connect()))

    async def evict(self, key: str) -> None:
        """Remove the object at `key`."""

        def op(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM blobs WHERE key=?", (key,))
            conn.commit()

        await self._run(op)

    async def exists(self, key: str) -> bool:
        """Return whether an object is stored at `key`."""

        def op(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT 1 FROM blobs WHERE key=?", (key,)).fetchone()
            return row is not None

        return await self._run(op)

    async def get(self, key: str, default: bytes | None = None) -> bytes | None:
        """Return the object at `key`, or `default`."""

        def op(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute("SELECT value FROM blobs WHERE key=?", (key,)).fetchone()
            return default if row is None else bytes(row[0])

        return await self._run(op)

    async def set(self, key: str, blob: bytes) -> None:
        """Store `blob` at `key`.

        Raises:
            ObjectSizeExceededError: If `blob` exceeds the maximum object size.
        """
        _check_size(blob, self.max_object_size)

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO blobs (key, value) VALUES (?, ?)", (key, blob)
            )
            conn.commit()

        await self._run(op)

    async def close(self) -> None:
        """Close the database (its data stays on disk)."""
        executor, self._executor = self._executor, None
        if executor is None:
            return

        def op() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(executor, op)
        executor.shutdown(wait=True)
