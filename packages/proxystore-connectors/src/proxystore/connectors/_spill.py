"""Memory budget and tiered spill of the shared-memory arena.

A `SharedMemoryConnector` given a ``budget`` keeps at most that many bytes of
``/dev/shm`` (its arena is sized to the budget and it makes no overflow
segments). When a put would exceed it, the least recently used objects move down
a chain of tiers, and come back on demand:

    shared-memory arena  ->  local directory  ->  any connector (optional)

Where an object lives is recorded in the arena's slot table, which every process
of the namespace maps: a spilled slot keeps its generation (so the key that names
it is unchanged) and its state says which tier holds the bytes
(``SPILLED + tier``). A key or a proxy made before a spill therefore resolves
after it, in any process, from wherever the object went.

Moves are crash-safe (a process can be SIGKILLed at any point of one):

1. copy the object down (a temporary file renamed onto its name, or a put to
   the connector; a killed copier leaves the object where it was);
2. commit the move in the index: one word store under the arena's ``flock``,
   made only if the slot still holds the same generation, nobody holds a
   zero-copy view of it and it is still in the tier it was copied from;
3. free the old copy.

A process killed between 2 and 3 leaves an unreachable old copy (removed by
``close(clear=True)``), never a lost object. A slot with a holder (a process
reading it zero-copy) is never chosen, and a hold taken during the copy makes
the commit give up. Only one process of a namespace spills at a time (an
``flock`` on the spill directory's lock file); readers never wait for it.

Lifetimes: an object stored with a time-to-live (``put(..., ttl=)``) spills like
any other and keeps its deadline: the arena's deadline table is indexed by slot
and generation, which a spilled slot keeps, and the tier copy carries it too (a
directory file's modification time marked by the sticky bit, as `FileConnector`
does; ``ttl=`` the time left for a connector tier that can expire objects). An
expired object is dropped, never spilled: before spilling to make room, a put
sweeps the expired objects, and the namespace's sweeper (`sweep_expired`, run by
every process that maps an arena with deadlines) removes expired objects from
the tiers too. A read never returns an expired object from any tier.

Spilled files are not ``fsync``ed: like Ray's spill files they survive the
death of any process, not of the machine.

Objects written to a tier can be compressed with zstandard at level 1 (the
``spill-compress`` extra). Chosen by measurement on 8 MB buffers (one core,
compress / decompress MB/s, ratio): zstd-1 gave the best ratios on text (0.085)
and on integer and rounded float arrays (0.07, 0.34) at 360-1000 / 780-1460
MB/s; lz4 was faster on incompressible data but compressed text and integers
far less (0.41, 0.32); blosc2 with shuffle was fastest on numeric arrays but
worse on text (0.20-0.51) and pulls in a large dependency tree. Objects that do
not shrink by an eighth are stored raw, so random floats pay no decompression.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import mmap
import os
import re
import secrets
import shutil
import struct
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final, Protocol

from proxystore.connectors import _arena as arenas
from proxystore.connectors import _arena_ttl, _sweeper
from proxystore.connectors.exceptions import ConnectorError, CorruptPayloadError
from proxystore.connectors.protocols import BytesLike, ExpiringConnector
from proxystore.utils.imports import get_object_path, import_from_path

__all__ = [
    "ConnectorTier",
    "DirectoryTier",
    "SpillChain",
    "SpillError",
    "TierStats",
    "default_spill_directory",
    "parse_budget",
]

logger = logging.getLogger(__name__)

#: Budgets below this are refused (the arena needs a table and some room).
MIN_BUDGET: Final = 1 << 20
_MAGIC: Final = b"PSSPILL\x01"
# magic, codec (0 raw, 1 zstd), payload size when decoded; padded to 64 bytes so
# buffers the serializer aligned to 64 bytes stay aligned in a mapped file.
_HEADER: Final = struct.Struct("<8sQQ")
_HEADER_SIZE: Final = 64
_RAW, _ZSTD = 0, 1
_CODECS: Final = {"zstd": _ZSTD}
#: Store compressed only when it saves at least this fraction.
_MIN_SAVING: Final = 1 / 8
#: Probe compressibility on this many leading bytes before compressing it all.
_PROBE: Final = 256 * 1024
_MAP_MIN_BYTES: Final = 2 * 1024 * 1024
_TMP: Final = ".tmp-"
_LOCK: Final = ".lock"
_NAME_RE: Final = re.compile(r"[A-Za-z0-9_.~-]{1,200}")
#: Re-reads of a slot that moved while it was being read, before giving up.
_READ_ATTEMPTS: Final = 16


class SpillError(ConnectorError):
    """Raised when an object can neither stay in memory nor move down a tier."""


def parse_budget(budget: int | float | str, directory: str) -> int:
    """Return ``budget`` in bytes.

    Args:
        budget: Bytes (an ``int``), or a fraction of the size of the file system
            at ``directory`` (``"50%"``, or a ``float`` in ``(0, 1]``).
        directory: Where the fraction is taken of (``/dev/shm``, or ``/`` for RAM).

    Raises:
        ValueError: if the budget is malformed, not positive, or below 1 MiB.
    """
    fraction: float | None = None
    if isinstance(budget, str):
        text = budget.strip()
        if not text.endswith("%"):
            raise ValueError(f"Invalid budget {budget!r}: use bytes or 'N%'.")
        try:
            fraction = float(text[:-1]) / 100
        except ValueError:
            raise ValueError(f"Invalid budget {budget!r}: use bytes or 'N%'.") from None
    elif isinstance(budget, float):
        fraction = budget
    elif isinstance(budget, bool) or not isinstance(budget, int):
        raise ValueError(f"Invalid budget {budget!r}: use bytes or 'N%'.")
    else:
        size = budget
    if fraction is not None:
        if not 0 < fraction <= 1:
            raise ValueError(f"Budget fraction {budget!r} is not in (0, 100%].")
        stats = os.statvfs(directory)
        size = int(stats.f_blocks * stats.f_frsize * fraction)
    if size < MIN_BUDGET:
        raise ValueError(f"Budget {budget!r} ({size} bytes) is below 1 MiB.")
    return size


def default_spill_directory(namespace: str) -> str:
    """Return the default spill directory of ``namespace`` (same in every process)."""
    return os.path.join(
        tempfile.gettempdir(), f"proxystore-spill-{os.geteuid()}-{namespace}"
    )


# ---------------------------------------------------------------- encoding
def _zstd() -> Any:
    try:
        import zstandard  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ValueError(
            "Spill compression needs zstandard: install "
            "proxystore-connectors[spill-compress]."
        ) from exc
    return zstandard


def _encode(parts: Sequence[BytesLike], codec: int) -> tuple[list[BytesLike], int]:
    """Return the framed buffers of ``parts`` and the decoded size."""
    size = sum(memoryview(p).nbytes for p in parts)
    if codec == _ZSTD and size:
        zstandard = _zstd()
        flat = [memoryview(p).cast("B") for p in parts]
        # Probe the largest part (the first is often a serializer's header).
        probe = bytes(max(flat, key=len)[:_PROBE])
        compressor = zstandard.ZstdCompressor(level=1)
        if len(compressor.compress(probe)) <= len(probe) * (1 - _MIN_SAVING):
            whole = flat[0] if len(flat) == 1 else b"".join(flat)
            packed = compressor.compress(whole)
            if len(packed) <= size * (1 - _MIN_SAVING):
                header = _HEADER.pack(_MAGIC, _ZSTD, size)
                return [header.ljust(_HEADER_SIZE, b"\0"), packed], size
    header = _HEADER.pack(_MAGIC, _RAW, size)
    return [header.ljust(_HEADER_SIZE, b"\0"), *parts], size


def _decode(data: BytesLike, name: str) -> BytesLike:
    """Return the payload of a framed buffer."""
    view = memoryview(data).cast("B")
    if len(view) < _HEADER_SIZE:
        raise CorruptPayloadError(f"Spilled object {name!r} is truncated.")
    magic, codec, size = _HEADER.unpack_from(view, 0)
    if magic != _MAGIC or codec not in (_RAW, _ZSTD):
        raise CorruptPayloadError(f"Spilled object {name!r} has no valid header.")
    body = view[_HEADER_SIZE:]
    if codec == _ZSTD:
        out: bytes = _zstd().ZstdDecompressor().decompress(body, max_output_size=size)
        body = memoryview(out)
    if len(body) != size:
        raise CorruptPayloadError(
            f"Spilled object {name!r} holds {len(body)} bytes, its header says {size}."
        )
    return body if isinstance(data, memoryview) or codec == _ZSTD else bytes(body)


# ---------------------------------------------------------------- tiers
class Tier(Protocol):
    """Where spilled objects go: name-addressed storage of framed bytes."""

    label: str

    def write(
        self, name: str, parts: Sequence[BytesLike], deadline: int | None = None
    ) -> int:
        """Store the framed ``parts`` under ``name`` (expiring at ``deadline``,
        ``time_ns``); return the bytes written.
        """
        ...

    def read(self, name: str) -> BytesLike | None:
        """Return the framed bytes under ``name``, or ``None`` (also if expired)."""
        ...

    def set_deadline(self, name: str, deadline: int | None) -> None:
        """Give the object ``name`` a new deadline (``None``: none)."""
        ...

    def sweep(self) -> int:
        """Remove the tier's expired objects; return how many."""
        ...

    def remove(self, name: str) -> None:
        """Remove ``name`` (missing is fine)."""
        ...

    def exists(self, name: str) -> bool:
        """Return whether ``name`` is stored."""
        ...

    def clear(self) -> None:
        """Remove every object of the tier."""
        ...


