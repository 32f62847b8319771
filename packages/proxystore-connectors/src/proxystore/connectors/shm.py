"""Same-node connector keeping each object in a POSIX shared-memory segment.

Every object lives in its own file of ``/dev/shm`` (a ``tmpfs``: memory, not disk),
named ``psshm-<uid>-<namespace>-<128-bit random hex>``, where ``<uid>`` is the
effective uid of the writer. Any process of the same user on the node can read it
without a server, a socket or a copy; other users cannot (see "Other users" below).

Segment layout (integers little-endian)::

    bytes 0-7    magic b"PSSHM\\x00\\x00\\x01" (the last byte is the layout version)
    bytes 8-15   u64 payload length
    bytes 16-63  zero
    bytes 64-    payload

The payload starts 64 bytes in, so buffers the serializer aligns to 64 bytes stay
aligned in the page-aligned mapping.

Writes are atomic: a segment is written under a temporary name created with
``O_CREAT | O_EXCL`` and renamed onto its final name only once complete. A reader
therefore sees a whole object or none; a writer killed mid-put leaves at most a
temporary segment, which no key names and which `SharedMemoryConnector.close`
of any connector of the namespace removes when clearing.

Reads of large objects map the segment copy-on-write (``MAP_PRIVATE``) and return a
``memoryview`` of the mapping: nothing is copied, the deserializer builds writable
numpy arrays directly on the shared pages, and a consumer's writes land in private
copies of the touched pages, never in the stored object. The mapping lives as long as
any view or array made from it; evicting the segment meanwhile is safe (``tmpfs``
frees the pages only after the last mapping goes).

Arena mode (``arena=True``)
---------------------------
Fresh ``tmpfs`` pages are expensive: each put pays their allocation and first
touch, each reader pays page-table set-up for a new mapping. In arena mode the
namespace instead owns one pre-sized file, ``psshm-<uid>-<namespace>-arena``,
which every process of the user maps once (pages reserved and pre-faulted) and
which holds objects in slots (see ``proxystore.connectors._arena`` for the
layout, the crash-safe lock and the reference counts):

* a put is one copy into the arena; any process may put, get and evict;
* a get of 256 KiB or more returns a **read-only** zero-copy view into the arena
  (numpy arrays built on it are read-only, as Ray's are); ``writable=True`` (on
  the connector, or per call of `SharedMemoryConnector.get`) returns a
  private writable copy instead; smaller objects are copied into ``bytes``;
* a slot is never reused while any process holds a view of it: evicting such an
  object only hides it, and the last view to go frees the slot;
* objects that do not fit (larger than the arena, or while it is full) fall back
  to a segment of their own, as above;
* ``close(clear=True)`` removes the arena file with the segments; processes that
  still map it keep valid views.

Keys of arena objects are named ``psshm-<uid>-<namespace>-~<slot>.<generation>``.

Expiry (``put(..., ttl=)``): an arena object's deadline goes to a side table next
to the arena (``proxystore.connectors._arena_ttl``), written before the object is
published; a segment's deadline is its modification time, marked by the sticky
bit, set before it is renamed into place (as for `FileConnector`). A read
never returns an expired object. Every process that maps an arena with deadlines
sweeps it in the background (one sweep at a time across processes, under a
``flock``), so expired objects leave the arena however the processes that stored
them ended; `SharedMemoryConnector.sweep` sweeps now, segments included. Without a
budget, an object with a deadline gets a segment when the arena is full; with
one, it spills like any other and keeps its deadline in its tier (see
``proxystore.connectors._spill``), and the sweeps also remove expired spilled
objects.

The read of a large arena object (key parse, hold, view) runs in a small C
extension, ``proxystore.connectors._arenac``, when the package was built with a
compiler: a worker resolving a proxy right after a 100 MB copy has cold caches,
and each Python step costs about a microsecond there. It follows the same protocol
as the pure-Python path (same lock, same words), which is used without the build
or when the environment variable ``PROXYSTORE_ARENA_PURE_PYTHON`` is set to a
non-empty value other than ``0``; processes of either kind share one arena.

Other users
-----------
``/dev/shm`` is writable by every user and our names are predictable, so another
user could create a file at one of them first (to read what we store there, or to
have us read what they wrote). Segments and arenas are therefore private to the
user that made them, and the connector only ever uses files that prove it:

* every file is created ``O_CREAT | O_EXCL`` with mode ``0600`` under a random
  temporary name, and renamed or linked onto its final name once complete;
* every existing file is opened with ``O_NOFOLLOW | O_NONBLOCK`` and used only if
  the *opened* descriptor (``fstat``) is a regular file of this process's uid
  with no group or other permission bits; for a segment that ``fstat`` is the
  one a get makes anyway, for the arena it runs once when the process attaches;
* a key names its writer's uid: a process of another uid refuses it before any
  file is opened (a proxy cannot carry one user's shared memory to another).

A file that fails these checks raises
[`ForeignFileError`][proxystore.connectors.exceptions.ForeignFileError] naming
it; it is never read, written or mapped, and `SharedMemoryConnector.close` leaves
it in place. Such a file still blocks its name (a denial of service, the same as
filling ``/dev/shm``): a namespace others cannot guess avoids that.
"""

from __future__ import annotations

import errno
import functools
import logging
import mmap
import os
import re
import secrets
import struct
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, Final, NamedTuple, Self

from proxystore.connectors import _arena as arenas
from proxystore.connectors import _arena_ttl, _spill, _sweeper
from proxystore.connectors.exceptions import (
    ConnectorConnectionError,
    ConnectorError,
    CorruptPayloadError,
    ForeignFileError,
)
from proxystore.connectors.protocols import BytesLike, KeyInfo, check_ttl
from proxystore.utils._closeable import Closeable
from proxystore.utils.imports import get_object_path

