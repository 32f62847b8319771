"""Where an endpoint keeps its objects: in memory or in a SQLite database.

Both storages implement the `Storage` protocol (async `get`/`set`/`exists`/`evict`
and `close`) and enforce the maximum object size with `ObjectSizeExceededError`.
`SQLiteStorage` runs the standard library's `sqlite3` on one private thread, so
the event loop never blocks on disk and no third-party driver is needed.

Objects may carry a deadline (`set(..., ttl=)`, `expire`): a read never returns
an object past its deadline, and `sweep` (called periodically by the endpoint
process) removes them. The deadline is kept with the object (in the database
for `SQLiteStorage`), so it holds whatever happens to the clients that stored it.
"""

from __future__ import annotations

import asyncio
import pathlib
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple, Protocol, TypeVar

from proxystore.endpoint.config import secure_file
from proxystore.endpoint.constants import MAX_OBJECT_SIZE_DEFAULT
from proxystore.endpoint.exceptions import ObjectSizeExceededError
from proxystore.utils.data import bytes_to_readable

__all__ = ["DictStorage", "SQLiteStorage", "Storage", "StoredObject"]

T = TypeVar("T")


class StoredObject(NamedTuple):
    """One entry of `Storage.listing`."""

    key: str
    size: int
    age: float
    """Seconds since the object was stored."""
    ttl: float | None
    """Seconds before it expires (`None`: no deadline)."""


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

    async def set(self, key: str, blob: bytes, ttl: float | None = None) -> None:
        """Store `blob` at `key`, replacing any previous object.

        Args:
            key: Key of the object.
            blob: Its bytes.
            ttl: Seconds after which it expires (`None`: never).

        Raises:
            ObjectSizeExceededError: If `blob` is larger than the maximum size.
        """
        ...

    async def expire(self, key: str, ttl: float | None) -> bool:
        """Give the object at `key` a new deadline (`None`: none); False if missing."""
        ...

    async def ttl(self, key: str) -> float | None:
        """Seconds before the object at `key` expires (`None`: no deadline/missing)."""
        ...

    async def listing(self) -> list[StoredObject]:
        """Every unexpired object with its size, age and time-to-live."""
        ...

    async def sweep(self) -> int:
        """Remove the expired objects; return how many."""
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
        # When each object was stored, and the deadlines (time.time()) of those
        # that have one.
        self._stored: dict[str, float] = {}
        self._deadlines: dict[str, float] = {}
        self.max_object_size = max_object_size

    def _expired(self, key: str) -> bool:
        deadline = self._deadlines.get(key)
        if deadline is None or deadline > time.time():
            return False
        self._drop(key)
        return True

    def _drop(self, key: str) -> None:
        self._data.pop(key, None)
        self._stored.pop(key, None)
        self._deadlines.pop(key, None)

    async def evict(self, key: str) -> None:
        """Remove the object at `key`."""
        self._drop(key)

    async def exists(self, key: str) -> bool:
        """Return whether an object is stored at `key`."""
        if self._deadlines and self._expired(key):
            return False
        return key in self._data

    async def get(self, key: str, default: bytes | None = None) -> bytes | None:
        """Return the object at `key`, or `default`."""
        if self._deadlines and self._expired(key):
            return default
        return self._data.get(key, default)

    async def set(self, key: str, blob: bytes, ttl: float | None = None) -> None:
        """Store `blob` at `key` (expiring after `ttl` seconds, if given).

        Raises:
            ObjectSizeExceededError: If `blob` exceeds the maximum object size.
        """
        _check_size(blob, self.max_object_size)
        now = time.time()
        self._data[key] = blob
        self._stored[key] = now
        if ttl is None:
            self._deadlines.pop(key, None)
        else:
            self._deadlines[key] = now + ttl

    async def expire(self, key: str, ttl: float | None) -> bool:
        """Give the object at `key` a new deadline; False when there is none."""
        if not await self.exists(key):
            return False
        if ttl is None:
            self._deadlines.pop(key, None)
        else:
            self._deadlines[key] = time.time() + ttl
        return True

    async def ttl(self, key: str) -> float | None:
        """Seconds before the object at `key` expires, or `None`."""
        if not await self.exists(key):
            return None
        deadline = self._deadlines.get(key)
        return None if deadline is None else max(0.0, deadline - time.time())

    async def listing(self) -> list[StoredObject]:
        """Every unexpired object with its size, age and time-to-live."""
        now = time.time()
        deadlines = self._deadlines
        found = []
        for key, blob in list(self._data.items()):
            deadline = deadlines.get(key)
            if deadline is not None and deadline <= now:
                continue
            ttl = None if deadline is None else deadline - now
            found.append(
                StoredObject(key, len(blob), now - self._stored.get(key, now), ttl)
            )
        return found

    async def sweep(self) -> int:
        """Remove the expired objects; return how many."""
        now = time.time()
        due = [key for key, deadline in self._deadlines.items() if deadline <= now]
        for key in due:
            self._drop(key)
        return len(due)

    async def close(self) -> None:
        """Drop every object."""
        self._data.clear()
        self._stored.clear()
        self._deadlines.clear()


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
            # Databases of earlier releases lack the lifecycle columns.
            columns = {row[1] for row in conn.execute("PRAGMA table_info(blobs)")}
            if "stored" not in columns:
                conn.execute("ALTER TABLE blobs ADD COLUMN stored REAL")
            if "expires" not in columns:
                conn.execute("ALTER TABLE blobs ADD COLUMN expires REAL")
            conn.execute(
                "CREATE INDEX IF NOT EXISTS blobs_expires ON blobs (expires) "
                "WHERE expires IS NOT NULL"
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
            row = conn.execute(
                "SELECT 1 FROM blobs WHERE key=? AND (expires IS NULL OR expires > ?)",
                (key, time.time()),
            ).fetchone()
            return row is not None

        return await self._run(op)

    async def get(self, key: str, default: bytes | None = None) -> bytes | None:
        """Return the object at `key`, or `default`."""

        def op(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute(
                "SELECT value FROM blobs WHERE key=? AND "
                "(expires IS NULL OR expires > ?)",
                (key, time.time()),
            ).fetchone()
            return default if row is None else bytes(row[0])

        return await self._run(op)

    async def set(self, key: str, blob: bytes, ttl: float | None = None) -> None:
        """Store `blob` at `key` (expiring after `ttl` seconds, if given).

        Raises:
            ObjectSizeExceededError: If `blob` exceeds the maximum object size.
        """
        _check_size(blob, self.max_object_size)

        def op(conn: sqlite3.Connection) -> None:
            now = time.time()
            conn.execute(
                "INSERT OR REPLACE INTO blobs (key, value, stored, expires) "
                "VALUES (?, ?, ?, ?)",
                (key, blob, now, None if ttl is None else now + ttl),
            )
            conn.commit()

        await self._run(op)

    async def expire(self, key: str, ttl: float | None) -> bool:
        """Give the object at `key` a new deadline; False when there is none."""

        def op(conn: sqlite3.Connection) -> bool:
            now = time.time()
            cursor = conn.execute(
                "UPDATE blobs SET expires=? WHERE key=? AND "
                "(expires IS NULL OR expires > ?)",
                (None if ttl is None else now + ttl, key, now),
            )
            conn.commit()
            return cursor.rowcount > 0

        return await self._run(op)

    async def ttl(self, key: str) -> float | None:
        """Seconds before the object at `key` expires, or `None`."""

        def op(conn: sqlite3.Connection) -> float | None:
            now = time.time()
            row = conn.execute(
                "SELECT expires FROM blobs WHERE key=? AND expires > ?", (key, now)
            ).fetchone()
            return None if row is None else float(row[0]) - now

        return await self._run(op)

    async def listing(self) -> list[StoredObject]:
        """Every unexpired object with its size, age and time-to-live."""

        def op(conn: sqlite3.Connection) -> list[StoredObject]:
            now = time.time()
            rows = conn.execute(
                "SELECT key, length(value), stored, expires FROM blobs "
                "WHERE expires IS NULL OR expires > ?",
                (now,),
            ).fetchall()
            return [
                StoredObject(
                    key,
                    size,
                    0.0 if stored is None else now - stored,
                    None if expires is None else expires - now,
                )
                for key, size, stored, expires in rows
            ]

        return await self._run(op)

    async def sweep(self) -> int:
        """Remove the expired objects; return how many."""

        def op(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "DELETE FROM blobs WHERE expires IS NOT NULL AND expires <= ?",
                (time.time(),),
            )
            conn.commit()
            return cursor.rowcount

        return await self._run(op)

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