def _expired(st: os.stat_result, now: int) -> bool:
    """Return whether a spill file's deadline (if it has one) has passed."""
    return bool(st.st_mode & _sweeper.EXPIRES) and st.st_mtime_ns <= now


def _private_dir(path: str) -> None:
    """Create ``path`` with mode 0700 if needed; refuse one that is not ours."""
    with contextlib.suppress(FileExistsError):
        os.makedirs(path, mode=0o700)
    st = os.lstat(path)
    problem = None
    if not os.path.isdir(path) or os.path.islink(path):
        problem = "it is not a directory"
    elif st.st_uid != os.geteuid():
        problem = f"it belongs to uid {st.st_uid}"
    elif st.st_mode & 0o077:
        problem = f"other users may open it (mode {st.st_mode & 0o777:04o})"
    if problem is not None:
        raise arenas.refusal(path, "spill directory", problem)


class DirectoryTier:
    """A private local directory, one file per object (named after its key).

    Args:
        path: The directory (created with mode 0700).
    """

    label = "directory"

    def __init__(self, path: str) -> None:
        self.path = path

    def _file(self, name: str) -> str:
        if not _NAME_RE.fullmatch(name) or name.startswith("."):
            raise ValueError(f"Invalid spilled object name {name!r}.")
        return os.path.join(self.path, name)

    def write(
        self, name: str, parts: Sequence[BytesLike], deadline: int | None = None
    ) -> int:
        """Write ``parts`` to a temporary file, then rename it onto ``name``.

        A ``deadline`` (``time_ns``) becomes the file's modification time, marked
        by the sticky bit, before the rename (the convention of `FileConnector`).
        """
        final = self._file(name)
        _private_dir(self.path)
        tmp = f"{self.path}/.{name}{_TMP}{secrets.token_hex(6)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        written = 0
        try:
            try:
                for part in parts:
                    view = memoryview(part).cast("B")
                    while len(view):
                        n = os.write(fd, view)
                        written += n
                        view = view[n:]
                if deadline is not None:
                    os.fchmod(fd, 0o600 | _sweeper.EXPIRES)
                    os.utime(fd, ns=(time.time_ns(), deadline))
            finally:
                os.close(fd)
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return written

    def read(self, name: str, *, expired: bool = False) -> BytesLike | None:
        """Return the file's bytes (a private mapping when large), or ``None``.

        An expired file reads as ``None`` unless ``expired``.
        """
        try:
            fd = os.open(self._file(name), os.O_RDONLY | arenas.OPEN_FLAGS)
        except FileNotFoundError:
            return None
        try:
            st = arenas.check_private(fd, self._file(name), "spill file", os.geteuid())
            if not expired and _expired(st, time.time_ns()):
                return None
            if st.st_size < _MAP_MIN_BYTES:
                return os.read(fd, st.st_size)
            mapping = mmap.mmap(
                fd, st.st_size, flags=mmap.MAP_PRIVATE,
                prot=mmap.PROT_READ | mmap.PROT_WRITE,
            )  # fmt: skip
            return memoryview(mapping)
        finally:
            os.close(fd)

    def exists(self, name: str) -> bool:
        """Return whether the file of ``name`` exists and has not expired."""
        try:
            st = os.lstat(self._file(name))
        except FileNotFoundError:
            return False
        return not _expired(st, time.time_ns())

    def set_deadline(self, name: str, deadline: int | None) -> None:
        """Give the file of ``name`` a new deadline (missing is fine)."""
        with contextlib.suppress(FileNotFoundError):
            _sweeper.set_file_deadline(self._file(name), deadline)

    def sweep(self) -> int:
        """Remove the expired files; return how many."""
        removed = 0
        now = time.time_ns()
        with contextlib.suppress(FileNotFoundError), os.scandir(self.path) as it:
            for entry in it:
                if entry.name.startswith("."):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    if _expired(entry.stat(follow_symlinks=False), now):
                        os.unlink(entry.path)
                        removed += 1
        return removed

    def remove(self, name: str) -> None:
        """Remove the file of ``name``."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._file(name))

    def names(self) -> list[str]:
        """Return the names stored (temporary files excluded)."""
        try:
            return [n for n in os.listdir(self.path) if not n.startswith(".")]
        except FileNotFoundError:
            return []

    def usage(self) -> int:
        """Return the bytes the tier's files take."""
        total = 0
        with contextlib.suppress(FileNotFoundError), os.scandir(self.path) as it:
            for entry in it:
                with contextlib.suppress(FileNotFoundError):
                    total += entry.stat(follow_symlinks=False).st_size
        return total

    def clear(self) -> None:
        """Remove the directory with every file in it."""
        shutil.rmtree(self.path, ignore_errors=True)


