"""The DIM server: in-memory storage, its process entry point, and process control.

Each peer runs one server process per (address, port). Connectors talk to it through
a transport (`proxystore.connectors.dim.transport`); the storage logic here is
the same for every transport.

Spawned servers are tied to the process that spawned them: they are stopped when it
exits normally (``atexit``) and they stop themselves when it dies abruptly (they
watch their parent), so a crashed client never leaves an orphan server behind.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import json
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import cast

from proxystore.connectors.dim.exceptions import (
    ServerTimeoutError,
    TransportUnavailableError,
)
from proxystore.connectors.dim.models import DIMType, Op, Request, Response, Status
from proxystore.connectors.dim.transport import ServeFunction, no_op
from proxystore.connectors.exceptions import ConnectorConnectionError
from proxystore.connectors.holders import HolderTable
from proxystore.connectors.protocols import BytesLike

__all__ = [
    "DIMStorage",
    "main",
    "serve_forever",
    "spawn_server_process",
    "split_ttl",
    "stop_server_process",
]

_TRANSPORTS: tuple[DIMType, ...] = ("margo", "ucx", "zmq")
# Directory holding the `proxystore` namespace this module was loaded from; the
# server process gets it on its path so it imports the same code as its parent.
_SRC_ROOT = Path(__file__).resolve().parents[3]
# pid -> (process, kill timeout, pid of the process that spawned it)
_spawned: dict[int, tuple[subprocess.Popen[bytes], float, int]] = {}
_spawned_lock = threading.Lock()
_READY = "ready"
# Lines of a failed server's startup output quoted in the spawner's error.
_STARTUP_TAIL = 20
# The real stderr of a server spawned with --notify-ready, while its startup
# output is diverted to the spawner (one fd, or none).
_saved_stderr: list[int] = []


class DIMStorage:
    """A dict of objects answering DIM requests (the server's state).

    Objects held through reference counting (see
    `proxystore.connectors.holders`) are evicted by `sweep` once their last
    live hold lapses, and so are objects stored with a time-to-live once it
    ran out (`Op.PUT_TTL`, `Op.EXPIRE`); the server loop calls it between
    requests and on every idle poll, and reads never return an expired object.
    """

    def __init__(self) -> None:
        self.data: dict[str, Sequence[BytesLike]] = {}
        self.holders = HolderTable()
        # Deadlines (time.time()) of the objects that have one.
        self.deadlines: dict[str, float] = {}

    def put(
        self, obj_id: str, payload: Sequence[BytesLike], ttl: float | None = None
    ) -> None:
        """Store the buffers of one object under ``obj_id`` (overwriting)."""
        self.data[obj_id] = payload
        if ttl is not None:
            self.deadlines[obj_id] = time.time() + ttl
        elif self.deadlines:
            self.deadlines.pop(obj_id, None)

    def _expired(self, obj_id: str) -> bool:
        deadline = self.deadlines.get(obj_id)
        if deadline is None or deadline > time.time():
            return False
        self.evict(obj_id)
        return True

    def get(self, obj_id: str) -> Sequence[BytesLike] | None:
        """Return the buffers stored under ``obj_id``, or ``None``."""
        if self.deadlines and self._expired(obj_id):
            return None
        return self.data.get(obj_id)

    def exists(self, obj_id: str) -> bool:
        """Return whether an object is stored under ``obj_id``."""
        if self.deadlines and self._expired(obj_id):
            return False
        return obj_id in self.data

    def evict(self, obj_id: str) -> None:
        """Forget the object under ``obj_id``; a missing id is not an error."""
        self.data.pop(obj_id, None)
        self.holders.forget(obj_id)
        self.deadlines.pop(obj_id, None)

    def expire(self, obj_id: str, ttl: float | None) -> bool:
        """Give the object a new time-to-live (``None``: none); False if missing."""
        if not self.exists(obj_id):
            return False
        if ttl is None:
            self.deadlines.pop(obj_id, None)
        else:
            self.deadlines[obj_id] = time.time() + ttl
        return True

    def ttl(self, obj_id: str) -> float | None:
        """Return the seconds before the object expires (``None``: never)."""
        deadline = self.deadlines.get(obj_id)
        return None if deadline is None else max(0.0, deadline - time.time())

    def sweep(self) -> int:
        """Evict the objects whose holds have all lapsed or whose TTL ran out."""
        gone = self.holders.expired()
        for obj_id in gone:
            self.data.pop(obj_id, None)
        if self.deadlines:
            now = time.time()
            due = [k for k, deadline in self.deadlines.items() if deadline <= now]
            for obj_id in due:
                self.evict(obj_id)
            return len(gone) + len(due)
        return len(gone)

    def _hold(self, payload: Sequence[BytesLike]) -> bytes:
        holds = json.loads(b"".join(bytes(part) for part in payload))
        self.sweep()
        found = []
        for obj_id, holder, lease, token, *rest in holds:
            ok = obj_id in self.data
            if ok:
                transfer_lease = float(rest[0]) if rest else 0.0
                self.holders.hold(
                    str(obj_id), str(holder), float(lease), token, transfer_lease
                )
            found.append(ok)
        return json.dumps(found).encode()

    def _release(self, obj_id: str, payload: Sequence[BytesLike]) -> bytes:
        holder = b"".join(bytes(part) for part in payload).decode()
        if not self.holders.release(obj_id, holder):
            return b"0"
        return b"0" if self.data.pop(obj_id, None) is None else b"1"

    def handle(self, request: Request) -> Response:
        """Perform ``request`` and describe the outcome (never raises)."""
        op, obj_id = request.op, request.obj_id
        rid = request.request_id
        try:
            if op is Op.GET:
                payload = self.get(obj_id)
                if payload is None:
                    return Response(op, Status.MISSING, request_id=rid)
                return Response(op, Status.OK, payload, rid)
            if op is Op.PUT:
                self.put(obj_id, request.payload)
            elif op is Op.EXISTS:
                found = self.exists(obj_id)
                return Response(
                    op, Status.OK if found else Status.MISSING, request_id=rid
                )
            elif op is Op.EVICT:
                self.evict(obj_id)
            elif op is Op.HOLD:
                return Response(op, Status.OK, (self._hold(request.payload),), rid)
            elif op is Op.RELEASE:
                answer = self._release(obj_id, request.payload)
                return Response(op, Status.OK, (answer,), rid)
            elif op is Op.PUT_TTL:
                ttl, parts = split_ttl(request.payload)
                self.put(obj_id, parts, ttl)
            elif op is Op.EXPIRE:
                text = b"".join(bytes(part) for part in request.payload)
                found = self.expire(obj_id, float(text) if text else None)
                return Response(
                    op, Status.OK if found else Status.MISSING, request_id=rid
                )
            elif op is Op.TTL:
                if not self.exists(obj_id):
                    return Response(op, Status.MISSING, request_id=rid)
                left = self.ttl(obj_id)
                text = b"" if left is None else repr(left).encode()
                return Response(op, Status.OK, (text,), rid)
            return Response(op, Status.OK, request_id=rid)
        except Exception as exc:  # a failure is reported to the client, not fatal
            return Response(op, Status.ERROR, request_id=rid, text=repr(exc))


_TTL_HEAD = struct.Struct("<d")


def split_ttl(payload: Sequence[BytesLike]) -> tuple[float, list[BytesLike]]:
    """Split a `Op.PUT_TTL` payload into its time-to-live and the object's parts.

    A transport may deliver the parts joined: the 8-byte head is then cut off
    the first part without a copy.

    Raises:
        ValueError: if the payload is shorter than its head, or the TTL is not
            a positive finite number.
    """
    parts = list(payload)
    if not parts or len(parts[0]) < _TTL_HEAD.size:
        raise ValueError("PUT_TTL payload has no time-to-live head")
    first = memoryview(parts[0]).cast("B")
    (ttl,) = _TTL_HEAD.unpack_from(first)
    if not 0 < ttl < float("inf"):
        raise ValueError(f"PUT_TTL time-to-live must be positive, got {ttl!r}")
    rest = first[_TTL_HEAD.size :]
    return ttl, ([rest] if len(rest) else []) + parts[1:] or [b""]


def serve_forever(
    dim_type: DIMType,
    address: str,
    port: int,
    *,
    options: Mapping[str, str] | None = None,
    parent_pid: int | None = None,
    notify_ready: bool = False,
) -> None:
    """Run a DIM server in this process until SIGINT/SIGTERM (or parent death).

    Args:
        dim_type: Transport module to serve with.
        address: Address to bind.
        port: Port to bind.
        options: Transport-specific settings (e.g. ``chunk_length`` for zmq).
        parent_pid: Stop when this process is no longer our parent (it died).
        notify_ready: Print ``ready`` on stdout once the address is bound, then
            detach stdout (the spawning process reads that line).

    Raises:
        TransportUnavailableError: If the transport's library is not installed.
    """
    serve = _load_serve(dim_type)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)

    storage = DIMStorage()

    def should_stop() -> bool:
        # Called between requests and on every idle poll: the sweep of lapsed
        # holds rides on it (cheap until the earliest deadline passes).
        storage.sweep()
        return stop.is_set() or (parent_pid is not None and os.getppid() != parent_pid)

    serve(
        address,
        port,
        storage.handle,
        options=dict(options or {}),
        should_stop=should_stop,
        on_ready=_announce_ready if notify_ready else no_op,
    )


def _divert_stderr() -> None:
    """Send stderr to stdout (the spawner's pipe) until `_announce_ready`.

    The spawner then reads why a server failed to start: a Python traceback,
    or what a C library (Mercury, libfabric, UCX) printed on fd 2.
    """
    sys.stderr.flush()
    _saved_stderr.append(os.dup(2))
    os.dup2(1, 2)


def _restore_stderr() -> None:
    if _saved_stderr:
        sys.stderr.flush()
        saved = _saved_stderr.pop()
        os.dup2(saved, 2)
        os.close(saved)


def _announce_ready() -> None:
    _restore_stderr()
    sys.stdout.write(f"{_READY} {os.getpid()}\n")
    sys.stdout.flush()
    # The spawner closes its end after this line: point stdout at /dev/null so a
    # later print cannot fail with a broken pipe.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _load_serve(dim_type: str) -> ServeFunction:
    module = importlib.import_module(f"proxystore.connectors.dim.{dim_type}")
    return cast(ServeFunction, module.serve)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m proxystore.connectors.dim TRANSPORT ADDR PORT``."""
    parser = argparse.ArgumentParser(
        prog="python -m proxystore.connectors.dim",
        description="Run a distributed in-memory (DIM) server.",
    )
    parser.add_argument("transport", choices=_TRANSPORTS)
    parser.add_argument("address")
    parser.add_argument("port", type=int)
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="transport-specific setting (repeatable)",
    )
    parser.add_argument("--parent-pid", type=int, default=None)
    parser.add_argument(
        "--notify-ready",
        action="store_true",
        help="print 'ready PID' on stdout once the address is bound",
    )
    args = parser.parse_args(argv)
    options = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--option expects KEY=VALUE, got {item!r}")
        options[key] = value
    if args.notify_ready:
        _divert_stderr()
    try:
        serve_forever(
            args.transport,
            args.address,
            args.port,
            options=options,
            parent_pid=args.parent_pid,
            notify_ready=args.notify_ready,
        )
    except TransportUnavailableError as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 3
    return 0


def spawn_server_process(
    dim_type: DIMType,
    address: str,
    port: int,
    *,
    wait: Callable[[str, int, float], None],
    options: Mapping[str, str] | None = None,
    spawn_timeout: float = 5.0,
    kill_timeout: float = 1.0,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a DIM server process and return once it serves.

    The process reports on stdout when it has bound the address, so a process
    that lost a race for the port is told apart from the one that won.

    Args:
        dim_type: Transport the server uses.
        address: Address the server binds.
        port: Port the server binds.
        wait: The transport's ``wait_for_server(address, port, timeout)``, used to
            confirm the ready server answers.
        options: Transport-specific settings passed to the server.
        spawn_timeout: Seconds to wait for the server to be ready and answer.
        kill_timeout: Seconds `stop_server_process` waits after SIGTERM
            before it sends SIGKILL (used at interpreter exit).
        env: Extra environment variables of the server process (how a secret
            reaches it: never on its command line, which others can read).

    Raises:
        ConnectorConnectionError: If the server process exits before binding
            (e.g. the port is taken or the transport library is missing); the
            message quotes the end of what it printed before exiting.
        ServerTimeoutError: If the server is not ready within ``spawn_timeout``;
            the process is stopped first.
    """
    argv = [
        sys.executable,
        "-m",
        "proxystore.connectors.dim",
        dim_type,
        address,
        str(port),
        "--parent-pid",
        str(os.getpid()),
        "--notify-ready",
    ]
    for key, value in (options or {}).items():
        argv += ["--option", f"{key}={value}"]
    env = {**os.environ, **(env or {})}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(_SRC_ROOT), env.get("PYTHONPATH")) if p
    )
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env
    )
    with _spawned_lock:
        _spawned[process.pid] = (process, kill_timeout, os.getpid())
    where = f"{address}:{port}"
    deadline = time.monotonic() + spawn_timeout
    try:
        assert process.stdout is not None
        with process.stdout as ready_pipe:
            ready, said = _read_startup(
                ready_pipe.fileno(), f"{_READY} {process.pid}", deadline
            )
        if ready is None:
            raise ServerTimeoutError(
                f"DIM {dim_type} server spawned for {where} was not ready within "
                f"{spawn_timeout:.3g} s{_quote(said)}",
                address=where,
            )
        if not ready:
            code = process.wait()
            raise ConnectorConnectionError(
                f"DIM {dim_type} server for {where} exited with code {code} before "
                f"serving{_quote(said) or ' (it printed nothing)'}",
                address=where,
            )
        if said:  # startup warnings: shown as when the server wrote them itself
            sys.stderr.write(said + "\n")
        try:
            wait(address, port, max(deadline - time.monotonic(), 0.1))
        except ServerTimeoutError as exc:
            raise ServerTimeoutError(
                f"DIM {dim_type} server spawned for {where} bound its address but "
                f"did not answer within {spawn_timeout:.3g} s",
                address=where,
            ) from exc
        return process
    except BaseException:
        stop_server_process(process, kill_timeout)
        raise


def _read_startup(fd: int, ready: str, deadline: float) -> tuple[bool | None, str]:
    """Read a server's startup output until its ``ready`` line.

    Returns:
        Whether the line came (``False`` at end of output, ``None`` at the
        deadline) and what the server printed before it.
    """
    received = bytearray()
    seen = 0  # bytes already searched for the ready line
    while True:
        end = received.find(b"\n", seen)
        while end >= 0:
            line = received[seen:end]
            if line == ready.encode():
                return True, received[:seen].decode(errors="replace").strip()
            seen = end + 1
            end = received.find(b"\n", seen)
        remaining = deadline - time.monotonic()
        readable, _, _ = select.select([fd], [], [], max(remaining, 0))
        data = os.read(fd, 65536) if readable else None
        if not data:
            return (None if data is None else False), received.decode(
                errors="replace"
            ).strip()
        received += data


def _quote(said: str) -> str:
    """The end of a server's startup output, for an error message.

    A Python traceback is cut to its exception lines, so what a C library
    printed before it stays in view.
    """
    lines = said.splitlines()
    kept = [
        line
        for line in lines
        if line.strip()
        and not line.startswith("  ")
        and line != "Traceback (most recent call last):"
    ]
    tail = "\n".join((kept or lines)[-_STARTUP_TAIL:])
    return f"; it printed:\n{tail}" if tail else ""


def stop_server_process(process: subprocess.Popen[bytes], timeout: float = 1.0) -> None:
    """Stop a spawned server: SIGTERM, then SIGKILL after ``timeout`` seconds.

    Safe to call more than once; always reaps the process.
    """
    with _spawned_lock:
        _spawned.pop(process.pid, None)
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


@atexit.register
def _stop_all_spawned() -> None:
    with _spawned_lock:
        spawned = list(_spawned.values())
    for process, kill_timeout, spawner in spawned:
        if spawner == os.getpid():  # a forked child leaves its parent's servers be
            stop_server_process(process, kill_timeout)
