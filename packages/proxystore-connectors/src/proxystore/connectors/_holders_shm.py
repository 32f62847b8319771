"""Holders of shared-memory objects: one small file per hold, next to the objects.

Shared memory has no server, so the processes that use a namespace keep its
holder records themselves, in a private directory of ``/dev/shm``
(``psrc-<uid>-<namespace>``, mode ``0700``). Each hold is an empty file named
``<object name>@<record>`` whose modification time is the hold's deadline
(wall-clock seconds; the processes share one machine, so one clock). A process
hold's record starts with the holder's pid, so a holder that died is seen as
dead at once (``kill(pid, 0)`` fails), not only when its lease lapses; and a
holder whose process is alive keeps its hold even when its heartbeat is late
(up to a minute past its deadline; after that its pid may have been reused).

Every change and every eviction decision happens under an exclusive ``flock`` of
the directory's lock file: a hold is never added to an evicted object and an
object is never evicted while a live record remains. The kernel drops the lock
of a process that dies, so a SIGKILLed process never leaves it taken.

Objects whose records are all dead are evicted by `SharedMemoryHolders.sweep_holds`,
which every process holding or having held objects of the namespace runs at each
heartbeat (at most one sweep per half second is done, whoever asks); if every
such process is gone, the next process to use the namespace sweeps. The arena's
own holder words keep working underneath: an evicted slot whose bytes are still
viewed is reused only once the last view is gone.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Final

from proxystore.connectors._arena import _alive
from proxystore.connectors.exceptions import ForeignFileError
from proxystore.connectors.holders import (
    CONVERTED,
    LINGER,
    TOMBSTONE_LEASE,
    TRANSFER,
    Hold,
    record_name,
)

if TYPE_CHECKING:
    from proxystore.connectors.shm import SharedMemoryConnector, SharedMemoryKey

__all__ = ["SharedMemoryHolders"]

_SEP: Final = "@"
_TOMB: Final = "x:"
_LOCK: Final = ".lock"
_SWEPT: Final = ".swept"
#: Seconds a process hold outlives its deadline while its pid is alive.
_PID_GRACE: Final = 60.0
#: Smallest time between two sweeps of one namespace (by any process).
_SWEEP_EVERY: Final = 0.2


def _zombie(pid: str) -> bool:
    """Return whether ``pid`` has exited and waits to be reaped (it holds nothing).

    A SIGKILLed child stays a zombie until its parent reaps it, which a busy
    parent may do seconds later; ``kill(pid, 0)`` still succeeds meanwhile.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat_line = f.read()
    except OSError:
        return False
    # The state follows the command name, which is in parentheses.
    state = stat_line.rpartition(b")")[2].split(maxsplit=1)[:1]
    return state == [b"Z"]


def _record_live(record: str, deadline: float, now: float) -> bool:
    if record.startswith((TRANSFER, _TOMB, CONVERTED)):
        return deadline > now
    pid, _, _ = record.partition("-")
    if not pid.isdecimal():
        return deadline > now
    # On one machine a process hold lives exactly as long as its process: a
    # dead pid releases at once, and a live one whose heartbeat is late (a
    # loaded machine) keeps its hold for up to `_PID_GRACE` more seconds; the
    # deadline then only guards against the pid being reused.
    return deadline + _PID_GRACE > now and _alive(int(pid)) and not _zombie(pid)


