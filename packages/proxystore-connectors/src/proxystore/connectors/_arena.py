"""Pre-mapped shared-memory arena behind the arena mode of the shm connector.

One file of ``/dev/shm`` per namespace holds a header, a table of object slots and
a data region. Every process maps the whole file once (``MAP_SHARED`` with
``MAP_POPULATE``, after the creator has reserved every page with
``posix_fallocate``), so a put is one ``memcpy`` into pages that are already
faulted in and a get of a large object is a view of pages the reader has already
mapped: no system call, no page fault, no new mapping.

File layout (all words are native little-endian ``int64``)::

    page 0              header: magic, file size, slot count, table offset,
                        data offset, last generation, high-water slot count
    table               SLOTS entries of 16 words:
                        state, generation, offset, capacity, payload size,
                        writer pid, then 10 holder pids (0 = free)
    data region         object payloads at 64-byte aligned offsets

Concurrency and crashes:

* Every change of the header or of the table happens under one exclusive
  ``flock`` on the arena file (plus a per-process ``RLock``, because ``flock``
  does not exclude threads sharing a file description). The kernel drops a
  ``flock`` when its holder dies, so a SIGKILLed process never leaves the arena
  locked.
* Each critical section ends with a single decisive word store (a slot's
  ``state`` or one holder word), written after every other field it publishes. A
  process killed inside one therefore leaves either the old or the new state,
  never a half-made one.
* A put allocates under the lock (slot ``WRITING``, owned by its pid), copies the
  payload *outside* the lock, then marks the slot ``READY``. A slot still
  ``WRITING`` whose writer is dead is reclaimed by the next sweep (run whenever
  an allocation finds no room, and by `Arena.sweep`).

Views and slot reuse (the reference-count scheme):

* A key names a slot *and* the generation the slot had when the object was
  stored; generations come from a counter in the header and are never reused, so
  a stale key can never see a later object in the same slot.
* A process that hands out a zero-copy view of a slot records its pid in one of
  the slot's holder words (once per process; a per-process counter tracks its own
  views). The view's owner object has a weakref callback that decrements that
  counter and clears the holder word when the process's last view is gone.
* Evicting a slot with any holder only marks it ``EVICTED`` (invisible to gets,
  not reusable); the last holder to let go frees it. So a slot's bytes never
  change while any process can still read them.
* Holders that died without letting go are dropped by the sweep (a dead pid is
  one for which ``kill(pid, 0)`` fails with ``ESRCH``).

Ownership (``/dev/shm`` is writable by every user, and arena names are predictable):

* The file is created under a random temporary name with ``O_CREAT | O_EXCL``,
  set to mode ``0600`` whatever the umask, then linked to its final name, so it
  is complete and private before anyone can open it by that name.
* Attaching opens the name with ``O_NOFOLLOW`` and checks the *opened*
  descriptor (``fstat``, so no file can be swapped in between): a regular file,
  owned by this process's effective uid, with no group or other permission bits,
  whose header describes a table that fits in the file. Anything else is a
  `ForeignFileError` (or a `CorruptPayloadError` for our own file with a
  broken header) and is never mapped. These checks run once per attach; the
  read path adds no system call.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import mmap
import os
import secrets
import stat
import threading
import weakref
from collections.abc import Sequence
from typing import Any, Final

from proxystore.connectors.exceptions import CorruptPayloadError, ForeignFileError

__all__ = [
    "Arena",
    "ArenaFullError",
    "arena_of",
    "check_private",
    "forget_arena",
    "open_arena",
    "problem_with",
    "refusal",
    "refuse_unopenable",
]

MAGIC: Final = int.from_bytes(b"PSARENA\x01", "little")
HEADER_BYTES: Final = 4096
ALIGN: Final = 64
ENTRY_WORDS: Final = 16
HOLDERS: Final = 10

# Header words.
_H_MAGIC, _H_SIZE, _H_SLOTS, _H_TABLE, _H_DATA, _H_GEN, _H_HIGH = range(7)
# Entry words (offsets inside one entry).
_E_STATE, _E_GEN, _E_OFF, _E_CAP, _E_SIZE, _E_OWNER = range(6)
_E_HOLD: Final = 6
# Slot states.
FREE, WRITING, READY, EVICTED = 0, 1, 2, 3
#: A slot whose object was moved down the spill chain (see ``_spill``) has state
#: ``SPILLED + tier``: it keeps its generation (its key) but no data.
SPILLED: Final = 16
#: Header word of the spill policy's LRU clock; a READY or spilled slot's owner
#: word holds the clock value of its last use (set by `touch`).
_H_CLOCK: Final = 24

_FILE_MODE: Final = 0o600
# Flags of every open of an existing file at a name others could have taken:
# never follow a planted symbolic link, never block on a planted FIFO.
OPEN_FLAGS: Final = os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
_WHAT: Final = "shared-memory arena"
#: Attempts to open-or-create when the file keeps vanishing (clearing closes).
_ATTEMPTS: Final = 5


# The optional C read path (built from _arenac.c); the pure-Python path is used
# without it, or when PROXYSTORE_ARENA_PURE_PYTHON is set to a non-empty value
# other than "0". Both follow one protocol, so processes of either kind share an
# arena.
_arenac: Any = None
if os.environ.get("PROXYSTORE_ARENA_PURE_PYTHON", "") in ("", "0"):
    with contextlib.suppress(ImportError):
        from proxystore.connectors import _arenac
_hold_view: Any = None if _arenac is None else _arenac.hold_view
_HeldView: Any = None if _arenac is None else _arenac.HeldView

#: ctypes array types of held views, by size (up to 256 sizes). Their class
#: attribute tells the deserializer that this read-only memory is stable (no private
#: copy needed), without an attribute store per view.
_VIEW_TYPES: dict[int, Any] = {}


def _view_type(size: int) -> Any:
    kind = type("ArenaBytes", (ctypes.c_ubyte * size,), {"proxystore_zero_copy": True})
    if len(_VIEW_TYPES) < 256:
        _VIEW_TYPES[size] = kind
    return kind


class ArenaFullError(Exception):
    """Raised when the arena file cannot be created for lack of shared memory."""


def refusal(path: str, what: str, problem: str) -> ForeignFileError:
    """Return the error refusing the ``what`` at ``path`` because of ``problem``."""
    return ForeignFileError(
        f"Refusing to use the {what} {path!r}: {problem}. Another local user may "
        "have created it to read or rewrite the objects stored in it; nothing was "
        f"read from or written to it. Check who made it (ls -l {path}), remove it "
        "as its owner or as root, or use another namespace.",
        path=path,
    )


def problem_with(st: os.stat_result, uid: int) -> str | None:
    """Say why a file with status ``st`` is not a private file of ``uid``."""
    if stat.S_ISLNK(st.st_mode):
        return "it is a symbolic link"
    if not stat.S_ISREG(st.st_mode):
        return "it is not a regular file"
    if st.st_uid != uid:
        return f"it belongs to uid {st.st_uid}, not to this process's uid {uid}"
    if st.st_mode & 0o077:
        mode = stat.S_IMODE(st.st_mode)
        return f"other users may open it (mode {mode:04o}, expected 0600)"
    return None


def check_private(fd: int, path: str, what: str, uid: int) -> os.stat_result:
    """Return the status of the open file ``fd`` once it proved private to ``uid``.

    The check reads the opened descriptor, not the name, so the file checked is
    the file used.

    Raises:
        ForeignFileError: if the file is not a regular file, belongs to another
            uid, or has group or other permission bits.
    """
    st = os.fstat(fd)
    problem = problem_with(st, uid)
    if problem is not None:
        raise refusal(path, what, problem)
    return st


def refuse_unopenable(exc: OSError, path: str, what: str, uid: int) -> None:
    """Raise `ForeignFileError` when ``exc`` (from opening ``path``) shows a squat.

    A symbolic link (``ELOOP`` under ``O_NOFOLLOW``) or a file this process may
    not open at one of its own names was put there by someone else. Returns
    (so the caller re-raises ``exc``) for any other error.

    Raises:
        ForeignFileError: as described.
    """
    if exc.errno == errno.ELOOP:
        raise refusal(path, what, "it is a symbolic link") from exc
    if exc.errno in (errno.EACCES, errno.EPERM):
        try:
            st = os.lstat(path)
        except OSError:
            return
        problem = problem_with(st, uid) or (
            f"this process may not open it (mode {stat.S_IMODE(st.st_mode):04o})"
        )
        raise refusal(path, what, problem) from exc


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


class Arena:
    """One process's mapping of a namespace's arena file.

    Args:
        path: Path of the arena file.
        fd: Open read-write descriptor of it (owned by the arena), already checked
            by `check_private`.
        file_size: Size of the file behind ``fd`` (from the same ``fstat``).

    Raises:
        CorruptPayloadError: if the file has no arena header, or one whose table
            does not fit in the file (it is never mapped).
    """

    def __init__(self, path: str, fd: int, file_size: int) -> None:
        self.path = path
        self.fd = fd
        header = os.pread(fd, 7 * 8, 0)
        words = memoryview(header).cast("q") if len(header) == 7 * 8 else None
        if words is None or words[_H_MAGIC] != MAGIC:
            raise CorruptPayloadError(
                f"{path!r} is not a proxystore shared-memory arena (no arena "
                "header). Remove it, or use another namespace."
            )
        self.size = words[_H_SIZE]
        self.slots = words[_H_SLOTS]
        self.table = words[_H_TABLE] // 8
        self.data_start = words[_H_DATA]
        table_end = words[_H_TABLE] + self.slots * ENTRY_WORDS * 8
        if not (
            self.size == file_size
            and words[_H_TABLE] == HEADER_BYTES
            and self.slots > 0
            and table_end <= min(self.data_start, self.size)
            and 0 <= words[_H_HIGH] <= self.slots
            and words[_H_GEN] >= 0
        ):
            # Mapping it would let the table (read in C, too) run off the file.
            raise CorruptPayloadError(
                f"{path!r} has an inconsistent arena header (file size {file_size}, "
                f"header size {self.size}, {self.slots} slots, table at "
                f"{words[_H_TABLE]}, data at {self.data_start}). Remove it, or "
                "use another namespace."
            )
        flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
        self.mm = mmap.mmap(fd, self.size, flags=flags)
        self.bytes = memoryview(self.mm)
        self.words = self.bytes.cast("q")
        # Views made by held_view() point at this address; each keeps this
        # arena (so the mapping) alive.
        self.address = ctypes.addressof(ctypes.c_char.from_buffer(self.mm))
        self.pid = os.getpid()
        self.stale = False
        #: Record uses for the spill policy's LRU order (set by connectors with a
        #: memory budget; without one, gets skip the clock words).
        self.track_lru = False
        self._tlock = threading.RLock()
        self._depth = 0
        self._held: dict[tuple[int, int], int] = {}
        self._refs: dict[int, tuple[weakref.ref[Any], int, int]] = {}
        # What the C read path (`_hold_view`) reads, in one attribute.
        self._cfields = (
            fd,
            self.address,
            self.table,
            self.slots,
            self.pid,
            self._held,
            self._tlock,
        )
        # Closed when the arena is collected, which views prevent (each keeps its
        # arena alive). Not at interpreter exit: a view still alive then would
        # release its hold on a closed descriptor; the exit closes it anyway.
        weakref.finalize(self, os.close, fd).atexit = False

    # ------------------------------------------------------------------ locking
    def locked(self) -> Arena:
        """Return the arena as a context manager holding its lock (re-entrant).

        A plain ``__enter__``/``__exit__`` pair: cheaper than a generator-based
        context manager on the per-get path.
        """
        return self

    def __enter__(self) -> Arena:
        self._tlock.acquire()
        if self._depth == 0:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX)
            except BaseException:
                self._tlock.release()
                raise
        self._depth += 1
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._depth -= 1
        try:
            if self._depth == 0:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            self._tlock.release()

    # ------------------------------------------------------------------ entries
    def _entry(self, slot: int) -> int:
        return self.table + slot * ENTRY_WORDS

    def _find(self, need: int) -> tuple[int, int] | None:
        """Return ``(slot, offset)`` of free room for ``need`` bytes, or ``None``."""
        w = self.words
        high = w[_H_HIGH]
        start, stop = self.table, self.table + high * ENTRY_WORDS
        states = w[start + _E_STATE : stop : ENTRY_WORDS].tolist()
        offsets = w[start + _E_OFF : stop : ENTRY_WORDS].tolist()
        caps = w[start + _E_CAP : stop : ENTRY_WORDS].tolist()
        slot = -1
        used = []
        for i, state in enumerate(states):
            if not state:
                if slot < 0:
                    slot = i
            elif state < SPILLED:  # a spilled slot has no data
                used.append((offsets[i], offsets[i] + caps[i]))
        if slot < 0:
            if high >= self.slots:
                return None
            slot = high
        pos = self.data_start
        used.sort()
        for begin, end in used:
            if begin - pos >= need:
                break
            pos = max(pos, end)
        else:
            if self.size - pos < need:
                return None
        return slot, pos

    def _free(self, slot: int) -> None:
        """Mark ``slot`` free and lower the high-water mark past free slots."""
        w = self.words
        w[self._entry(slot) + _E_STATE] = FREE
        high = w[_H_HIGH]
        while high and w[self._entry(high - 1) + _E_STATE] == FREE:
            high -= 1
        w[_H_HIGH] = high

    def sweep(self) -> None:
        """Reclaim slots of dead writers and drop holds of dead processes."""
        with self.locked():
            w = self.words
            for slot in range(w[_H_HIGH]):
                e = self._entry(slot)
                state = w[e + _E_STATE]
                if state == FREE:
                    continue
                for h in range(e + _E_HOLD, e + _E_HOLD + HOLDERS):
                    if w[h] and not _alive(w[h]):
                        w[h] = 0
                dead_writer = state == WRITING and not _alive(w[e + _E_OWNER])
                if dead_writer or (state == EVICTED and not self._has_holders(e)):
                    self._free(slot)

    def touch(self, e: int) -> None:
        """Record a use of the entry at word ``e`` (LRU order); hold the lock."""
        w = self.words
        tick = w[_H_CLOCK] + 1
        w[_H_CLOCK] = tick
        w[e + _E_OWNER] = tick

    def _has_holders(self, e: int) -> bool:
        return any(self.words[e + _E_HOLD : e + _E_HOLD + HOLDERS].tolist())

    # ------------------------------------------------------------------ writing
    def allocate(self, size: int) -> tuple[int, int, int] | None:
        """Reserve room for ``size`` bytes; return ``(slot, generation, offset)``.

        Returns ``None`` when the arena has no room (after a sweep).
        """
        need = max(size, 1) + (-max(size, 1) % ALIGN)
        if need > self.size - self.data_start:
            return None
        with self.locked():
            found = self._find(need)
            if found is None:
                self.sweep()
                found = self._find(need)
                if found is None:
                    return None
            slot, offset = found
            w = self.words
            gen = w[_H_GEN] + 1
            w[_H_GEN] = gen
            e = self._entry(slot)
            w[e + _E_GEN] = gen
            w[e + _E_OFF] = offset
            w[e + _E_CAP] = need
            w[e + _E_SIZE] = size
            w[e + _E_OWNER] = self.pid
            for h in range(e + _E_HOLD, e + _E_HOLD + HOLDERS):
                w[h] = 0
            if slot >= w[_H_HIGH]:
                w[_H_HIGH] = slot + 1
            w[e + _E_STATE] = WRITING  # decisive: the slot now exists
        return slot, gen, offset

    def write(self, offset: int, parts: Sequence[memoryview | bytes]) -> None:
        """Copy ``parts`` one after another into the data region at ``offset``."""
        out = self.bytes
        for part in parts:
            end = offset + len(part)
            out[offset:end] = part
            offset = end

    def commit(self, slot: int, gen: int) -> bool:
        """Publish a written slot; return whether it was still ours to publish."""
        with self.locked():
            e = self._entry(slot)
            w = self.words
            if w[e + _E_GEN] != gen or w[e + _E_STATE] != WRITING:
                return False
            w[e + _E_STATE] = READY
            if self.track_lru:
                self.touch(e)  # after: a WRITING slot's owner word is its writer
            return True

    def abort(self, slot: int, gen: int) -> None:
        """Give back a slot whose write failed."""
        with self.locked():
            e = self._entry(slot)
            if self.words[e + _E_GEN] == gen and self.words[e + _E_STATE] == WRITING:
                self._free(slot)

    # ------------------------------------------------------------------ reading
    def locate(self, slot: int, gen: int) -> tuple[int, int] | None:
        """Return ``(offset, size)`` of a ready object; call with the lock held."""
        if not 0 <= slot < self.slots:
            return None
        e = self._entry(slot)
        w = self.words
        if w[e + _E_GEN] != gen or w[e + _E_STATE] != READY:
            return None
        offset: int = w[e + _E_OFF]
        size: int = w[e + _E_SIZE]
        return offset, size

    def exists(self, slot: int, gen: int) -> bool:
        """Return whether a ready object is at ``(slot, gen)``."""
        with self.locked():
            return self.locate(slot, gen) is not None

    def read(self, slot: int, gen: int) -> bytes | None:
        """Return a copy of the object at ``(slot, gen)``, or ``None``."""
        with self.locked():
            found = self.locate(slot, gen)
            if found is None:
                return None
            offset, size = found
            if self.track_lru:
                self.touch(self.table + slot * ENTRY_WORDS)
            return self.bytes[offset : offset + size].tobytes()

    def release(self, slot: int, gen: int) -> None:
        """Drop one hold taken by `held_view`; free an evicted slot left unheld."""
        with self.locked():
            if self.pid != os.getpid():
                return  # a forked child: its parent's holds are not its own
            count = self._held.get((slot, gen), 0) - 1
            if count > 0:
                self._held[(slot, gen)] = count
                return
            self._held.pop((slot, gen), None)
            e = self._entry(slot)
            w = self.words
            if w[e + _E_GEN] != gen:
                return
            if self.track_lru and w[e + _E_STATE] == READY:
                self.touch(e)  # the last view went: used just now
            for h in range(e + _E_HOLD, e + _E_HOLD + HOLDERS):
                if w[h] == self.pid:
                    w[h] = 0
            if w[e + _E_STATE] == EVICTED and not self._has_holders(e):
                self._free(slot)

    def held_view(self, slot: int, gen: int) -> memoryview | bytes | None:
        """Take a hold on ``(slot, gen)`` and return a read-only view of its bytes.

        The pure-Python read path (`_hold_view` is the C one, when built). The
        view's exporter (a ctypes array) keeps the mapping alive, and the hold
        ends when it is collected.

        Returns:
            A read-only zero-copy view, or a ``bytes`` copy when every holder word
            of the slot is taken by other processes, or ``None`` when no ready
            object is at ``(slot, gen)``.
        """
        with self.locked():
            found = self.locate(slot, gen)
            if found is None:
                return None
            offset, size = found
            held = self._held
            count = held.get((slot, gen), 0)
            if count == 0:
                w = self.words
                first = self._entry(slot) + _E_HOLD
                holders = w[first : first + HOLDERS].tolist()
                if self.pid in holders:
                    h = holders.index(self.pid)
                elif 0 in holders:
                    h = holders.index(0)
                else:
                    return self.bytes[offset : offset + size].tobytes()
                w[first + h] = self.pid  # decisive
            held[(slot, gen)] = count + 1
        kind = _VIEW_TYPES.get(size)
        if kind is None:
            kind = _view_type(size)
        array = kind.from_address(self.address + offset)
        array.arena = self  # keeps the mapping alive as long as the view
        ref = weakref.ref(array, self._released)
        self._refs[id(ref)] = (ref, slot, gen)
        return memoryview(array).cast("B").toreadonly()

    def _released(self, ref: weakref.ref[Any]) -> None:
        entry = self._refs.pop(id(ref), None)
        if entry is not None:
            self.release(entry[1], entry[2])

    # ------------------------------------------------------------------ evicting
    def evict(self, slot: int, gen: int) -> bool:
        """Remove the object at ``(slot, gen)``; return whether one was there.

        A slot that some process still views is only marked evicted: it is freed
        when the last view is gone.
        """
        with self.locked():
            if not 0 <= slot < self.slots:
                return False
            e = self._entry(slot)
            w = self.words
            if w[e + _E_GEN] != gen or w[e + _E_STATE] not in (READY, WRITING):
                return False
            if self._has_holders(e):
                w[e + _E_STATE] = EVICTED
            else:
                self._free(slot)
            return True


# ---------------------------------------------------------------- per process

_ARENAS: dict[str, Arena] = {}
_ARENAS_LOCK = threading.Lock()


def _reset_after_fork() -> None:
    # A forked child shares its parent's flock description: give it its own.
    global _ARENAS_LOCK
    _ARENAS_LOCK = threading.Lock()
    for arena in _ARENAS.values():
        arena.stale = True
    _ARENAS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _create(path: str, size: int, slots: int) -> int | None:
    """Create the arena file atomically (private temporary name, then ``link``).

    Returns:
        A read-write descriptor of the new arena, or ``None`` when another file
        took the name first (the caller then opens and checks that one).

    Raises:
        ArenaFullError: if there is not enough shared memory for ``size`` bytes.
    """
    tmp = f"{path}.tmp-{secrets.token_hex(6)}"
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | OPEN_FLAGS, _FILE_MODE)
    linked = False
    try:
        os.fchmod(fd, _FILE_MODE)  # exactly 0600, whatever the umask took away
        try:
            os.posix_fallocate(fd, 0, size)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EFBIG):
                raise ArenaFullError(size) from exc
            raise
        table = HEADER_BYTES
        data = table + slots * ENTRY_WORDS * 8
        data += -data % 4096
        header = memoryview(bytearray(7 * 8)).cast("q")
        for index, value in (
            (_H_MAGIC, MAGIC),
            (_H_SIZE, size),
            (_H_SLOTS, slots),
            (_H_TABLE, table),
            (_H_DATA, data),
        ):
            header[index] = value
        os.pwrite(fd, header.cast("B"), 0)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # fails if another file has the name already
            linked = True
    finally:
        if not linked:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return fd if linked else None


def _open_existing(path: str, uid: int) -> int | None:
    """Open the arena file at ``path`` read-write; ``None`` when there is none.

    Raises:
        ForeignFileError: if the name is a symbolic link or a file this process
            may not open.
        OSError: for other failures to open it.
    """
    try:
        return os.open(path, os.O_RDWR | OPEN_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as exc:
        refuse_unopenable(exc, path, _WHAT, uid)
        raise


def open_arena(path: str, size: int, slots: int) -> Arena:
    """Return this process's mapping of the arena at ``path``, creating it if needed.

    ``size`` and ``slots`` apply only when the file does not exist yet; an existing
    arena keeps the size its creator chose. An existing file is used only if it
    is a regular file of this process's effective uid that no other user may
    open, with a consistent arena header (see the module documentation).

    Raises:
        ArenaFullError: if there is not enough shared memory to create it.
        ForeignFileError: if the file at ``path`` is not safely ours (another
            user's, open to others, a symbolic link or not a regular file).
        CorruptPayloadError: if our own file at ``path`` is not a valid arena.
        OSError: if the file cannot be opened or mapped.
    """
    with _ARENAS_LOCK:
        arena = _ARENAS.get(path)
        if arena is not None and not arena.stale:
            return arena
        uid = os.geteuid()
        fd = None
        for _ in range(_ATTEMPTS):
            fd = _open_existing(path, uid)
            if fd is None:
                fd = _create(path, size, slots)
            if fd is not None:
                break
        if fd is None:
            raise FileNotFoundError(
                errno.ENOENT, "the arena kept disappearing while being opened", path
            )
        try:
            st = check_private(fd, path, _WHAT, uid)
            arena = Arena(path, fd, st.st_size)
        except BaseException:
            os.close(fd)
            raise
        _ARENAS[path] = arena
        return arena


def forget_arena(path: str) -> None:
    """Stop using this process's mapping of ``path`` (after the file was removed).

    Existing views stay valid; the next `open_arena` maps a new file.
    """
    with _ARENAS_LOCK:
        arena = _ARENAS.pop(path, None)
        if arena is not None:
            arena.stale = True


def arena_of(path: str) -> Arena | None:
    """Return this process's current mapping of ``path`` if there is one."""
    arena = _ARENAS.get(path)
    return None if arena is None or arena.stale else arena