class ConnectorTier:
    """Any connector; its keys are recorded in files of ``index`` (a directory).

    Args:
        connector: The connector the bytes go to.
        index: Private directory of one small JSON file per object: the key.
    """

    label: str

    def __init__(self, connector: Any, index: str) -> None:
        self.connector = connector
        self.index = DirectoryTier(index)
        self.label = type(connector).__name__

    def write(
        self, name: str, parts: Sequence[BytesLike], deadline: int | None = None
    ) -> int:
        """Put the joined ``parts`` to the connector and record its key.

        With a ``deadline``, a connector that can expire objects gets the time
        left as ``ttl=``; the index file carries the deadline as well.
        """
        data = b"".join(memoryview(p).cast("B") for p in parts)
        ttl = _ttl_left(deadline)
        if ttl is not None and isinstance(self.connector, ExpiringConnector):
            key = self.connector.put(data, ttl=ttl)
        else:
            key = self.connector.put(data)
        record = {"type": get_object_path(type(key)), "fields": list(key)}
        self.index.write(name, [json.dumps(record).encode()], deadline)
        return len(data)

    def set_deadline(self, name: str, deadline: int | None) -> None:
        """Give the object a new deadline, in its index file and the connector."""
        key = self._key(name)
        if key is None:
            return
        self.index.set_deadline(name, deadline)
        if isinstance(self.connector, ExpiringConnector):
            self.connector.expire(key, _ttl_left(deadline))

    def sweep(self) -> int:
        """Evict the objects whose index file expired; return how many."""
        removed = 0
        now = time.time_ns()
        for name in self.index.names():
            with contextlib.suppress(FileNotFoundError):
                st = os.lstat(os.path.join(self.index.path, name))
                if _expired(st, now):
                    self.remove(name)
                    removed += 1
        return removed

    def _key(self, name: str, *, expired: bool = False) -> Any | None:
        raw = self.index.read(name, expired=expired)
        if raw is None:
            return None
        record = json.loads(bytes(raw))
        return import_from_path(record["type"])(*record["fields"])

    def read(self, name: str) -> BytesLike | None:
        """Return the bytes recorded under ``name``."""
        key = self._key(name)
        return None if key is None else self.connector.get(key)

    def exists(self, name: str) -> bool:
        """Return whether a key is recorded under ``name``."""
        return self.index.exists(name)

    def remove(self, name: str) -> None:
        """Evict the object from the connector, then forget its key."""
        key = self._key(name, expired=True)
        if key is not None:
            self.connector.evict(key)
        self.index.remove(name)

    def clear(self) -> None:
        """Evict every recorded object and remove the index."""
        for name in self.index.names():
            with contextlib.suppress(Exception):
                self.remove(name)
        self.index.clear()