class SharedMemoryHolders:
    """Reference counting for a `SharedMemoryConnector` (module documentation).

    Args:
        connector: The connector whose objects are counted.
    """

    def __init__(self, connector: SharedMemoryConnector) -> None:
        self.connector = connector
        uid = os.geteuid()
        self.directory = os.path.join("/dev/shm", f"psrc-{uid}-{connector.namespace}")
        self._uid = uid
        self._fd: int | None = None
        self._tlock = threading.Lock()

    # ------------------------------------------------------------------ files
    def _lock_fd(self) -> int:
        if self._fd is not None:
            return self._fd
        with contextlib.suppress(FileExistsError):
            os.mkdir(self.directory, 0o700)
        st = os.lstat(self.directory)
        if (
            not stat.S_ISDIR(st.st_mode)
            or st.st_uid != self._uid
            or stat.S_IMODE(st.st_mode) & 0o077
        ):
            raise ForeignFileError(
                f"{self.directory!r} is not a private directory of uid {self._uid}; "
                "refusing to keep holder records in it.",
                path=self.directory,
            )
        self._fd = os.open(
            os.path.join(self.directory, _LOCK),
            os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
            0o600,
        )
        return self._fd

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._tlock:
            fd = self._lock_fd()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _path(self, name: str, record: str) -> str:
        return os.path.join(self.directory, f"{name}{_SEP}{record}")

    def _write(self, name: str, record: str, deadline: float) -> None:
        path = self._path(name, record)
        try:
            os.utime(path, (deadline, deadline))
        except FileNotFoundError:
            fd = os.open(
                path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600
            )
            os.close(fd)
            os.utime(path, (deadline, deadline))

    def _convert(
        self, name: str, token: str, now: float, lease: float, transfer_lease: float
    ) -> None:
        # A conversion: its token's trace covers other copies of the same
        # pickle for one interval (`LINGER`); the first one consumes the
        # transfer, or leaves a tombstone if the transfer has not arrived yet.
        trace = now + lease * LINGER
        try:
            seen = os.stat(
                self._path(name, CONVERTED + token), follow_symlinks=False
            ).st_mtime
        except FileNotFoundError:
            seen = 0.0
        self._write(name, CONVERTED + token, max(trace, seen))
        if not self._remove(name, TRANSFER + token) and seen <= now:
            tomb = transfer_lease or TOMBSTONE_LEASE
            self._write(name, _TOMB + token, now + tomb)

    def _remove(self, name: str, record: str) -> bool:
        try:
            os.unlink(self._path(name, record))
        except FileNotFoundError:
            return False
        return True

    def _records(self, name: str | None = None) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        prefix = None if name is None else name + _SEP
        with os.scandir(self.directory) as entries:
            for entry in entries:
                if prefix is not None and not entry.name.startswith(prefix):
                    continue
                obj, sep, record = entry.name.rpartition(_SEP)
                if not sep:
                    continue
                try:
                    deadline = entry.stat(follow_symlinks=False).st_mtime
                except FileNotFoundError:
                    continue
                out.setdefault(obj, {})[record] = deadline
        return out

    def _evict(self, name: str, records: dict[str, float]) -> None:
        from proxystore.connectors.shm import SharedMemoryKey

        self.connector.evict(SharedMemoryKey(name, 0))
        for record in records:
            self._remove(name, record)

    # ------------------------------------------------------------------ API
    def hold(self, holds: Sequence[Hold[SharedMemoryKey]]) -> list[bool]:
        """Add or renew holds; return whether each object exists.

        Raises:
            ValueError: if a hold has neither a holder nor a token, or a
                non-positive lease.
            ForeignFileError: if the records directory is not ours.
        """
        found: list[bool] = []
        with self._locked():
            now = time.time()
            for key, holder, lease, token, transfer_lease in holds:
                record = record_name(holder, lease, token)
                if not self.connector.exists(key):
                    found.append(False)
                    continue
                name = key.name
                if not holder:
                    if not self._remove(name, _TOMB + str(token)):
                        self._write(name, record, now + lease)
                else:
                    self._write(name, record, now + lease)
                    if token:
                        self._convert(name, token, now, lease, transfer_lease)
                found.append(True)
        return found

    def release(self, key: SharedMemoryKey, holder: str) -> bool:
        """Drop ``holder``'s hold; evict the object if no live hold is left.

        Returns:
            Whether the object was evicted.
        """
        with self._locked():
            self._remove(key.name, holder)
            records = self._records(key.name).get(key.name, {})
            now = time.time()
            if any(_record_live(r, d, now) for r, d in records.items()):
                return False
            existed = self.connector.exists(key)
            self._evict(key.name, records)
            return existed

    def sweep_holds(self) -> int:
        """Evict the objects whose records are all dead; return how many.

        Skipped (returns 0) when any process swept the namespace less than
        0.2 s ago.
        """
        swept = os.path.join(self.directory, _SWEPT)
        with self._locked():
            now = time.time()
            try:
                # A marker from the future (the clock was set back) never
                # holds sweeps off.
                if 0 <= now - os.stat(swept).st_mtime < _SWEEP_EVERY:
                    return 0
            except FileNotFoundError:
                pass
            self._write_marker(swept, now)
            evicted = 0
            for name, records in self._records().items():
                if not any(_record_live(r, d, now) for r, d in records.items()):
                    self._evict(name, records)
                    evicted += 1
            return evicted

    @staticmethod
    def _write_marker(path: str, now: float) -> None:
        try:
            os.utime(path, (now, now))
        except FileNotFoundError:
            try:
                fd = os.open(
                    path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600
                )
            except OSError as exc:  # pragma: no cover - racing creators
                if exc.errno != errno.EEXIST:
                    raise
            else:
                os.close(fd)
                os.utime(path, (now, now))

    def close(self) -> None:
        """Close the lock file (records stay for the other processes)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def remove_records(self) -> None:
        """Close, then remove the namespace's records directory (when clearing).

        Only sensible once no process of the namespace holds objects any more.
        """
        self.close()
        try:
            st = os.lstat(self.directory)
        except FileNotFoundError:
            return
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != self._uid:
            return  # not ours: leave it alone
        for name in os.listdir(self.directory):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.directory, name))
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(self.directory)
