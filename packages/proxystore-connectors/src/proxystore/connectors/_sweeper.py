"""Background sweeping of expired objects for connectors without a server.

A file directory or a shared-memory arena has no process of its own that could
remove objects whose time-to-live ran out. Instead every process that opens such
a namespace while it holds objects with a deadline runs one sweeper thread for
it (one per namespace per process, however many connectors share it). The
sweep itself takes a lock inside the namespace (a ``flock``), so processes never
sweep the same namespace at once, and no particular process has to survive.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from typing import Final

__all__ = ["EXPIRES", "acquire", "release", "set_file_deadline"]

#: Mode bit marking a file (an object file, a shared-memory segment) whose
#: modification time is its expiry deadline. The sticky bit means nothing on a
#: regular file, so it is free for this.
EXPIRES: Final = stat.S_ISVTX

_log = logging.getLogger(__name__)
_lock = threading.Lock()
# Namespace -> (stop event, number of connectors using it).
_running: dict[str, tuple[threading.Event, int]] = {}


def _loop(
    namespace: str, sweep: Callable[[], int], interval: float, stop: threading.Event
) -> None:
    # The first sweep waits one interval too: a short-lived process (a command
    # listing the namespace) should not race the sweeps of the others.
    while not stop.wait(interval):
        try:
            removed = sweep()
        except Exception as e:  # a vanished namespace, a full disk, ...
            _log.debug("Sweep of %s failed: %r", namespace, e)
            removed = 0
        if removed and _log.isEnabledFor(logging.DEBUG):
            _log.debug("Swept %d expired objects from %s", removed, namespace)


def acquire(namespace: str, sweep: Callable[[], int], interval: float) -> None:
    """Make sure this process sweeps ``namespace`` every ``interval`` seconds.

    Each call must be paired with one `release`. ``sweep`` must not keep a
    connector alive (pass a function of the namespace's path, not a bound method).
    """
    with _lock:
        entry = _running.get(namespace)
        if entry is not None:
            _running[namespace] = (entry[0], entry[1] + 1)
            return
        stop = threading.Event()
        _running[namespace] = (stop, 1)
    thread = threading.Thread(
        target=_loop,
        args=(namespace, sweep, interval, stop),
        name=f"proxystore-sweeper-{namespace}",
        daemon=True,
    )
    thread.start()


def release(namespace: str) -> None:
    """Drop one use of ``namespace``; its sweeper stops with the last one."""
    with _lock:
        entry = _running.get(namespace)
        if entry is None:
            return
        if entry[1] > 1:
            _running[namespace] = (entry[0], entry[1] - 1)
            return
        del _running[namespace]
    entry[0].set()


def set_file_deadline(path: str, deadline_ns: int | None) -> None:
    """Give the object file at ``path`` a deadline (``time_ns``), or remove it.

    The deadline is written before the mark: a crash between the two leaves an
    object that never expires, never one that expires early.

    Raises:
        FileNotFoundError: if the file is gone.
        OSError: if its mode or times cannot be changed.
    """
    now = time.time_ns()
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if deadline_ns is None:
        os.chmod(path, mode & ~EXPIRES)
        os.utime(path, ns=(now, now))
    else:
        os.utime(path, ns=(now, deadline_ns))
        if not mode & EXPIRES:
            os.chmod(path, mode | EXPIRES)
