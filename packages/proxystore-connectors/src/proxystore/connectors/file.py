"""Connector that keeps each object in its own file of a shared directory.

Any process that can see the directory (a local disk, or a parallel file system shared
by the nodes of a cluster) can read the objects, so `FileConnector` needs no
server.

Writes are atomic: the bytes go to a hidden temporary file in the same directory,
which is then renamed onto the object's name with `os.replace`. A reader
therefore only ever sees a complete object or none, even when a writer is killed
mid-write; a killed writer leaves at most a hidden ``.*.tmp`` file behind, which
`FileConnector.close` removes along with the directory when clearing. The rename
alone protects against a crashed *process* (the kernel still holds the written pages);
``fsync=True`` also flushes file and directory to the device, so objects survive a
crash of the *machine*, at roughly twice the cost of a large put.

Because an object's file is never modified in place, large objects are returned as a
private, writable memory map of the file instead of being read into memory: no copy is
made, the deserializer can build arrays directly on it, and writes to the returned
buffer never reach the stored object.

Objects are private by default: each file is created with mode ``0600`` and the
store directory, when the connector creates it, with ``0700``, so other users of the
machine (or of a shared file system) can neither read nor replace them. A umask can
only narrow these modes, never widen them. ``permissions`` opens them on purpose,
e.g. ``0o640`` for a group that shares the directory: object files then get exactly
that mode whatever the umask, and a directory the connector creates gets the
matching search bits (``0o750``). A directory that already exists is left as it is.

Expiry (``put(..., ttl=)``) is recorded in the object's own file, so it needs no
second file and survives every crash: the file carries the sticky bit (meaningless
on regular files, so free to mark "has a deadline") and its modification time *is*
the deadline, both set before the file is renamed into place. A read checks them
on the ``fstat`` it makes anyway, so an expired object is never returned. Expired
files are removed by a sweep (`FileConnector.sweep`) that any process of the
directory may run, under an exclusive ``flock`` on ``.sweep.lock`` in the
directory; a connector sweeps in the background every ``sweep_interval`` seconds
while it has stored objects with a deadline, or when it opens a directory where
some process did (a ``.ttl`` marker file is left there).
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import shutil
import stat
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, Final, NamedTuple, Self

from proxystore.connectors import _sweeper
from proxystore.connectors.exceptions import ConnectorConnectionError
from proxystore.connectors.protocols import BytesLike, KeyInfo, check_ttl
from proxystore.utils._closeable import Closeable
from proxystore.utils._ids import random_hex, uuid4_hex

__all__ = ["FileConnector", "FileKey", "sweep_directory"]

_TMP_SUFFIX = ".tmp"
#: Default permissions of object files: the owner's only.
_PRIVATE: Final = 0o600
# From this size on, get() maps the file instead of reading it: mapping costs ~10 us
# whatever the size, while read() copies at a few GB/s (measured: read is cheaper below
# ~1 MB when the caller copies the data anyway, mapping wins above).
_MMAP_MIN_BYTES = 2 * 1024 * 1024
# Polling bounds for FileConnector.wait: start fast for objects that are about to land,
# back off so a long wait does not spin on stat().
_WAIT_FIRST_SLEEP_S = 0.001
_WAIT_MAX_SLEEP_S = 0.05
_EXPIRES: Final = _sweeper.EXPIRES
#: Present in a directory once any process stored an object with a deadline.
_TTL_MARKER: Final = ".ttl"
_SWEEP_LOCK: Final = ".sweep.lock"
_SWEEP_INTERVAL_S: Final = 5.0


def _expired(st: os.stat_result, now_ns: int) -> bool:
    """Return whether a stored file's deadline (if it has one) has passed."""
    return bool(st.st_mode & _EXPIRES) and st.st_mtime_ns <= now_ns


