"""Deadlines of shared-memory arena objects, in a side table beside the arena.

The arena's slot entries have no free word, so the deadlines of objects stored
with a time-to-live live in a second private file of ``/dev/shm``, named after
the arena with a ``.ttl`` suffix. Layout (native ``int64`` words)::

    word 0            magic
    word 1            slot count (that of the arena)
    2 + 2 * slot      generation of the object the deadline belongs to
    3 + 2 * slot      deadline (``time.time_ns()``)

An entry counts only while its generation is the slot's current one: generations
are never reused, so an entry left by an evicted or reused slot is inert. A put
writes the entry *before* it publishes the slot (the generation word last), so no
crash can leave an object in the arena without the deadline it was stored with.

Readers learn that the table exists from one word of the arena header
(`FLAG_WORD`, set once and never cleared): while it is 0 the read path pays one
word read and nothing else.

Sweeping: every process that maps such an arena runs a background sweeper
(`proxystore.connectors._sweeper`); a sweep takes an exclusive, non-blocking
``flock`` on the side table (a second sweeper returns at once) and evicts each
slot whose deadline passed. Evicting follows the arena's rules: a slot that
some process still holds a view of is hidden and freed by its last holder.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Final, Literal, overload

from proxystore.connectors import _arena as arenas
from proxystore.connectors.exceptions import CorruptPayloadError

__all__ = [
    "FLAG_WORD",
    "Deadlines",
    "arena_objects",
    "deadlines_of",
    "sweep_arena",
    "table_bytes",
]

#: Header word of the arena set to 1 once its side table exists.
FLAG_WORD: Final = 480
_MAGIC: Final = int.from_bytes(b"PSARTTL1", "little")
_WHAT: Final = "shared-memory arena deadline table"

_tables: dict[str, Deadlines] = {}
_tables_lock = threading.Lock()


def table_bytes(slots: int) -> int:
    """Return the ``/dev/shm`` bytes the table of an arena of ``slots`` takes."""
    size = (2 + 2 * slots) * 8
    return size + (-size % mmap.PAGESIZE)


class Deadlines:
    """This process's mapping of one arena's deadline table.

    Args:
        arena: The arena the table belongs to.

    Raises:
        ForeignFileError: if the table's name is taken by a file that is not a
            private file of this user.
        CorruptPayloadError: if the file is not such a table for this arena.
    """

    def __init__(self, arena: arenas.Arena) -> None:
        self.path = arena.path + ".ttl"
        self.slots = arena.slots
        size = (2 + 2 * self.slots) * 8
        uid = os.geteuid()
        flags = os.O_RDWR | os.O_CREAT | arenas.OPEN_FLAGS
        try:
            fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            arenas.refuse_unopenable(exc, self.path, _WHAT, uid)
            raise
        try:
            st = arenas.check_private(fd, self.path, _WHAT, uid)
            if st.st_size == 0:
                # Two creators may race here: both write the same header.
                os.ftruncate(fd, size)
                os.pwrite(fd, _MAGIC.to_bytes(8, "little"), 0)
                os.pwrite(fd, self.slots.to_bytes(8, "little"), 8)
            elif st.st_size != size:
                raise CorruptPayloadError(
                    f"{self.path!r} is not the deadline table of its arena "
                    f"({st.st_size} bytes, expected {size}). Remove it."
                )
            self.mm = mmap.mmap(fd, size, flags=mmap.MAP_SHARED)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        weakref.finalize(self, os.close, fd).atexit = False
        self.words = memoryview(self.mm).cast("q")
        if self.words[0] != _MAGIC or self.words[1] != self.slots:
            raise CorruptPayloadError(
                f"{self.path!r} is not the deadline table of its arena. Remove it."
            )
        arena.words[FLAG_WORD] = 1

    def set(self, slot: int, gen: int, deadline_ns: int | None) -> None:
        """Record the deadline of the object ``(slot, gen)`` (``None``: none)."""
        w = self.words
        i = 2 + 2 * slot
        if deadline_ns is None:
            w[i] = 0  # inert: no object has generation 0
            return
        w[i + 1] = deadline_ns
        w[i] = gen  # decisive, after the deadline it vouches for

    def deadline(self, slot: int, gen: int) -> int | None:
        """Return the deadline of ``(slot, gen)`` (``time_ns``), ``None`` if none."""
        if not 0 <= slot < self.slots:
            return None
        i = 2 + 2 * slot
        w = self.words
        if w[i] != gen:
            return None
        deadline: int = w[i + 1]
        return deadline

    def expired(self, slot: int, gen: int) -> bool:
        """Return whether ``(slot, gen)`` has a deadline that has passed."""
        deadline = self.deadline(slot, gen)
        return deadline is not None and deadline <= time.time_ns()

    def due(self) -> list[tuple[int, int]]:
        """Return the ``(slot, generation)`` of every entry whose deadline passed."""
        now = time.time_ns()
        gens = self.words[2::2].tolist()
        deadlines = self.words[3::2].tolist()
        return [
            (slot, gen)
            for slot, (gen, deadline) in enumerate(zip(gens, deadlines, strict=True))
            if gen and deadline <= now
        ]


@overload
def deadlines_of(arena: arenas.Arena, *, create: Literal[True]) -> Deadlines: ...


@overload
def deadlines_of(arena: arenas.Arena, *, create: bool) -> Deadlines | None: ...


def deadlines_of(arena: arenas.Arena, *, create: bool) -> Deadlines | None:
    """Return this process's mapping of ``arena``'s deadline table.

    Args:
        arena: The arena.
        create: Make the table when it does not exist yet (a put with a TTL);
            otherwise return ``None`` unless the arena's flag says it exists.
    """
    table = _tables.get(arena.path)
    if table is not None and table.slots == arena.slots:
        return table
    if not create and not arena.words[FLAG_WORD]:
        return None
    with _tables_lock:
        table = _tables.get(arena.path)
        if table is None or table.slots != arena.slots:
            table = _tables[arena.path] = Deadlines(arena)
        return table


def forget(path: str) -> None:
    """Drop this process's mapping of the table of the arena at ``path``."""
    with _tables_lock:
        _tables.pop(path, None)


