"""An endpoint's in-memory objects within a memory budget, spilling to disk.

`BudgetedStorage` wraps the in-memory `DictStorage`: while the objects it holds
stay within the budget nothing changes; a `set` that would exceed it first moves
the least recently used objects, one file each, to a private local directory
(optionally compressed with zstandard, as the shared-memory arena's spill does:
see ``proxystore.connectors._spill``). A `get` of a spilled object brings it back
into memory (spilling others if needed). Keys never change, so clients and peers
see no difference except the time a restore takes.

The endpoint is one process, so the index (which keys are spilled, their
deadlines) is a dictionary of this object. Expired objects are dropped, never
spilled or restored. An object larger than the whole budget goes straight to
disk. Disk reads and writes run in a worker thread, under one lock, so the event
loop keeps serving other requests. Moves are counted in `metrics` and logged at
DEBUG, one line each.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import hashlib
import logging
import os
import tempfile
import time
from typing import TYPE_CHECKING

from proxystore.connectors._spill import DirectoryTier, TierStats, _decode, _encode
from proxystore.endpoint.constants import MAX_OBJECT_SIZE_DEFAULT
from proxystore.endpoint.storage import DictStorage, StoredObject, _check_size

if TYPE_CHECKING:
    from proxystore.endpoint.config import EndpointConfig

__all__ = ["BudgetedStorage", "budgeted_storage", "memory_budget"]

logger = logging.getLogger(__name__)

_CODECS = {None: 0, "zstd": 1}
#: Seconds between two scans for expired objects when a put is over the budget.
_DROP_EVERY = 0.05


def memory_budget(budget: int | str) -> int:
    """Return ``budget`` in bytes: an ``int``, digits, or ``"N%"`` of the RAM.

    Raises:
        ValueError: if it is malformed or not positive.
    """
    if isinstance(budget, int) and not isinstance(budget, bool):
        size = budget
    elif isinstance(budget, str) and budget.strip().isdecimal():
        size = int(budget)
    elif isinstance(budget, str) and budget.strip().endswith("%"):
        try:
            fraction = float(budget.strip()[:-1]) / 100
        except ValueError:
            raise ValueError(f"Invalid memory budget {budget!r}.") from None
        if not 0 < fraction <= 1:
            raise ValueError(f"Memory budget {budget!r} is not in (0, 100%].")
        size = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * fraction)
    else:
        raise ValueError(f"Invalid memory budget {budget!r}: bytes or 'N%'.")
    if size <= 0:
        raise ValueError(f"Memory budget {budget!r} is not positive.")
    return size


class _Spilled:
    __slots__ = ("deadline", "size", "stored")

    def __init__(self, size: int, stored: float, deadline: float | None) -> None:
        self.size = size
        self.stored = stored
        self.deadline = deadline


class BudgetedStorage:
    """In-memory storage bounded by ``budget`` bytes; the rest waits on disk.

    Args:
        budget: Bytes of object data kept in memory (``int``, digits, or
            ``"N%"`` of the machine's RAM).
        directory: Private directory of spilled objects (created 0700; removed
            by `close`).
        compress: ``"zstd"`` to compress spilled objects, or ``None``.
        max_object_size: Largest object accepted, in bytes (``None``: no limit).

    Raises:
        ValueError: if the budget or the codec is invalid.
    """

    def __init__(
        self,
        *,
        budget: int | str,
        directory: str,
        compress: str | None = None,
        max_object_size: int | None = MAX_OBJECT_SIZE_DEFAULT,
    ) -> None:
        if compress not in _CODECS:
            raise ValueError(f"Unknown spill codec {compress!r}: use 'zstd' or None.")
        self.budget = memory_budget(budget)
        self.max_object_size = max_object_size
        self._memory = DictStorage(max_object_size=None)
        self._codec = _CODECS[compress]
        self._tier = DirectoryTier(directory)
        # In-memory keys, least recently used first: (size, when stored).
        self._sizes: collections.OrderedDict[str, tuple[int, float]] = (
            collections.OrderedDict()
        )
        self._used = 0
        self._spilled: dict[str, _Spilled] = {}
        self._next_drop = 0.0
        self._lock = asyncio.Lock()
        self.stats = TierStats()

    # ------------------------------------------------------------ helpers
    @staticmethod
    def _name(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    def metrics(self) -> dict[str, int]:
        """Return the counters of moves to and from the spill directory."""
        return dataclasses.asdict(self.stats)

    def memory_used(self) -> int:
        """Return the bytes of object data held in memory now."""
        return self._used

    def _forget_memory(self, key: str) -> None:
        entry = self._sizes.pop(key, None)
        if entry is not None:
            self._used -= entry[0]

    async def _drop_spilled(self, key: str) -> None:
        if self._spilled.pop(key, None) is not None:
            await asyncio.to_thread(self._tier.remove, self._name(key))

    async def _drop_expired(self) -> list[str]:
        """Remove the expired objects in memory; return their keys."""
        if not await self._memory.sweep():
            return []
        gone = [k for k in self._sizes if not await self._memory.exists(k)]
        for key in gone:
            self._forget_memory(key)
        return gone

    async def _spill_one(self) -> bool:
        """Move the least recently used object to disk; False when none is left."""
        if not self._sizes:
            return False
        key, (size, stored) = next(iter(self._sizes.items()))
        self._forget_memory(key)
        blob = await self._memory.get(key)
        ttl = await self._memory.ttl(key)
        await self._memory.evict(key)
        if blob is None:  # expired: dropped, never spilled
            self.stats.objects_dropped += 1
            logger.debug("dropped expired %r instead of spilling it", key)
            return True
        deadline = None if ttl is None else time.time() + ttl
        framed, _ = _encode([blob], self._codec)
        written = await asyncio.to_thread(self._tier.write, self._name(key), framed)
        self._spilled[key] = _Spilled(size, stored, deadline)
        self.stats.objects_spilled += 1
        self.stats.bytes_spilled += size
        self.stats.bytes_written += written
        logger.debug(
            "spilled %r (%d bytes, %d written) from memory to %s",
            key, size, written, self._tier.path,
        )  # fmt: skip
        return True

    async def _admit(
        self, key: str, blob: bytes, ttl: float | None, stored: float | None = None
    ) -> bool:
        """Keep ``blob`` in memory, spilling others; False if it can never fit."""
        if len(blob) > self.budget:
            return False
        if self._used + len(blob) > self.budget and time.monotonic() >= self._next_drop:
            # Expired objects go first (dropped, never spilled), wherever they
            # are in the LRU order; at most every _DROP_EVERY s (a scan).
            self._next_drop = time.monotonic() + _DROP_EVERY
            for gone in await self._drop_expired():
                self.stats.objects_dropped += 1
                logger.debug("dropped expired %r instead of spilling it", gone)
        while self._used + len(blob) > self.budget and await self._spill_one():
            pass
        await self._memory.set(key, blob, ttl)
        self._sizes[key] = (len(blob), time.time() if stored is None else stored)
        self._used += len(blob)
        return True

    # ------------------------------------------------------------ protocol
    async def set(self, key: str, blob: bytes, ttl: float | None = None) -> None:
        """Store ``blob`` at ``key`` (expiring after ``ttl`` seconds, if given).

        Raises:
            ObjectSizeExceededError: If ``blob`` exceeds the maximum object size.
        """
        _check_size(blob, self.max_object_size)
        async with self._lock:
            self._forget_memory(key)
            await self._memory.evict(key)
            await self._drop_spilled(key)
            if await self._admit(key, blob, ttl):
                return
            framed, _ = _encode([blob], self._codec)
            written = await asyncio.to_thread(self._tier.write, self._name(key), framed)
            now = time.time()
            deadline = None if ttl is None else now + ttl
            self._spilled[key] = _Spilled(len(blob), now, deadline)
            self.stats.objects_spilled += 1
            self.stats.bytes_spilled += len(blob)
            self.stats.bytes_written += written
            logger.debug("stored %r (%d bytes) straight to disk", key, len(blob))

    async def get(self, key: str, default: bytes | None = None) -> bytes | None:
        """Return the object at ``key`` (restored from disk if spilled), or default."""
        if key in self._sizes:
            blob = await self._memory.get(key)
            if blob is not None:
                self._sizes.move_to_end(key)
                return blob
        async with self._lock:
            if key in self._sizes:  # expired in memory
                self._forget_memory(key)
                await self._memory.evict(key)
                return default
            entry = self._spilled.get(key)
            if entry is None:
                return default
            if entry.deadline is not None and entry.deadline <= time.time():
                await self._drop_spilled(key)
                return default
            raw = await asyncio.to_thread(self._tier.read, self._name(key))
            if raw is None:
                return default
            blob = bytes(_decode(raw, key))
            self.stats.bytes_read += len(blob)
            ttl = None if entry.deadline is None else entry.deadline - time.time()
            if await self._admit(key, blob, ttl, entry.stored):
                del self._spilled[key]
                await asyncio.to_thread(self._tier.remove, self._name(key))
                self.stats.objects_restored += 1
                self.stats.bytes_restored += len(blob)
                logger.debug("restored %r (%d bytes) from disk", key, len(blob))
            return blob

    async def exists(self, key: str) -> bool:
        """Return whether an unexpired object is stored at ``key``."""
        if key in self._sizes:
            return await self._memory.exists(key)
        entry = self._spilled.get(key)
        return entry is not None and (
            entry.deadline is None or entry.deadline > time.time()
        )

    async def evict(self, key: str) -> None:
        """Remove the object at ``key``, in memory or on disk."""
        async with self._lock:
            self._forget_memory(key)
            await self._memory.evict(key)
            await self._drop_spilled(key)

    async def expire(self, key: str, ttl: float | None) -> bool:
        """Give the object at ``key`` a new deadline; False when there is none."""
        if key in self._sizes:
            return await self._memory.expire(key, ttl)
        if not await self.exists(key):
            return False
        self._spilled[key].deadline = None if ttl is None else time.time() + ttl
        return True

    async def ttl(self, key: str) -> float | None:
        """Seconds before the object at ``key`` expires, or ``None``."""
        if key in self._sizes:
            return await self._memory.ttl(key)
        if not await self.exists(key):
            return None
        deadline = self._spilled[key].deadline
        return None if deadline is None else max(0.0, deadline - time.time())

    async def listing(self) -> list[StoredObject]:
        """Every unexpired object, in memory or on disk."""
        now = time.time()
        found = await self._memory.listing()
        for key, entry in self._spilled.items():
            if entry.deadline is not None and entry.deadline <= now:
                continue
            ttl = None if entry.deadline is None else entry.deadline - now
            found.append(StoredObject(key, entry.size, now - entry.stored, ttl))
        return found

    async def sweep(self) -> int:
        """Remove the expired objects (memory and disk); return how many."""
        async with self._lock:
            removed = len(await self._drop_expired())
            now = time.time()
            due = [
                k
                for k, e in self._spilled.items()
                if e.deadline is not None and e.deadline <= now
            ]
            for key in due:
                await self._drop_spilled(key)
            return removed + len(due)

    async def close(self) -> None:
        """Drop every object and remove the spill directory."""
        async with self._lock:
            await self._memory.close()
            self._sizes.clear()
            self._used = 0
            self._spilled.clear()
            await asyncio.to_thread(self._tier.clear)

    def __repr__(self) -> str:
        path = self._tier.path
        return f"{type(self).__name__}(budget={self.budget}, directory={path!r})"


def budgeted_storage(config: EndpointConfig) -> BudgetedStorage | None:
    """Return the storage of an endpoint with a memory budget (else ``None``)."""
    storage = config.storage
    if storage.memory_budget is None or storage.database_path is not None:
        return None
    directory = storage.spill_directory or os.path.join(
        tempfile.gettempdir(), f"proxystore-endpoint-spill-{os.geteuid()}-{config.uuid}"
    )
    logger.info(
        "Storing objects in memory within %s, spilling to %s",
        storage.memory_budget,
        directory,
    )
    return BudgetedStorage(
        budget=storage.memory_budget,
        directory=directory,
        compress=storage.spill_compress,
        max_object_size=storage.max_object_size,
    )