def _ttl_left(deadline: int | None) -> float | None:
    """Return the seconds left before ``deadline`` (at least a millisecond)."""
    if deadline is None:
        return None
    return max(deadline - time.time_ns(), 1_000_000) / 1e9


# ---------------------------------------------------------------- slot table
# Changes of spill states, each under the arena lock, each ending with the one
# word store that decides it (see the module documentation of ``_arena``).
def _words(arena: arenas.Arena, slot: int) -> tuple[Any, int]:
    return arena.words, arena._entry(slot)


def _least_recent(
    arena: arenas.Arena, state: int, unheld: bool
) -> tuple[int, int] | None:
    """Return ``(slot, gen)`` of the least recently used slot in ``state``.

    With ``unheld``, slots some process holds are passed over.
    """
    with arena.locked():
        w = arena.words
        best: tuple[int, int, int] | None = None
        for slot in range(w[arenas._H_HIGH]):
            e = arena._entry(slot)
            if w[e + arenas._E_STATE] != state or (unheld and arena._has_holders(e)):
                continue
            tick = w[e + arenas._E_OWNER]
            if best is None or tick < best[0]:
                best = (tick, slot, w[e + arenas._E_GEN])
        return None if best is None else (best[1], best[2])


def lru_victim(arena: arenas.Arena) -> tuple[int, int] | None:
    """Return ``(slot, gen)`` of the least recently used unheld READY object."""
    return _least_recent(arena, arenas.READY, unheld=True)


def lru_spilled(arena: arenas.Arena, tier: int) -> tuple[int, int] | None:
    """Return ``(slot, gen)`` of the least recently used object of ``tier``."""
    return _least_recent(arena, arenas.SPILLED + tier, unheld=False)


def _tier_of(arena: arenas.Arena, slot: int, gen: int) -> int | None:
    """Return the tier of the spilled ``(slot, gen)``; hold the lock."""
    w, e = _words(arena, slot)
    state = w[e + arenas._E_STATE]
    if w[e + arenas._E_GEN] != gen or state < arenas.SPILLED:
        return None
    return int(state - arenas.SPILLED)


def spilled_tier(arena: arenas.Arena, slot: int, gen: int) -> int | None:
    """Return the tier of the spilled object at ``(slot, gen)``, else ``None``."""
    if not 0 <= slot < arena.slots:
        return None
    with arena.locked():
        return _tier_of(arena, slot, gen)


def commit_spill(
    arena: arenas.Arena, slot: int, gen: int, tier: int, *, writing: bool = False
) -> bool:
    """Record that the object at ``(slot, gen)`` now lives in ``tier``.

    Only if the slot still holds that generation, READY (``WRITING`` by us for
    an object stored straight to the tier) and unheld; its data room is free
    from the same word store on.
    """
    with arena.locked():
        w, e = _words(arena, slot)
        expected = arenas.WRITING if writing else arenas.READY
        if w[e + arenas._E_GEN] != gen or w[e + arenas._E_STATE] != expected:
            return False
        if arena._has_holders(e):
            return False
        w[e + arenas._E_STATE] = arenas.SPILLED + tier  # decisive
        w[e + arenas._E_CAP] = 0
        if writing:
            arena.touch(e)
        return True