__all__ = [
    "PREFIX",
    "SHM_DIR",
    "SharedMemoryConnector",
    "SharedMemoryFullError",
    "SharedMemoryKey",
]

#: Directory of POSIX shared memory on Linux (what ``shm_open`` uses).
SHM_DIR: Final = "/dev/shm"
#: First part of every segment name, so our segments are recognisable in ``/dev/shm``.
PREFIX: Final = "psshm"

_MAGIC: Final = b"PSSHM\x00\x00\x01"
_HEADER: Final = struct.Struct("<8sQ")
_HEADER_SIZE: Final = 64
_HEADER_PAD: Final = bytes(_HEADER_SIZE - _HEADER.size)
_TMP_MARK: Final = ".tmp-"
#: From this payload size on, get() maps the segment instead of reading it. Mapping
#: costs a few system calls plus a page fault per touched page; reading a small
#: object into ``bytes`` is cheaper and its copy is negligible.
_MAP_MIN_BYTES: Final = 256 * 1024
_NAMESPACE_RE: Final = re.compile(r"[A-Za-z0-9_.]{1,64}")
_FILE_MODE: Final = 0o600
_ARENA_NAME: Final = "arena"
_ARENA_MARK: Final = "~"
#: Default arena: a quarter of the free shared memory, at most this much.
_ARENA_MAX_DEFAULT: Final = 1 << 30
_ARENA_MIN: Final = 1 << 20
_ARENA_SLOTS: Final = 4096
_SEGMENT: Final = "shared-memory segment"
_EXPIRES: Final = _sweeper.EXPIRES
#: Seconds between two background sweeps of an arena with deadlines.
_SWEEP_S: Final = 1.0


def _ns(seconds: float) -> int:
    return round(seconds * 1e9)


logger = logging.getLogger(__name__)


class SharedMemoryKey(NamedTuple):
    """Key of an object in a `SharedMemoryConnector`."""

    name: str
    """Segment name in ``/dev/shm`` (``psshm-<namespace>-<random hex>``)."""
    size: int
    """Payload size in bytes when the key was made (0 for an empty `new_key`)."""


class SharedMemoryFullError(ConnectorError):
    """Raised when an object does not fit in the free shared memory of the node.

    The message names the object's size, the free space and the size of the
    ``/dev/shm`` file system (raise it with ``mount -o remount,size=...``).
    """

    def __init__(self, message: str, *, needed: int, free: int) -> None:
        super().__init__(message)
        self.needed = needed
        self.free = free


def _random_id() -> str:
    return secrets.token_hex(16)  # 128 bits: collisions across processes are moot


@contextmanager
def _os_errors(action: str, path: str) -> Iterator[None]:
    """Translate unexpected OS errors into connector errors naming ``path``."""
    try:
        yield
    except OSError as exc:
        reason = exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))
        raise ConnectorConnectionError(
            f"Cannot {action} shared-memory segment {path!r}: {reason}.",
            address=path,
        ) from exc


def _full_error(needed: int, directory: str) -> SharedMemoryFullError:
    stats = os.statvfs(directory)
    free = stats.f_bavail * stats.f_frsize
    total = stats.f_blocks * stats.f_frsize
    return SharedMemoryFullError(
        f"Cannot store {needed} bytes in shared memory: only {free} bytes are free "
        f"in {directory} (file system size {total} bytes). Evict objects or enlarge "
        f"{directory}.",
        needed=needed,
        free=free,
    )


def _write_all(fd: int, buffers: list[bytes | memoryview]) -> None:
    pending = [memoryview(b) for b in buffers]
    while pending:
        written = os.writev(fd, pending)
        # Writes to tmpfs are normally complete; loop for the rare short write.
        while written and pending:
            first = pending[0]
            if written >= len(first):
                written -= len(first)
                pending.pop(0)
            else:
                pending[0] = first[written:]
                written = 0
        while pending and not len(pending[0]):
            pending.pop(0)