def sweep_directory(store_dir: str) -> int:
    """Remove the expired objects of a store directory; return how many.

    Returns at once (0) when another process is sweeping the directory.

    Raises:
        OSError: if the directory cannot be read or the lock file made.
    """
    fd = os.open(
        os.path.join(store_dir, _SWEEP_LOCK),
        os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
        0o600,
    )
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0
        removed = 0
        now = time.time_ns()
        with os.scandir(store_dir) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                try:
                    if _expired(entry.stat(follow_symlinks=False), now):
                        os.unlink(entry.path)
                        removed += 1
                except FileNotFoundError:
                    pass
        return removed
    finally:
        os.close(fd)  # drops the flock


class FileKey(NamedTuple):
    """Key of an object in a `FileConnector`."""

    filename: str
    """Name of the object's file inside the store directory (a UUID4 hex string)."""


@contextmanager
def _os_errors(action: str, path: str) -> Iterator[None]:
    """Translate file-system errors into connector errors naming ``path``."""
    try:
        yield
    except FileNotFoundError as exc:
        raise ConnectorConnectionError(
            f"Cannot {action} {path!r}: the store directory "
            f"{os.path.dirname(path)!r} does not exist.",
            address=path,
        ) from exc
    except PermissionError as exc:
        raise ConnectorConnectionError(
            f"Cannot {action} {path!r}: permission denied.", address=path
        ) from exc
    except OSError as exc:
        reason = exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))
        raise ConnectorConnectionError(
            f"Cannot {action} {path!r}: {reason}.", address=path
        ) from exc


def _cannot_create(path: str, exc: OSError) -> str:
    """Explain why the store directory ``path`` could not be created.

    The error names the deepest path the system call tried, so "no such file"
    reads as if a parent were missing even when the parent exists but refuses new
    entries (``/proc``, a read-only mount, a directory of another user). The
    deepest existing ancestor is looked up instead, and the message says which
    name could not be made in it and why.
    """
    reason = exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))
    prefix = f"Cannot create the store directory {path!r}"
    existing = path
    while not os.path.lexists(existing):
        parent = os.path.dirname(existing)
        if parent == existing:
            break
        existing = parent
    if not os.path.isdir(existing):
        return f"{prefix}: {existing!r} exists and is not a directory."
    if existing == path:
        return f"{prefix}: {reason}."
    child = os.path.relpath(path, existing).split(os.sep)[0]
    if not os.access(existing, os.W_OK | os.X_OK):
        reason += f"; {existing!r} is not writable by this user"
    return (
        f"{prefix}: {existing!r} exists, but {child!r} cannot be created in it "
        f"({reason})."
    )