def commit_move(arena: arenas.Arena, slot: int, gen: int, src: int, dst: int) -> bool:
    """Record that a spilled object moved from tier ``src`` to ``dst``."""
    with arena.locked():
        w, e = _words(arena, slot)
        if (
            w[e + arenas._E_GEN] != gen
            or w[e + arenas._E_STATE] != arenas.SPILLED + src
        ):
            return False
        w[e + arenas._E_STATE] = arenas.SPILLED + dst  # decisive
        return True


def reserve_spilled(arena: arenas.Arena, size: int) -> tuple[int, int] | None:
    """Take a free slot for an object stored straight to a tier (no data room)."""
    with arena.locked():
        w = arena.words
        high = w[arenas._H_HIGH]
        states = w[
            arena.table + arenas._E_STATE : arena.table
            + high * arenas.ENTRY_WORDS : arenas.ENTRY_WORDS
        ].tolist()
        slot = states.index(arenas.FREE) if arenas.FREE in states else high
        if slot >= arena.slots:
            return None
        gen = w[arenas._H_GEN] + 1
        w[arenas._H_GEN] = gen
        e = arena._entry(slot)
        w[e + arenas._E_GEN] = gen
        w[e + arenas._E_OFF] = arena.data_start
        w[e + arenas._E_CAP] = 0
        w[e + arenas._E_SIZE] = size
        w[e + arenas._E_OWNER] = os.getpid()
        for h in range(e + arenas._E_HOLD, e + arenas._E_HOLD + arenas.HOLDERS):
            w[h] = 0
        if slot >= high:
            w[arenas._H_HIGH] = slot + 1
        w[e + arenas._E_STATE] = arenas.WRITING  # decisive
        return slot, gen


def commit_restore(
    arena: arenas.Arena, slot: int, gen: int, tier: int, tmp: int, tmp_gen: int
) -> bool:
    """Make the spilled ``(slot, gen)`` READY on the room written in slot ``tmp``."""
    with arena.locked():
        w, e = _words(arena, slot)
        t = arena._entry(tmp)
        if (
            w[e + arenas._E_GEN] != gen
            or w[e + arenas._E_STATE] != arenas.SPILLED + tier
            or w[t + arenas._E_GEN] != tmp_gen
            or w[t + arenas._E_STATE] != arenas.WRITING
        ):
            return False
        w[e + arenas._E_OFF] = w[t + arenas._E_OFF]
        w[e + arenas._E_CAP] = w[t + arenas._E_CAP]
        w[e + arenas._E_SIZE] = w[t + arenas._E_SIZE]
        w[e + arenas._E_STATE] = arenas.READY  # decisive: both slots cover the room
        arena.touch(e)
        arena._free(tmp)
        return True


def resident(arena: arenas.Arena) -> dict[int, tuple[int, int]]:
    """Return ``{tier: (objects, bytes)}`` of the namespace (tier -1: the arena)."""
    counts: dict[int, tuple[int, int]] = {}
    with arena.locked():
        w = arena.words
        for slot in range(w[arenas._H_HIGH]):
            e = arena._entry(slot)
            state = w[e + arenas._E_STATE]
            if state == arenas.READY:
                where = -1
            elif state >= arenas.SPILLED:
                where = int(state - arenas.SPILLED)
            else:
                continue
            objects, size = counts.get(where, (0, 0))
            counts[where] = (objects + 1, size + w[e + arenas._E_SIZE])
    return counts


def evict_spilled(arena: arenas.Arena, slot: int, gen: int) -> int | None:
    """Free the spilled slot ``(slot, gen)``; return the tier it was in."""
    if not 0 <= slot < arena.slots:
        return None
    with arena.locked():
        tier = _tier_of(arena, slot, gen)
        if tier is not None:
            arena._free(slot)
        return tier


# ---------------------------------------------------------------- metrics
@dataclass
class TierStats:
    """What this process moved to and from one tier."""

    objects_spilled: int = 0
    bytes_spilled: int = 0
    bytes_written: int = 0
    objects_restored: int = 0
    bytes_restored: int = 0
    bytes_read: int = 0
    objects_dropped: int = 0

    def count_spill(self, size: int, written: int) -> None:
        """Count one object of ``size`` bytes spilled here as ``written`` bytes."""
        self.objects_spilled += 1
        self.bytes_spilled += size
        self.bytes_written += written