def _flat(obj: BytesLike) -> bytes | memoryview:
    """Return ``obj`` as ``bytes`` or a flat unsigned-byte view (no copy)."""
    if type(obj) is bytes:
        return obj
    view = memoryview(obj)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def _default_arena_size() -> int:
    stats = os.statvfs(SHM_DIR)
    free = stats.f_bavail * stats.f_frsize
    size = min(free // 4, _ARENA_MAX_DEFAULT)
    return max(size - size % _ARENA_MIN, _ARENA_MIN)


#: Where ``/dev/shm`` is smaller than this (Docker gives 64 MiB), the connector
#: works within half of it and spills instead of failing.
_SMALL_SHM: Final = 512 * 1024 * 1024


def _small_shm() -> bool:
    stats = os.statvfs(SHM_DIR)
    return stats.f_blocks * stats.f_frsize < _SMALL_SHM


def _spill_spec(tier: Any) -> tuple[str, dict[str, Any]]:
    """Return ``(dotted class path, config)`` of a spill tier connector."""
    if isinstance(tier, (tuple, list)) and len(tier) == 2:
        return str(tier[0]), dict(tier[1])
    return get_object_path(type(tier)), tier.config()


def _private_copy(view: memoryview) -> memoryview:
    """Copy ``view`` into fresh private anonymous memory (huge pages advised)."""
    mapping = mmap.mmap(-1, len(view))
    advice = getattr(mmap, "MADV_HUGEPAGE", None)
    if advice is not None:
        with suppress(OSError):
            mapping.madvise(advice)
    out = memoryview(mapping)
    out[:] = view
    return out


def _private(data: bytes | memoryview) -> memoryview:
    """Return a private writable copy of arena bytes; a view's hold then ends."""
    copy = _private_copy(memoryview(data))
    if isinstance(data, memoryview):
        data.release()  # the hold ends with the last reference to the view
    return copy


class SharedMemoryConnector(Closeable):
    """Connector keeping objects in the node's shared memory.

    Objects are visible to every process of the same user on this machine that uses
    the same ``namespace``, and to no other user; nothing crosses the network. By
    default each object has a segment of its own; with ``arena=True`` objects live
    in one pre-mapped arena per namespace (see the module documentation).

    Args:
        namespace: Group of segments this connector works in (letters, digits, ``_``
            and ``.``; at most 64 characters). `close` with ``clear`` removes
            every segment of the namespace, whichever process wrote it.
        clear: Remove the namespace's segments on `close`.
        arena: Keep objects in the namespace's shared arena.
        arena_size: Size in bytes of the arena when this connector creates it
            (default: a quarter of the free shared memory, at most 1 GiB). An
            existing arena keeps the size its creator gave it.
        arena_slots: Maximum number of objects in the arena when this connector
            creates it; more objects fall back to segments of their own.
        writable: Make `get` of large arena objects return a private
            writable copy instead of a read-only zero-copy view.
        budget: Most bytes of ``/dev/shm`` the namespace may take: an ``int``,
            or a fraction of ``/dev/shm`` (``"50%"``). Turns arena mode on (the
            arena is sized to the budget, no overflow segments are made) and
            least recently used objects spill down the tiers below when a put
            would exceed it (see ``proxystore.connectors._spill``). Default:
            none, except where ``/dev/shm`` is smaller than 512 MiB (a
            container's), where it is half of it.
        spill_directory: Local directory of spilled objects (default: one per
            user and namespace in the temporary directory).
        spill_compress: ``"zstd"`` to compress spilled objects (the
            ``spill-compress`` extra), or ``None``.
        spill_then: Connectors below the directory, as ``(dotted class path,
            config)`` pairs or connector instances (any connector).
        spill_directory_budget: Bytes the spill directory may hold before its
            least recently used objects move on to ``spill_then``.

    Raises:
        ValueError: if ``namespace`` has other characters or is empty or too long,
            or the arena size or slot count is too small.
        ConnectorConnectionError: if ``/dev/shm`` does not exist (not Linux).

    Operations raise `ForeignFileError` when a file at one of the connector's
    names is not a private file of this user (see "Other users" in the module
    documentation), or when a key names another user's shared memory.
    """

    def __init__(
        self,
        namespace: str = "proxystore",
        *,
        clear: bool = True,
        arena: bool = False,
        arena_size: int | None = None,
        arena_slots: int = _ARENA_SLOTS,
        writable: bool = False,
        budget: int | float | str | None = None,
        spill_directory: str | None = None,
        spill_compress: str | None = None,
        spill_then: Sequence[Any] = (),
        spill_directory_budget: int | None = None,
    ) -> None:
        if not _NAMESPACE_RE.fullmatch(namespace):
            raise ValueError(
                f"Invalid namespace {namespace!r}: use 1-64 letters, digits, '_' "
                "or '.'."
            )
        if not os.path.isdir(SHM_DIR):
            raise ConnectorConnectionError(
                f"Shared memory directory {SHM_DIR!r} does not exist; the "
                "shared-memory connector needs Linux POSIX shared memory.",
                address=SHM_DIR,
            )
        if arena_slots < 1:
            raise ValueError(f"arena_slots must be at least 1, got {arena_slots}.")
        table = arenas.HEADER_BYTES + arena_slots * arenas.ENTRY_WORDS * 8
        if arena_size is not None and arena_size < table + arenas.ALIGN:
            raise ValueError(
                f"arena_size {arena_size} is too small: {arena_slots} slots need "
                f"{table} bytes of header and table, plus room for data."
            )
        self.namespace = namespace
        self.clear = clear
        self.arena = arena
        self.arena_size = arena_size
        self.arena_slots = arena_slots
        self.writable = writable
        self.budget = budget
        self._spill: _spill.SpillChain | None = None
        small = budget is None and _small_shm()
        if budget is not None or small or spill_then or spill_directory:
            if budget is not None or (small and arena):
                self.arena = True
                given = "50%" if budget is None else budget
                # The budget covers the arena's deadline table too.
                limit = _spill.parse_budget(given, SHM_DIR)
                limit -= _arena_ttl.table_bytes(arena_slots)
                self.arena_size = min(arena_size or limit, limit)
                if self.arena_size < table + arenas.ALIGN:
                    raise ValueError(
                        f"Budget {budget!r} is too small for {arena_slots} slots."
                    )
            self._spill = _spill.SpillChain(
                namespace,
                spill_directory or _spill.default_spill_directory(namespace),
                compress=spill_compress,
                then=[_spill_spec(c) for c in spill_then],
                directory_budget=spill_directory_budget,
            )
        #: Whether a budget bounds the namespace's shared memory (no overflow).
        self._budgeted = self._spill is not None and self.arena
        # Our names carry our uid: keys from a process of another uid are refused
        # by name, and one user's names never meet another's.
        self._uid = os.geteuid()
        self._user_prefix = f"{PREFIX}-{self._uid}-"
        self._stem = f"{self._user_prefix}{namespace}-"
        self._arena_stem = self._stem + _ARENA_MARK
        # The C read path of the arena, when it is built.
        self._hold_view: Any = arenas._hold_view if arena else None
        self._arena_path = os.path.join(SHM_DIR, self._stem + _ARENA_NAME)
        self._mapped: arenas.Arena | None = None
        self._sweeping: weakref.finalize[Any, Any] | None = None
        # Names of this namespace: the arena (and its deadline table), final
        # segments and temporary ones.
        self._ours = re.compile(
            re.escape(self._stem)
            + r"(?:[0-9a-f]{32}|~[0-9]+\.[0-9]+|arena(?:\.ttl)?)(?:"
            + re.escape(_TMP_MARK)
            + r".+)?"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(namespace={self.namespace!r})"

    # ------------------------------------------------------------- naming
    def _new_name(self) -> str:
        return self._stem + _random_id()

    def _path(self, key: SharedMemoryKey) -> str:
        name = key.name
        # Keys may come from another process inside a pickled proxy: accept only
        # segment names of our uid, which can neither escape /dev/shm nor name a
        # temp file or an arena.
        if (
            not name.startswith(self._user_prefix)
            or "/" in name
            or "\0" in name
            or _TMP_MARK in name
            or name.endswith("-" + _ARENA_NAME)
        ):
            self._refuse_key(key)
        return os.path.join(SHM_DIR, name)

    def _refuse_key(self, key: SharedMemoryKey) -> None:
        """Raise the error for a key that does not name a segment of our uid.

        Raises:
            ForeignFileError: if the key is well formed but names another uid.
            ValueError: otherwise.
        """
        name = key.name
        uid, sep, rest = name.removeprefix(PREFIX + "-").partition("-")
        if (
            name.startswith(PREFIX + "-")
            and sep
            and uid.isdecimal()
            and rest
            and uid != str(self._uid)
            and "/" not in name
            and "\0" not in name
        ):
            raise ForeignFileError(
                f"Key {name!r} names shared memory of uid {uid}, but this process "
                f"runs as uid {self._uid}. Shared-memory objects are private to the "
                f"user that stored them: resolve the proxy as uid {uid}, or keep "
                "objects that other users must read in a connector made for "
                "sharing (e.g. a FileConnector with permissions=0o640 in a "
                "directory of a common group).",
                path=os.path.join(SHM_DIR, name),
            )
        raise ValueError(f"Invalid shared-memory segment name in key {key!r}.")

    def _slot(self, key: SharedMemoryKey) -> tuple[int, int] | None:
        """Return ``(slot, generation)`` of an arena key of this namespace."""
        name = key.name
        stem = self._arena_stem
        if not name.startswith(stem):
            return None
        slot, _, gen = name[len(stem) :].partition(".")
        # isdecimal: only the digits int() reads, and never a sign or a space.
        if slot.isdecimal() and gen.isdecimal():
            return int(slot), int(gen)
        return None

    def _arena(self) -> arenas.Arena | None:
        """Return this process's mapping of the namespace arena (``None``: off)."""
        if not self.arena:
            return None
        arena = self._mapped
        if arena is not None and not arena.stale:
            return arena
        try:
            arena = self._mapped = arenas.open_arena(
                self._arena_path,
                self.arena_size or _default_arena_size(),
                self.arena_slots,
            )
            if self._budgeted:
                arena.track_lru = True
            if arena.words[_arena_ttl.FLAG_WORD]:
                self._start_sweeping(arena)
            return arena
        except arenas.ArenaFullError:
            logger.warning(
                "Not enough shared memory for the arena of namespace %r; objects "
                "get segments of their own.",
                self.namespace,
            )
            return None
        except ConnectorError:  # another file squats on the arena's name
            raise
        except OSError as exc:
            with _os_errors("map", self._arena_path):
                raise exc from None

    def segments(self) -> list[str]:
        """Return the names of this namespace's files now in ``/dev/shm``.

        Includes the arena and temporary segments of writes in progress (or of
        writers that were killed mid-write).
        """
        with os.scandir(SHM_DIR) as entries:
            return sorted(e.name for e in entries if self._ours.fullmatch(e.name))

    # ------------------------------------------------------------- lifecycle
    def close(self, clear: bool | None = None) -> None:
        """Close the connector, removing the namespace's segments when clearing.

        Args:
            clear: Remove every segment of the namespace, complete or temporary,
                written by any process of this user (also those of crashed
                writers), and its arena; ``None`` uses the ``clear`` given to the
                constructor. Arrays and views still in use stay valid. Closing
                twice is harmless. Files at our names that are not private files
                of this user are left in place (with a warning).
        """
        if self._sweeping is not None:
            self._sweeping()
            self._sweeping = None
        if not (self.clear if clear is None else clear):
            return
        arenas.forget_arena(self._arena_path)
        _arena_ttl.forget(self._arena_path)
        if self._spill is not None:
            self._spill.clear()
            _spill.close_quietly(self._spill)
        for name in self.segments():
            path = os.path.join(SHM_DIR, name)
            try:
                problem = arenas.problem_with(os.lstat(path), self._uid)
                if problem is not None:
                    # Not ours to remove, nor to trust: leave it, say so.
                    logger.warning("Not removing %r on close: %s.", path, problem)
                    continue
                os.unlink(path)
            except FileNotFoundError:
                pass
        # The holder records of refcounted objects (proxystore.store.refcount).
        from proxystore.connectors._holders_shm import SharedMemoryHolders

        SharedMemoryHolders(self).remove_records()

    def config(self) -> dict[str, Any]:
        """Return the options that `from_config` takes."""
        config: dict[str, Any] = {"namespace": self.namespace, "clear": self.clear}
        if self.arena:
            config.update(
                arena=True,
                arena_size=self.arena_size,
                arena_slots=self.arena_slots,
                writable=self.writable,
            )
        if self._spill is not None:
            spill = self._spill.config()
            config.update(
                budget=self.budget,
                spill_directory=spill["directory"],
                spill_compress=spill["compress"],
                spill_then=spill["then"],
                spill_directory_budget=spill["directory_budget"],
            )
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        """Create a connector from the output of `config`.

        Raises:
            TypeError: if ``config`` has an unknown option.
            ValueError: if the namespace or an arena option is invalid.
        """
        return cls(**config)

    # ------------------------------------------------------------- operations
    def evict(self, key: SharedMemoryKey) -> None:
        """Remove the object at ``key``; a missing key is ignored.

        Processes that still use the object keep valid views or mappings of it.

        Raises:
            ValueError: if the key does not name a segment of this connector kind.
            ConnectorConnectionError: if the segment exists but cannot be removed.
        """
        path = self._path(key)
        slot = self._slot(key)
        if slot is not None:
            arena = self._arena()
            if arena is not None and arena.evict(*slot):
                return
            spill = self._spill
            if arena is not None and spill and spill.evict(arena, *slot, key.name):
                return
        elif self._spill is not None:
            self._spill.evict_named(key.name)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError:
            with _os_errors("remove", path):
                raise

    def exists(self, key: SharedMemoryKey) -> bool:
        """Return whether an object exists at ``key``.

        Raises:
            ValueError: if the key does not name a segment of this connector kind.
            ForeignFileError: if the key names another user's shared memory, or
                the file at its name is not a private file of this user.
        """
        path = self._path(key)
        slot = self._slot(key)
        if slot is not None:
            arena = self._arena()
            if arena is not None and arena.exists(*slot):
                return not (
                    arena.words[_arena_ttl.FLAG_WORD]
                    and self._arena_expired(arena, key)
                )
            if arena is not None and self._spill is not None:  # noqa: SIM102
                if _spill.spilled_tier(arena, *slot) is not None:
                    return not (
                        arena.words[_arena_ttl.FLAG_WORD]
                        and self._arena_expired(arena, key)
                    )
        elif self._spill is not None and self._spill.exists_named(key.name):
            return True
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return False
        problem = arenas.problem_with(st, self._uid)
        if problem is not None:
            raise arenas.refusal(path, _SEGMENT, problem)
        return not (st.st_mode & _EXPIRES and st.st_mtime_ns <= time.time_ns())

    def get(
        self, key: SharedMemoryKey, *, writable: bool | None = None
    ) -> bytes | memoryview | None:
        """Return the object at ``key``, or ``None`` when nothing is stored there.

        Segments of 256 KiB or more come back as a writable ``memoryview`` of a
        private (copy-on-write) mapping of the segment: no copy, and writes through
        it (or through arrays built on it) never reach the stored object. Arena
        objects of that size come back as a read-only zero-copy view, or as a
        private writable copy when ``writable`` (default: the connector's
        ``writable``) is true. Smaller objects are read into ``bytes``.

        Raises:
            ValueError: if the key does not name a segment of this connector kind.
            CorruptPayloadError: if the segment is shorter than its header declares
                (truncated) or is not a segment of this connector.
            ForeignFileError: if the key names another user's shared memory, or
                the file at its name (or the arena) is not a private file of this
                user; nothing is read from it.
            ConnectorConnectionError: if the segment exists but cannot be read.
        """
        # An arena key is validated by its parse (our stem, then digits): the
        # segment path is only built when the arena does not answer.
        private = self.writable if writable is None else writable
        arena = self._mapped
        if (
            arena is not None
            and arena.words[_arena_ttl.FLAG_WORD]
            and self._arena_expired(arena, key)
        ):
            return None
        if (
            arena is not None
            and not private
            and key.size >= _MAP_MIN_BYTES
            and self._hold_view is not None
            and not arena.stale
        ):
            # The C read path: parse, hold and view in one call. Anything else
            # (all holder words taken, not an arena key) takes the Python path
            # below; a missing object the segment path.
            view = self._hold_view(arena, key.name, self._arena_stem)
            if type(view) is memoryview:
                return view
            if view is None:
                return self._get_missing(key, private)
        slot = self._slot(key) if self.arena else None
        if slot is not None:
            arena = self._arena()
            if arena is not None:
                data = (
                    arena.read(*slot)
                    if key.size < _MAP_MIN_BYTES
                    else self._read_arena(arena, slot, key.size, private)
                )
                if data is not None:
                    return data
        return self._get_missing(key, private)

    @staticmethod
    def _read_arena(
        arena: arenas.Arena, slot: tuple[int, int], size: int, private: bool
    ) -> bytes | memoryview | None:
        """Read an arena object by the Python path (``None``: not in the arena)."""
        data: bytes | memoryview | None
        if size < _MAP_MIN_BYTES:
            return arena.read(*slot)
        data = arena.held_view(*slot)
        # bytes: all holder words were taken.
        if data is not None and (isinstance(data, bytes) or private):
            data = _private(data)
        return data

    def _get_missing(
        self, key: SharedMemoryKey, private: bool
    ) -> bytes | memoryview | None:
        """Get an object that is not in the arena: a segment, or spilled."""
        data = self._get_segment(key, self._path(key))
        if data is not None or self._spill is None:
            return data
        slot = self._slot(key) if self.arena else None
        arena = self._arena() if slot is not None else None
        if slot is None or arena is None:
            got = self._spill.get_named(key.name)
        elif arena.words[_arena_ttl.FLAG_WORD] and self._arena_expired(arena, key):
            return None  # expired while spilled: the next sweep removes it
        else:
            in_arena, got = self._spill.get(arena, *slot, key.name)
            if in_arena:  # restored meanwhile: read it in the arena
                return self._read_arena(arena, slot, key.size, private)
            if got is not None:
                self._spill.restore_if_room(arena, *slot, got, self._arena_stem)
        if got is None:
            return None
        view = memoryview(got)
        if private and view.readonly:
            return _private_copy(view.cast("B"))
        return got if isinstance(got, bytes) else view.cast("B")

    # ------------------------------------------------------------- spilling
    def spill(self, key: SharedMemoryKey) -> bool:
        """Move the arena object at ``key`` down to the first spill tier now.

        Returns:
            Whether it moved (not when missing, already spilled, or being read
            zero-copy by some process).

        Raises:
            SpillError: if the connector has no spill tiers.
        """
        chain, arena, slot = self._spill_parts(key)
        if arena is None or slot is None:
            return False
        with chain.spilling():
            return chain.spill_slot(arena, *slot, self._arena_stem)

    def restore(self, key: SharedMemoryKey) -> bool:
        """Bring the spilled object at ``key`` back into shared memory.

        Returns:
            Whether the object is in the arena now (never when it expired).

        Raises:
            SpillError: if the connector has no spill tiers.
        """
        chain, arena, slot = self._spill_parts(key)
        if arena is None or slot is None:
            return False
        if arena.words[_arena_ttl.FLAG_WORD] and self._arena_expired(arena, key):
            return False  # the next sweep removes it
        return chain.restore(arena, *slot, self._arena_stem)

    def spill_metrics(self) -> dict[str, dict[str, int]]:
        """Return this process's spill counters per tier (empty without tiers).

        Each tier (``"0:directory"``, ``"1:RedisConnector"``, ...) counts
        ``objects_spilled``, ``bytes_spilled`` (payload bytes moved to it),
        ``bytes_written`` (after compression), ``objects_restored``,
        ``bytes_restored``, ``bytes_read`` (payload bytes served from it) and
        ``objects_dropped`` (expired instead of spilled), and what it holds
        now for the whole namespace (every process): ``objects_now`` and
        ``bytes_now``; the ``"shm"`` row gives those of the arena.
        """
        if self._spill is None:
            return {}
        return self._spill.metrics(self._arena() if self.arena else None)

    def _spill_parts(
        self, key: SharedMemoryKey
    ) -> tuple[_spill.SpillChain, arenas.Arena | None, tuple[int, int] | None]:
        if self._spill is None:
            raise _spill.SpillError(
                f"{self!r} has no spill tiers: give it a budget or a spill_directory."
            )
        self._path(key)
        slot = self._slot(key)
        arena = self._arena() if slot is not None else None
        return self._spill, arena, slot

    def _get_segment(
        self, key: SharedMemoryKey, path: str
    ) -> bytes | memoryview | None:
        try:
            fd = os.open(path, os.O_RDONLY | arenas.OPEN_FLAGS)
        except FileNotFoundError:
            return None
        except OSError as exc:
            arenas.refuse_unopenable(exc, path, _SEGMENT, self._uid)
            with _os_errors("open", path):
                raise
        try:
            # The fstat a read needs anyway also proves the file is ours.
            st = arenas.check_private(fd, path, _SEGMENT, self._uid)
            if st.st_mode & _EXPIRES and st.st_mtime_ns <= time.time_ns():
                return None  # expired: the next sweep removes it
            with _os_errors("read", path):
                size = st.st_size
                if size < _HEADER_SIZE + _MAP_MIN_BYTES:
                    data = os.read(fd, size)
                    length = self._check(key, data, len(data))
                    return data[_HEADER_SIZE : _HEADER_SIZE + length]
                mapping = mmap.mmap(
                    fd,
                    size,
                    flags=mmap.MAP_PRIVATE,
                    prot=mmap.PROT_READ | mmap.PROT_WRITE,
                )
        finally:
            os.close(fd)
        # Only a view escapes: the mapping is unmapped when the last view or array
        # over it is garbage collected (closing it here would fail or break them).
        length = self._check(key, mapping, size)
        view = memoryview(mapping)
        return view[_HEADER_SIZE : _HEADER_SIZE + length]

    @staticmethod
    def _check(key: SharedMemoryKey, data: bytes | mmap.mmap, size: int) -> int:
        """Validate a segment's header and return its payload length."""
        if size < _HEADER_SIZE:
            raise CorruptPayloadError(
                f"Shared-memory segment {key.name!r} is truncated: {size} bytes, "
                f"shorter than its {_HEADER_SIZE}-byte header (key size {key.size})."
            )
        magic, length = _HEADER.unpack_from(data, 0)
        if magic != _MAGIC:
            raise CorruptPayloadError(
                f"Shared-memory segment {key.name!r} has no valid header "
                f"(magic {magic!r}); it was not written by this connector."
            )
        if size < _HEADER_SIZE + length:
            raise CorruptPayloadError(
                f"Shared-memory segment {key.name!r} is truncated: it holds "
                f"{size - _HEADER_SIZE} payload bytes, its header declares {length} "
                f"(key size {key.size})."
            )
        return int(length)

    def get_batch(self, keys: Sequence[SharedMemoryKey]) -> list[BytesLike | None]:
        """Return the object at each key (``None`` where missing), in order.

        Raises:
            CorruptPayloadError: if a segment is truncated.
        """
        return [self.get(key) for key in keys]

    def new_key(self, obj: BytesLike | None = None) -> SharedMemoryKey:
        """Return a fresh key for a later `set` (like the reference, ignores `obj`)."""
        return SharedMemoryKey(self._new_name(), 0)

    def put(self, obj: BytesLike, *, ttl: float | None = None) -> SharedMemoryKey:
        """Store ``obj`` (in the arena, or in a new segment) and return its key.

        Args:
            obj: Bytes to store.
            ttl: Seconds after which the object expires (see "Expiry" in the
                module notes); ``None``: never.

        Raises:
            ValueError: if ``ttl`` is not a positive, finite number.
            SharedMemoryFullError: if ``obj`` does not fit in the free space of
                ``/dev/shm``; nothing is left behind.
            ConnectorConnectionError: if the segment cannot be written otherwise.
        """
        if ttl is None:
            return self.put_parts((obj,))
        return self.put_parts((obj,), ttl=ttl)

    def put_parts(
        self, parts: Sequence[BytesLike], *, ttl: float | None = None
    ) -> SharedMemoryKey:
        """Store the concatenation of ``parts`` as one object; return its key.

        The parts are copied straight to shared memory, never joined first (the
        store hands a serializer's header and out-of-band buffers over this way).

        Raises:
            ValueError: if ``ttl`` is not a positive, finite number.
            SharedMemoryFullError: if the object does not fit in free shared memory.
            ConnectorConnectionError: if the segment cannot be written otherwise.
        """
        deadline = None
        if ttl is not None:
            deadline = time.time_ns() + _ns(check_ttl(ttl))
            if not self._budgeted:
                return self._put_expiring(parts, deadline)
        flat = [_flat(part) for part in parts]
        size = sum(len(part) for part in flat)
        arena = self._arena()
        if arena is not None:
            if deadline is not None:
                # Flags the namespace (its processes sweep) before any copy.
                _arena_ttl.deadlines_of(arena, create=True)
                self._start_sweeping(arena)
            found = arena.allocate(size)
            if found is None and self._spill is not None:
                found = self._spill.make_room(arena, size, self._arena_stem)
            if found is not None:
                slot, gen, offset = found
                try:
                    if deadline is not None:  # before the slot is published
                        table = _arena_ttl.deadlines_of(arena, create=True)
                        table.set(slot, gen, deadline)
                    arena.write(offset, flat)
                except BaseException:
                    arena.abort(slot, gen)
                    raise
                arena.commit(slot, gen)
                return SharedMemoryKey(f"{self._arena_stem}{slot}.{gen}", size)
            if self._spill is not None:
                # Too large for the arena, or every object in it is being read.
                spilled = self._spill.put_spilled(
                    arena, flat, size, self._arena_stem, deadline
                )
                if spilled is not None:
                    return SharedMemoryKey(spilled, size)
        name = self._new_name()
        if self._spill is not None and self._budgeted:
            # No overflow segments.
            self._spill.write_named(name, flat, size, deadline)
            return SharedMemoryKey(name, size)
        try:
            self._write(name, flat, size)
        except SharedMemoryFullError:
            if self._spill is None:
                raise
            self._spill.write_named(name, flat, size)
        return SharedMemoryKey(name, size)

    def put_batch(
        self, objs: Sequence[BytesLike], *, ttl: float | None = None
    ) -> list[SharedMemoryKey]:
        """Store each object; return the keys in order.

        Raises:
            ValueError: if ``ttl`` is not a positive, finite number.
            SharedMemoryFullError: if an object does not fit (earlier ones stay).
        """
        return [self.put(obj, ttl=ttl) for obj in objs]

    # ------------------------------------------------------------- expiry
    def _put_expiring(
        self, parts: Sequence[BytesLike], deadline: int
    ) -> SharedMemoryKey:
        """Store an object with a deadline: in the arena, else in a segment."""
        flat = [_flat(part) for part in parts]
        size = sum(len(part) for part in flat)
        arena = self._arena()
        if arena is not None:
            found = arena.allocate(size)
            if found is not None:
                slot, gen, offset = found
                try:
                    # Before the slot is published: never stored without it.
                    _arena_ttl.deadlines_of(arena, create=True).set(slot, gen, deadline)
                    self._start_sweeping(arena)
                    arena.write(offset, flat)
                except BaseException:
                    arena.abort(slot, gen)
                    raise
                arena.commit(slot, gen)
                return SharedMemoryKey(f"{self._arena_stem}{slot}.{gen}", size)
        name = self._new_name()
        try:
            self._write(name, flat, size, deadline)
        except SharedMemoryFullError:
            if self._spill is None:
                raise
            self._spill.write_named(name, flat, size, deadline)
        return SharedMemoryKey(name, size)

    def _arena_expired(self, arena: arenas.Arena, key: SharedMemoryKey) -> bool:
        slot = self._slot(key)
        if slot is None:
            return False
        table = _arena_ttl.deadlines_of(arena, create=False)
        return table is not None and table.expired(*slot)

    def _start_sweeping(self, arena: arenas.Arena) -> None:
        """Sweep the arena in the background while this connector lives."""
        if self._sweeping is not None:
            return
        path = self._arena_path
        chain, stem = self._spill, self._arena_stem
        # Functions of the arena and the chain only: never keep self alive.
        sweep: Callable[[], int]
        if chain is None:
            sweep = functools.partial(_arena_ttl.sweep_arena, arena)
        else:
            sweep = functools.partial(chain.sweep_expired, arena, stem)
        _sweeper.acquire(path, sweep, _SWEEP_S)
        self._sweeping = weakref.finalize(self, _sweeper.release, path)

    def expire(self, key: SharedMemoryKey, ttl: float | None) -> bool:
        """Set the remaining time-to-live of the object at ``key``.

        Args:
            key: Key of the object.
            ttl: Seconds from now; ``None`` removes the deadline.

        Returns:
            Whether an (unexpired) object exists at ``key``.

        Raises:
            ValueError: if ``ttl`` is not a positive, finite number (or the key
                does not name a segment of this connector kind).
        """
        checked = check_ttl(ttl)
        if not self.exists(key):
            return False
        deadline = None if checked is None else time.time_ns() + _ns(checked)
        slot = self._slot(key)
        arena = self._arena() if slot is not None else None
        if slot is not None and arena is not None and arena.exists(*slot):
            table = _arena_ttl.deadlines_of(arena, create=deadline is not None)
            if table is not None:
                table.set(*slot, deadline)
            if deadline is not None:
                self._start_sweeping(arena)
            return True
        spill = self._spill
        if slot is not None and arena is not None and spill is not None:  # noqa: SIM102
            if spill.set_deadline(arena, *slot, key.name, deadline):
                if deadline is not None:
                    self._start_sweeping(arena)
                return True
        try:
            _sweeper.set_file_deadline(self._path(key), deadline)
        except FileNotFoundError:
            return False  # spilled without an arena slot: kept as it was
        return True

    def ttl(self, key: SharedMemoryKey) -> float | None:
        """Return the seconds before the object at ``key`` expires.

        Returns:
            ``None`` when it has no deadline, has expired or does not exist.
        """
        if not self.exists(key):
            return None
        slot = self._slot(key)
        arena = self._arena() if slot is not None else None
        deadline: int | None = None
        if (
            slot is not None
            and arena is not None
            and (arena.exists(*slot) or _spill.spilled_tier(arena, *slot) is not None)
        ):
            # In the arena or spilled from it: the slot keeps its generation.
            table = _arena_ttl.deadlines_of(arena, create=False)
            deadline = None if table is None else table.deadline(*slot)
        else:
            with suppress(FileNotFoundError):
                st = os.stat(self._path(key))
                if st.st_mode & _EXPIRES:
                    deadline = st.st_mtime_ns
        return None if deadline is None else max(0, deadline - time.time_ns()) / 1e9

    def sweep(self) -> int:
        """Remove every expired object of the namespace now; return how many.

        The arena is swept under its table's lock (a concurrent sweep by another
        process makes this one skip it); expired segments are unlinked.
        """
        removed = 0
        arena = self._arena() if self.arena else None
        if self._spill is not None:
            removed += self._spill.sweep_expired(arena, self._arena_stem)
        elif arena is not None:
            removed += _arena_ttl.sweep_arena(arena)
        now = time.time_ns()
        with os.scandir(SHM_DIR) as entries:
            for entry in entries:
                name = entry.name
                if not name.startswith(self._stem) or _TMP_MARK in name:
                    continue
                with suppress(FileNotFoundError):
                    st = entry.stat(follow_symlinks=False)
                    if st.st_mode & _EXPIRES and st.st_mtime_ns <= now:
                        os.unlink(entry.path)
                        removed += 1
        return removed

    def scan(self) -> Iterator[KeyInfo]:
        """List the namespace's objects: size, age, time-to-live and holders.

        Arena objects report the pids of the processes holding views of them as
        holders (``"pid:<n>"``) and no age (the arena records none); segments
        report their age and no holders. Spilled objects are not listed.
        """
        now = time.time_ns()
        arena = self._arena() if self.arena else None
        if arena is not None:
            table = _arena_ttl.deadlines_of(arena, create=False)
            for slot, gen, size, holders in _arena_ttl.arena_objects(arena):
                deadline = None if table is None else table.deadline(slot, gen)
                if deadline is not None and deadline <= now:
                    continue
                yield KeyInfo(
                    SharedMemoryKey(f"{self._arena_stem}{slot}.{gen}", size),
                    size,
                    None,
                    None if deadline is None else (deadline - now) / 1e9,
                    tuple(f"pid:{pid}" for pid in holders),
                )
        segment = re.compile(re.escape(self._stem) + r"[0-9a-f]{32}")
        with os.scandir(SHM_DIR) as entries:
            for entry in entries:
                if not segment.fullmatch(entry.name):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                expires = bool(st.st_mode & _EXPIRES)
                if expires and st.st_mtime_ns <= now:
                    continue
                size = max(st.st_size - _HEADER_SIZE, 0)
                born = st.st_ctime_ns if expires else st.st_mtime_ns
                yield KeyInfo(
                    SharedMemoryKey(entry.name, size),
                    size,
                    max(now - born, 0) / 1e9,
                    (st.st_mtime_ns - now) / 1e9 if expires else None,
                )

    def set(self, key: SharedMemoryKey, obj: BytesLike) -> None:
        """Atomically store ``obj`` at ``key``, replacing any object already there.

        Readers that mapped the previous object keep it unchanged. The object gets
        a segment of its own (also when ``key`` named an arena object, which is
        evicted, in memory or spilled); with a ``budget``, an object set at a
        `new_key` goes to the first spill tier instead (no overflow segment).

        Raises:
            ValueError: if the key does not name a segment of this connector kind.
            ForeignFileError: if the key names another user's shared memory, or
                another user's file holds its name.
            SharedMemoryFullError: if ``obj`` does not fit in free shared memory.
            ConnectorConnectionError: if the segment cannot be written otherwise.
        """
        self._path(key)
        data = _flat(obj)
        slot = self._slot(key)
        spill = self._spill
        if slot is None and spill is not None and self._budgeted:
            spill.write_named(key.name, [data], len(data))  # no overflow segments
            return
        try:
            self._write(key.name, [data], len(data))
        except SharedMemoryFullError:
            if slot is not None or spill is None:
                raise
            spill.write_named(key.name, [data], len(data))
            return
        if slot is not None:
            arena = self._arena()
            if arena is not None:
                arena.evict(*slot)
                if spill is not None:
                    spill.evict(arena, *slot, key.name)  # a spilled older object

    def _write(
        self,
        name: str,
        parts: list[bytes | memoryview],
        size: int,
        deadline: int | None = None,
    ) -> None:
        """Write ``parts`` to a temporary segment, then rename it to ``name``."""
        needed = _HEADER_SIZE + size
        stats = os.statvfs(SHM_DIR)
        if needed > stats.f_bavail * stats.f_frsize:
            raise _full_error(needed, SHM_DIR)
        final = os.path.join(SHM_DIR, name)
        tmp = f"{final}{_TMP_MARK}{secrets.token_hex(6)}"
        header = _HEADER.pack(_MAGIC, size) + _HEADER_PAD
        try:
            fd = os.open(
                tmp,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                _FILE_MODE,
            )
            try:
                _write_all(fd, [header, *parts])
                if deadline is not None:  # set before the rename (see Expiry)
                    os.fchmod(fd, _FILE_MODE | _EXPIRES)
                    os.utime(fd, ns=(time.time_ns(), deadline))
            finally:
                os.close(fd)
            # Names hold 128 random bits, so a put never replaces an object.
            os.replace(tmp, final)
        except BaseException as exc:
            with suppress(OSError):
                os.unlink(tmp)
            if not isinstance(exc, OSError) or isinstance(exc, ConnectorError):
                raise
            if exc.errno in (errno.EPERM, errno.EACCES):
                # /dev/shm is sticky: only another user's file makes this fail.
                try:
                    problem = arenas.problem_with(os.lstat(final), self._uid)
                except OSError:
                    problem = None
                if problem is not None:
                    raise arenas.refusal(final, _SEGMENT, problem) from exc
            if exc.errno in (errno.ENOSPC, errno.EFBIG):
                # Another writer took the space between our check and write.
                raise _full_error(needed, SHM_DIR) from exc
            with _os_errors("write", final):
                raise