class FileConnector(Closeable):
    """Connector storing each object as a file in ``store_dir``.

    Args:
        store_dir: Directory for the objects; made absolute and created (with its
            parents) when missing.
        clear: Remove ``store_dir`` and everything in it on `close`.
        buffering: Buffering policy passed to `open` for writes (``-1`` lets
            Python choose; large objects bypass the buffer either way).
        fsync: Flush each object and the directory entry to the storage device
            before a put returns (durable across machine crashes; slower).
        sweep_interval: Seconds between the background sweeps of expired
            objects (run while this process has objects with a deadline in
            the directory; see the module notes).
        permissions: Mode of each object file (default ``0o600``: the owner's
            only). Other bits share the objects on purpose: ``0o640`` lets the
            file's group read them, ``0o644`` every user. A store directory the
            connector creates gets ``0o700`` plus a search bit for each class
            that may read. Write bits for group or others let them replace
            objects in the directory, so only grant them with signed payloads.

    Raises:
        ValueError: if ``permissions`` is not a mode within ``0o777`` that lets
            the owner read and write.
        ConnectorConnectionError: if ``store_dir`` cannot be created (e.g. a parent
            is not writable or is a file); the error names the path.
    """

    def __init__(
        self,
        store_dir: str,
        *,
        clear: bool = True,
        buffering: int = -1,
        fsync: bool = False,
        permissions: int = _PRIVATE,
        sweep_interval: float = _SWEEP_INTERVAL_S,
    ) -> None:
        if (
            type(permissions) is not int
            or permissions & ~0o777
            or permissions & _PRIVATE != _PRIVATE
        ):
            raise ValueError(
                f"Invalid permissions {permissions!r}: give a mode within 0o777 "
                "that includes 0o600 (the owner reads and writes), e.g. 0o600 "
                "(private, the default), 0o640 (group may read) or 0o644."
            )
        self.store_dir = os.path.abspath(store_dir)
        self.clear = clear
        self.buffering = buffering
        self.fsync = fsync
        self.permissions = permissions
        self.sweep_interval = sweep_interval
        self._sweeping: weakref.finalize[Any, Any] | None = None
        # Set explicitly on each object when it grants more than the default,
        # so a umask cannot take away what was asked for.
        self._chmod = permissions != _PRIVATE
        try:
            self._make_directory()
        except OSError as exc:
            raise ConnectorConnectionError(
                _cannot_create(self.store_dir, exc), address=self.store_dir
            ) from exc
        if os.path.exists(os.path.join(self.store_dir, _TTL_MARKER)):
            self._start_sweeping()

    def _start_sweeping(self) -> None:
        """Sweep the directory in the background until this connector goes."""
        if self._sweeping is not None:
            return
        store_dir = self.store_dir
        _sweeper.acquire(
            store_dir, lambda: sweep_directory(store_dir), self.sweep_interval
        )
        self._sweeping = weakref.finalize(self, _sweeper.release, store_dir)

    def _mark_expiring(self) -> None:
        if self._sweeping is None:
            marker = os.path.join(self.store_dir, _TTL_MARKER)
            with suppress(FileExistsError):
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            self._start_sweeping()

    def _make_directory(self) -> None:
        """Create the store directory (parents as ``mkdir -p``) with our mode."""
        # Each class that may read objects may also search the directory.
        mode = 0o700 | (self.permissions & 0o077) | (self.permissions & 0o044) >> 2
        parent = os.path.dirname(self.store_dir)
        os.makedirs(parent, exist_ok=True)
        try:
            os.mkdir(self.store_dir, mode)
        except FileExistsError:
            if not os.path.isdir(self.store_dir):
                raise
            return  # not ours to change
        os.chmod(self.store_dir, mode)  # exactly: the umask may have narrowed it

    def __repr__(self) -> str:
        return f"{type(self).__name__}(directory={self.store_dir})"

    def _path(self, key: FileKey) -> str:
        name = key.filename
        # Keys may arrive from another process inside a pickled proxy: refuse names
        # that would escape the directory or collide with our hidden temporary files.
        if not name or name.startswith(".") or os.sep in name or "\0" in name:
            raise ValueError(f"Invalid file name in key {key!r}.")
        return os.path.join(self.store_dir, name)

    def close(self, clear: bool | None = None) -> None:
        """Close the connector, removing the store directory when clearing.

        Args:
            clear: Remove ``store_dir`` with every object and leftover temporary file
                in it; ``None`` uses the ``clear`` given to the constructor. Closing
                twice, or after the directory is gone, is fine.
        """
        if self._sweeping is not None:
            self._sweeping()
            self._sweeping = None
        if self.clear if clear is None else clear:
            shutil.rmtree(self.store_dir, ignore_errors=True)

    def config(self) -> dict[str, Any]:
        """Return the options that `from_config` takes."""
        return {
            "store_dir": self.store_dir,
            "clear": self.clear,
            "buffering": self.buffering,
            "fsync": self.fsync,
            "permissions": self.permissions,
            "sweep_interval": self.sweep_interval,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        """Create a connector from the output of `config`.

        Raises:
            TypeError: if ``config`` has an unknown or missing option.
            ValueError: if ``permissions`` is invalid.
            ConnectorConnectionError: if the store directory cannot be created.
        """
        return cls(**config)

    def evict(self, key: FileKey) -> None:
        """Remove the object at ``key``; a missing key is ignored.

        Raises:
            ConnectorConnectionError: if the file exists but cannot be removed.
        """
        path = self._path(key)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError:
            with _os_errors("remove", path):
                raise

    def exists(self, key: FileKey) -> bool:
        """Return whether an (unexpired) object is stored at ``key``."""
        path = self._path(key)
        try:
            st = os.stat(path)
        except OSError:
            return False
        return not (st.st_mode & _EXPIRES and _expired(st, time.time_ns()))

    def get(self, key: FileKey) -> bytes | memoryview | None:
        """Return the object at ``key``, or ``None`` when missing.

        Objects of 2 MiB or more come back as a writable ``memoryview`` of a private
        (copy-on-write) memory map of the file; smaller ones as ``bytes``. The map
        stays valid after the object is evicted or replaced.

        Raises:
            ConnectorConnectionError: if the file exists but cannot be read.
        """
        path = self._path(key)
        try:
            # Unbuffered FileIO: read() sizes its buffer from fstat() and reads
            # straight into the returned bytes (one copy, no zero-filling).
            with open(path, "rb", buffering=0) as f:
                st = os.fstat(f.fileno())
                if st.st_mode & _EXPIRES and _expired(st, time.time_ns()):
                    return None  # expired: the next sweep removes it
                if st.st_size >= _MMAP_MIN_BYTES:
                    with suppress(OSError, ValueError):
                        # Some file systems cannot map files: then read instead.
                        return memoryview(
                            mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
                        )
                return f.read()
        except FileNotFoundError:
            return None
        except OSError:
            with _os_errors("read", path):
                raise

    def get_batch(self, keys: Sequence[FileKey]) -> list[BytesLike | None]:
        """Return the object at each key (``None`` where missing), in order."""
        return [self.get(key) for key in keys]

    def new_key(self, obj: BytesLike | None = None) -> FileKey:
        """Return a fresh key for a later `set` (like the reference, ignores `obj`)."""
        return FileKey(uuid4_hex())

    def put(self, obj: BytesLike, *, ttl: float | None = None) -> FileKey:
        """Store ``obj`` in a new file and return its key.

        Args:
            obj: Bytes to store.
            ttl: Seconds after which the object expires (see the module notes);
                ``None``: never.

        Raises:
            ValueError: if ``ttl`` is not a positive, finite number.
            ConnectorConnectionError: if the file cannot be written (missing store
                directory, permission denied, disk full, ...).
        """
        key = FileKey(uuid4_hex())
        self.set(key, obj, ttl=ttl)
        return key

    def put_batch(
        self, objs: Sequence[BytesLike], *, ttl: float | None = None
    ) -> list[FileKey]:
        """Store each object in a new file; return the keys in order."""
        return [self.put(obj, ttl=ttl) for obj in objs]

    def set(self, key: FileKey, obj: BytesLike, *, ttl: float | None = None) -> None:
        """Atomically store ``obj`` at ``key``, replacing any object already there.

        Args:
            key: Key to store at.
            obj: Bytes to store.
            ttl: Seconds after which the object expires; ``None``: never.

        Raises:
            ValueError: if ``ttl`` is not a positive, finite number.
            ConnectorConnectionError: if the file cannot be written.
        """
        deadline = None
        if ttl is not None:
            deadline = time.time_ns() + round(check_ttl(ttl) * 1e9)
            self._mark_expiring()
        path = self._path(key)
        # Unique per writer, so concurrent set() calls on one key never share a file.
        tmp = os.path.join(
            self.store_dir, f".{key.filename}.{random_hex(12)}{_TMP_SUFFIX}"
        )
        with _os_errors("write", path):
            try:
                with (
                    open(tmp, "xb", buffering=self.buffering, opener=self._open) as f,
                    memoryview(obj) as raw,
                    raw.cast("B") as view,
                ):
                    written = 0
                    # Unbuffered (buffering=0) writes may be short: loop until done.
                    while written < len(view):
                        written += f.write(view[written:])
                    if deadline is not None:
                        # After the last write (which sets the mtime), before
                        # the rename: the object never appears without it.
                        f.flush()
                        os.fchmod(f.fileno(), self.permissions | _EXPIRES)
                        os.utime(f.fileno(), ns=(time.time_ns(), deadline))
                    if self.fsync:
                        f.flush()
                        os.fsync(f.fileno())
                os.replace(tmp, path)
                if self.fsync:
                    self._sync_directory()
            except BaseException:
                with suppress(OSError):
                    os.unlink(tmp)
                raise

    def expire(self, key: FileKey, ttl: float | None) -> bool:
        """Set the remaining time-to-live of the object at ``key``.

        Args:
            key: Key of the object.
            ttl: Seconds from now; ``None`` removes the deadline.

        Returns:
            Whether an (unexpired) object exists at ``key``.

        Raises:
            ValueError: if ``ttl`` is not a positive, finite number.
            ConnectorConnectionError: if the file cannot be changed.
        """
        checked = check_ttl(ttl)
        path = self._path(key)
        now = time.time_ns()
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return False
        if _expired(st, now):
            return False
        if checked is not None:
            self._mark_expiring()
        with _os_errors("change", path):
            try:
                _sweeper.set_file_deadline(
                    path, None if checked is None else now + round(checked * 1e9)
                )
            except FileNotFoundError:
                return False
        return True

    def ttl(self, key: FileKey) -> float | None:
        """Return the seconds left before the object at ``key`` expires.

        Returns:
            ``None`` when it has no deadline, has expired or does not exist.
        """
        try:
            st = os.stat(self._path(key))
        except FileNotFoundError:
            return None
        now = time.time_ns()
        if not st.st_mode & _EXPIRES or _expired(st, now):
            return None
        return (st.st_mtime_ns - now) / 1e9

    def scan(self) -> Iterator[KeyInfo]:
        """List the (unexpired) objects of the directory: size, age, time-to-live.

        The age of an object with a deadline counts from its last deadline change
        (its put, or its last `expire`); holders are not recorded (``None``).
        """
        now = time.time_ns()
        with os.scandir(self.store_dir) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if not stat.S_ISREG(st.st_mode) or _expired(st, now):
                    continue
                if st.st_mode & _EXPIRES:
                    age, left = now - st.st_ctime_ns, (st.st_mtime_ns - now) / 1e9
                else:
                    age, left = now - st.st_mtime_ns, None
                yield KeyInfo(FileKey(entry.name), st.st_size, max(age, 0) / 1e9, left)

    def sweep(self) -> int:
        """Remove every expired object of the directory now; return how many.

        Any process of the directory may sweep; one that finds another sweeping
        returns 0 at once.

        Raises:
            ConnectorConnectionError: if the directory cannot be read.
        """
        with _os_errors("sweep", self.store_dir):
            return sweep_directory(self.store_dir)

    def _open(self, path: str, flags: int) -> int:
        """Create a new file (``open``'s flags: exclusive) with our permissions."""
        fd = os.open(path, flags | os.O_NOFOLLOW, self.permissions)
        if self._chmod:
            try:
                os.fchmod(fd, self.permissions)
            except BaseException:
                os.close(fd)
                raise
        return fd

    def _sync_directory(self) -> None:
        # Makes the rename itself durable (POSIX needs the directory fsync-ed too).
        fd = os.open(self.store_dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def wait(self, key: FileKey, timeout: float | None = None) -> bool:
        """Block until an object exists at ``key`` or ``timeout`` seconds pass.

        The directory is polled with short, growing sleeps (files give no
        notification that works across hosts).

        Args:
            key: Key to wait for (typically from `new_key`).
            timeout: Seconds to wait at most; ``None`` waits forever.

        Returns:
            Whether an object exists at ``key`` when the call returns.
        """
        path = self._path(key)
        deadline = None if timeout is None else time.monotonic() + timeout
        sleep = _WAIT_FIRST_SLEEP_S
        while not os.path.exists(path):
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                sleep = min(sleep, remaining)
            time.sleep(sleep)
            sleep = min(sleep * 2, _WAIT_MAX_SLEEP_S)
        return True