# ---------------------------------------------------------------- the chain
class SpillChain:
    """The tiers below one namespace's arena, and the moves between them.

    Args:
        namespace: The connector's namespace (names the lock and log lines).
        directory: The local spill directory (tier 0).
        compress: ``"zstd"`` to compress what is written to tiers, or ``None``.
        then: Connectors below the directory, as ``(dotted class path, config)``.
        directory_budget: Bytes the directory may hold before its least recently
            used objects move to the next tier (``None``: no limit).
    """

    def __init__(
        self,
        namespace: str,
        directory: str,
        *,
        compress: str | None = None,
        then: Sequence[tuple[str, dict[str, Any]]] = (),
        directory_budget: int | None = None,
    ) -> None:
        if compress is not None and compress not in _CODECS:
            raise ValueError(f"Unknown spill codec {compress!r}: use 'zstd' or None.")
        if compress is not None:
            _zstd()
        self.namespace = namespace
        self.directory = directory
        self.compress = compress
        self.codec = _RAW if compress is None else _CODECS[compress]
        self.then = [(path, dict(config)) for path, config in then]
        self.directory_budget = directory_budget
        self.tiers: list[Tier] = [DirectoryTier(directory)]
        for i, (path, config) in enumerate(self.then):
            connector = import_from_path(path).from_config(config)
            index = os.path.join(directory, f".index-{i + 1}")
            self.tiers.append(ConnectorTier(connector, index))
        self.stats = [TierStats() for _ in self.tiers]
        self._tlock = threading.RLock()
        self._depth = 0

    def config(self) -> dict[str, Any]:
        """Return the options this chain was made with (JSON-compatible)."""
        return {
            "directory": self.directory,
            "compress": self.compress,
            "then": [list(t) for t in self.then],
            "directory_budget": self.directory_budget,
        }

    def metrics(self, arena: arenas.Arena | None = None) -> dict[str, dict[str, int]]:
        """Return this process's counters per tier (``"0:directory"``, ...).

        With ``arena``, each row also has ``objects_now`` and ``bytes_now``: what
        the tier holds for the whole namespace (from the slot table), and a
        ``"shm"`` row says the same of the arena.
        """
        counts = {} if arena is None else resident(arena)
        out: dict[str, dict[str, int]] = {}
        if arena is not None:
            objects, size = counts.get(-1, (0, 0))
            out["shm"] = {"objects_now": objects, "bytes_now": size}
        for i, (tier, stats) in enumerate(zip(self.tiers, self.stats, strict=True)):
            row = out[f"{i}:{tier.label}"] = asdict(stats)
            if arena is not None:
                row["objects_now"], row["bytes_now"] = counts.get(i, (0, 0))
        return out

    # ------------------------------------------------------------ locking
    @contextlib.contextmanager
    def spilling(self) -> Iterator[None]:
        """Hold the namespace's spill lock (one spiller at a time; re-entrant)."""
        with self._tlock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            _private_dir(self.directory)
            path = os.path.join(self.directory, _LOCK)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._depth = 1
                try:
                    yield
                finally:
                    self._depth = 0
            finally:
                os.close(fd)

    # ------------------------------------------------------------ tier I/O
    def _write(
        self,
        tier: int,
        name: str,
        parts: Sequence[BytesLike],
        deadline: int | None = None,
    ) -> int:
        framed, _ = _encode(parts, self.codec)
        if deadline is None:
            return self.tiers[tier].write(name, framed)
        return self.tiers[tier].write(name, framed, deadline)

    def _read(self, tier: int, name: str) -> BytesLike | None:
        raw = self.tiers[tier].read(name)
        return None if raw is None else _decode(raw, name)

    # ------------------------------------------------------------ arena moves
    def make_room(
        self, arena: arenas.Arena, size: int, stem: str
    ) -> tuple[int, int, int] | None:
        """Spill least recently used objects until ``size`` bytes fit; allocate.

        Returns:
            ``(slot, generation, offset)`` of the allocation, or ``None`` when
            the object cannot fit even with every movable object spilled.
        """
        need = max(size, 1) + (-max(size, 1) % arenas.ALIGN)
        if need > arena.size - arena.data_start:
            return None  # larger than the whole arena: spilling cannot help
        with self.spilling():
            # Expired objects are dropped, never spilled.
            self.stats[0].objects_dropped += self.sweep_expired(arena, stem)
            while True:
                found = arena.allocate(size)
                if found is not None:
                    return found
                victim = lru_victim(arena)
                if victim is None:
                    return None
                self.spill_slot(arena, *victim, stem)

    def spill_slot(self, arena: arenas.Arena, slot: int, gen: int, stem: str) -> bool:
        """Move the READY object at ``(slot, gen)`` to tier 0; call spilling().

        Returns:
            Whether the object moved (or was dropped as expired).
        """
        name = f"{stem}{slot}.{gen}"
        with arena.locked():
            found = arena.locate(slot, gen)
        if found is None:
            return False
        deadline = _deadline(arena, slot, gen)
        if deadline is not None and deadline <= time.time_ns():
            # An expired object is dropped, never spilled.
            if not arena.evict(slot, gen):
                return False
            self.stats[0].objects_dropped += 1
            logger.debug("dropped expired %s instead of spilling it", name)
            return True
        offset, size = found
        # The bytes cannot change under us: a slot is reused only after it is
        # freed, and the commit below checks it was not. The deadline stays in
        # the arena's table (the slot keeps its generation) and goes with the copy.
        view = arena.bytes[offset : offset + size]
        written = self._write(0, name, [view], deadline)
        if not commit_spill(arena, slot, gen, 0):
            self.tiers[0].remove(name)
            return False
        self.stats[0].count_spill(size, written)
        logger.debug(
            "spilled %s (%d bytes, %d written) from shared memory to %s",
            name, size, written, self.tiers[0].label,
        )  # fmt: skip
        if self.directory_budget is not None and len(self.tiers) > 1:
            self._trim_directory(arena, stem)
        return True

    def _trim_directory(self, arena: arenas.Arena, stem: str) -> None:
        """Move least recently used objects of tier 0 down while it is over budget."""
        assert self.directory_budget is not None
        tier = self.tiers[0]
        assert isinstance(tier, DirectoryTier)
        while tier.usage() > self.directory_budget:
            victim = lru_spilled(arena, 0)
            if victim is None:
                return
            if not self.move_down(arena, *victim, 0, stem):
                return

    def move_down(
        self, arena: arenas.Arena, slot: int, gen: int, tier: int, stem: str
    ) -> bool:
        """Move a spilled object from ``tier`` to ``tier + 1``."""
        name = f"{stem}{slot}.{gen}"
        data = self._read(tier, name)
        if data is None:
            return False
        written = self._write(tier + 1, name, [data], _deadline(arena, slot, gen))
        if not commit_move(arena, slot, gen, tier, tier + 1):
            self.tiers[tier + 1].remove(name)
            return False
        self.tiers[tier].remove(name)
        size = len(memoryview(data).cast("B"))
        self.stats[tier + 1].count_spill(size, written)
        logger.debug(
            "spilled %s (%d bytes) from %s to %s",
            name, size, self.tiers[tier].label,
            self.tiers[tier + 1].label,
        )  # fmt: skip
        return True

    def put_spilled(
        self,
        arena: arenas.Arena,
        parts: Sequence[BytesLike],
        size: int,
        stem: str,
        deadline: int | None = None,
    ) -> str | None:
        """Store an object that cannot live in memory straight in tier 0.

        A ``deadline`` (``time_ns``) is recorded in the arena's table before the
        object is published, and carried by its tier copy.

        Returns:
            The key name (an arena slot in a spilled state), or ``None`` when the
            arena has no free slot.
        """
        reserved = reserve_spilled(arena, size)
        if reserved is None:
            return None
        slot, gen = reserved
        name = f"{stem}{slot}.{gen}"
        try:
            if deadline is not None:
                table = _arena_ttl.deadlines_of(arena, create=True)
                table.set(slot, gen, deadline)
            written = self._write(0, name, parts, deadline)
        except BaseException:
            arena.abort(slot, gen)
            raise
        commit_spill(arena, slot, gen, 0, writing=True)
        self.stats[0].count_spill(size, written)
        logger.debug(
            "stored %s (%d bytes, %d written) straight to %s: no room in memory",
            name, size, written, self.tiers[0].label,
        )  # fmt: skip
        return name

    def get(
        self, arena: arenas.Arena, slot: int, gen: int, name: str
    ) -> tuple[bool, BytesLike | None]:
        """Read a spilled object.

        Returns:
            ``(False, bytes)`` read from its tier; ``(True, None)`` when it is
            back in the arena (read it there); ``(False, None)`` when no object
            is at ``(slot, gen)``.
        """
        for _ in range(_READ_ATTEMPTS):
            tier = spilled_tier(arena, slot, gen)
            if tier is None:
                return arena.exists(slot, gen), None
            if tier >= len(self.tiers):
                raise SpillError(
                    f"{name!r} was spilled to tier {tier}, but this connector has "
                    f"only {len(self.tiers)} spill tiers: give every process of "
                    f"namespace {self.namespace!r} the same spill options."
                )
            data = self._read(tier, name)
            if data is not None:
                stats = self.stats[tier]
                stats.bytes_read += len(memoryview(data).cast("B"))
                return False, data
        return False, None

    def restore(self, arena: arenas.Arena, slot: int, gen: int, stem: str) -> bool:
        """Bring a spilled object back into the arena (spilling others if needed).

        Returns:
            Whether the object is in the arena now.
        """
        name = f"{stem}{slot}.{gen}"
        tier = spilled_tier(arena, slot, gen)
        if tier is None:
            return arena.exists(slot, gen)
        data = self._read(tier, name)
        if data is None:
            return arena.exists(slot, gen)
        view = memoryview(data).cast("B")
        found = self.make_room(arena, len(view), stem)
        if found is None:
            return False
        if self._restore_into(arena, slot, gen, tier, view, found, stem):
            return True
        return arena.exists(slot, gen)

    def restore_if_room(
        self, arena: arenas.Arena, slot: int, gen: int, data: BytesLike, stem: str
    ) -> bool:
        """Put ``data`` just read from a tier back in the arena if it has free room.

        Never spills anything for it: a read of a spilled object brings it back
        only into room that is free anyway.
        """
        tier = spilled_tier(arena, slot, gen)
        if tier is None:
            return False
        view = memoryview(data).cast("B")
        found = arena.allocate(len(view))
        if found is None:
            return False
        return self._restore_into(arena, slot, gen, tier, view, found, stem)

    def _restore_into(
        self,
        arena: arenas.Arena,
        slot: int,
        gen: int,
        tier: int,
        view: memoryview,
        found: tuple[int, int, int],
        stem: str,
    ) -> bool:
        tmp_slot, tmp_gen, offset = found
        try:
            arena.write(offset, [view])
        except BaseException:
            arena.abort(tmp_slot, tmp_gen)
            raise
        if not commit_restore(arena, slot, gen, tier, tmp_slot, tmp_gen):
            arena.abort(tmp_slot, tmp_gen)
            return False
        name = f"{stem}{slot}.{gen}"
        with self.spilling():
            # Back in the arena, the object may have been spilled again by now,
            # to the same name: remove the old copy only if it is not the
            # current one (no spill runs while we hold the spill lock).
            if spilled_tier(arena, slot, gen) != tier:
                self.tiers[tier].remove(name)
        stats = self.stats[tier]
        stats.objects_restored += 1
        stats.bytes_restored += len(view)
        logger.debug(
            "restored %s (%d bytes) from %s to shared memory",
            name, len(view), self.tiers[tier].label,
        )  # fmt: skip
        return True

    def evict(self, arena: arenas.Arena, slot: int, gen: int, name: str) -> bool:
        """Evict a spilled object: free its slot, then its tier copy."""
        tier = evict_spilled(arena, slot, gen)
        if tier is None:
            return False
        if tier < len(self.tiers):
            self.tiers[tier].remove(name)
        return True

    # ------------------------------------------------------------ by name
    def write_named(
        self,
        name: str,
        parts: Sequence[BytesLike],
        size: int,
        deadline: int | None = None,
    ) -> None:
        """Store an object with no arena slot in tier 0, under its key name."""
        written = self._write(0, name, parts, deadline)
        self.stats[0].count_spill(size, written)
        logger.debug("stored %s (%d bytes) straight to %s", name, size, "directory")

    def get_named(self, name: str) -> BytesLike | None:
        """Return an object stored by `write_named` (any tier), or ``None``."""
        for tier in range(len(self.tiers)):
            data = self._read(tier, name)
            if data is not None:
                return data
        return None

    def exists_named(self, name: str) -> bool:
        """Return whether an object stored by `write_named` exists in a tier."""
        return any(tier.exists(name) for tier in self.tiers)

    def evict_named(self, name: str) -> None:
        """Remove an object stored by `write_named` from every tier."""
        for tier in self.tiers:
            tier.remove(name)

    # ------------------------------------------------------------ expiry
    def set_deadline(
        self, arena: arenas.Arena, slot: int, gen: int, name: str, deadline: int | None
    ) -> bool:
        """Give the spilled object ``(slot, gen)`` a new deadline (``None``: none).

        Returns:
            Whether the object is spilled (else nothing was changed).
        """
        tier = spilled_tier(arena, slot, gen)
        if tier is None or tier >= len(self.tiers):
            return False
        table = _arena_ttl.deadlines_of(arena, create=deadline is not None)
        if table is not None:
            table.set(slot, gen, deadline)
        self.tiers[tier].set_deadline(name, deadline)
        return True

    def sweep_expired(self, arena: arenas.Arena | None, stem: str) -> int:
        """Remove the namespace's expired objects, in the arena and every tier.

        Returns:
            How many were removed (0 for the arena while another process sweeps).
        """
        removed = 0
        if arena is not None:
            mapped = arena

            def drop(slot: int, gen: int) -> bool:
                return self.evict(mapped, slot, gen, f"{stem}{slot}.{gen}")

            removed += _arena_ttl.sweep_arena(arena, drop)
        for tier in self.tiers:
            with contextlib.suppress(OSError):
                removed += tier.sweep()
        return removed

    def clear(self) -> None:
        """Remove every spilled object of every tier, and the directory."""
        for tier in reversed(self.tiers):
            with contextlib.suppress(OSError):
                tier.clear()


def _deadline(arena: arenas.Arena, slot: int, gen: int) -> int | None:
    """Return the deadline (``time_ns``) of ``(slot, gen)`` if it has one."""
    if not arena.words[_arena_ttl.FLAG_WORD]:
        return None
    table = _arena_ttl.deadlines_of(arena, create=False)
    return None if table is None else table.deadline(slot, gen)


def close_quietly(chain: SpillChain | None) -> None:
    """Close the connectors of ``chain``'s lower tiers."""
    if chain is None:
        return
    for tier in chain.tiers[1:]:
        assert isinstance(tier, ConnectorTier)
        with contextlib.suppress(Exception):
            tier.connector.close()