def sweep_arena(
    arena: arenas.Arena, spilled: Callable[[int, int], bool] | None = None
) -> int:
    """Evict every arena object whose deadline passed; return how many.

    Args:
        arena: The arena.
        spilled: Removes the object ``(slot, generation)`` if it was spilled out
            of the arena (and returns whether it was); ``None``: no spill tiers.

    Returns 0 at once when another process is sweeping this arena.
    """
    table = deadlines_of(arena, create=False)
    if table is None:
        return 0
    try:
        fcntl.flock(table.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0
    try:
        removed = 0
        for slot, gen in table.due():
            if arena.exists(slot, gen):
                arena.evict(slot, gen)
                removed += 1
            elif spilled is not None and spilled(slot, gen):
                removed += 1
            if table.words[2 + 2 * slot] == gen:
                table.set(slot, gen, None)
        return removed
    finally:
        fcntl.flock(table.fd, fcntl.LOCK_UN)


def arena_objects(arena: arenas.Arena) -> list[tuple[int, int, int, list[int]]]:
    """Return ``(slot, generation, size, holder pids)`` of each ready object."""
    objects = []
    with arena.locked():
        w = arena.words
        for slot in range(w[arenas._H_HIGH]):
            e = arena._entry(slot)
            if w[e + arenas._E_STATE] != arenas.READY:
                continue
            hold = e + arenas._E_HOLD
            holders = [pid for pid in w[hold : hold + arenas.HOLDERS].tolist() if pid]
            objects.append((slot, w[e + arenas._E_GEN], w[e + arenas._E_SIZE], holders))
    return objects
