"""Redis-protocol servers: standalone Redis or Valkey, and a 3-master Redis Cluster.

The cluster is formed with plain commands (``CLUSTER ADDSLOTSRANGE`` then
``CLUSTER MEET``) rather than ``redis-cli --cluster create``, so it needs nothing but
the server binary and works the same in a container or as processes.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from .images import REDIS, VALKEY, Program
from .mode import BackendUnavailableError, select_mode
from .servers import Server, ServerAddress, start_server

__all__ = [
    "CLUSTER_BUS_OFFSET",
    "ping",
    "redis_command",
    "running_cluster",
    "running_redis",
    "start_redis",
    "valkey_program",
]

CLUSTER_BUS_OFFSET = 10_000
_SLOTS = 16_384


def valkey_program() -> Program:
    """The Valkey server program (stands in for KeyDB: same protocol)."""
    return VALKEY


def redis_command(address: ServerAddress, *args: str, timeout: float = 2.0) -> bytes:
    """Send one command in RESP; return its reply line (``+OK``) or bulk payload.

    Used for readiness and cluster set-up, so the harness needs no client library.

    Raises:
        OSError: When the server cannot be reached or closes the connection.
    """
    payload = b"*%d\r\n" % len(args)
    for arg in args:
        data = arg.encode()
        payload += b"$%d\r\n%s\r\n" % (len(data), data)
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(payload)
        buffer = b""
        while b"\r\n" not in buffer:
            buffer += _recv(sock)
        header, _, rest = buffer.partition(b"\r\n")
        if not header.startswith(b"$"):
            return header
        size = int(header[1:])
        while len(rest) < size + 2:
            rest += _recv(sock)
        return rest[: max(size, 0)]


def _recv(sock: socket.socket) -> bytes:
    chunk = sock.recv(65536)
    if not chunk:
        raise ConnectionResetError("server closed the connection")
    return chunk


def ping(address: ServerAddress) -> bool:
    """Return whether a Redis-protocol server answers PING at ``address``."""
    try:
        return redis_command(address, "PING", timeout=0.5).startswith(b"+PONG")
    except OSError:
        return False


def _base_args(port: int, workdir: Path) -> list[str]:
    data_dir = str(workdir) if select_mode().kind == "process" else "/tmp"
    return [
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        data_dir,
    ]


def start_redis(program: Program = REDIS, *, workdir: Path | None = None) -> Server:
    """Start one standalone Redis-protocol server on a free loopback port."""
    from tempfile import mkdtemp

    workdir = workdir or Path(mkdtemp(prefix=f"ps-{program.name}-"))
    return start_server(
        program, lambda port: _base_args(port, workdir), ping, workdir=workdir
    )


@contextlib.contextmanager
def running_redis(program: Program = REDIS) -> Iterator[Server]:
    """Run a standalone server for the duration of the block, then stop it."""
    server = start_redis(program)
    try:
        yield server
    finally:
        server.stop()


def _cluster_state_ok(address: ServerAddress) -> bool:
    try:
        return b"cluster_state:ok" in redis_command(address, "CLUSTER", "INFO")
    except OSError:
        return False


def _form_cluster(nodes: Sequence[Server], timeout: float = 30.0) -> None:
    share = _SLOTS // len(nodes)
    for index, node in enumerate(nodes):
        first = index * share
        last = _SLOTS - 1 if index == len(nodes) - 1 else first + share - 1
        reply = redis_command(
            node.address, "CLUSTER", "ADDSLOTSRANGE", str(first), str(last)
        )
        if not reply.startswith(b"+OK"):
            raise BackendUnavailableError(f"ADDSLOTSRANGE on {node!r}: {reply!r}")
    seed = nodes[0].address
    for node in nodes[1:]:
        reply = redis_command(
            seed, "CLUSTER", "MEET", node.address.host, str(node.address.port)
        )
        if not reply.startswith(b"+OK"):
            raise BackendUnavailableError(f"CLUSTER MEET {node!r}: {reply!r}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(_cluster_state_ok(node.address) for node in nodes):
            return
        time.sleep(0.1)
    raise BackendUnavailableError(
        f"cluster {[str(n.address) for n in nodes]} not ok after {timeout:.0f}s"
    )


def start_cluster(program: Program = REDIS, masters: int = 3) -> list[Server]:
    """Start ``masters`` cluster-enabled nodes and join them into one cluster."""
    from tempfile import mkdtemp

    workdir = Path(mkdtemp(prefix=f"ps-{program.name}-cluster-"))
    nodes: list[Server] = []
    try:
        for _ in range(masters):

            def make_args(port: int) -> list[str]:
                return [
                    *_base_args(port, workdir),
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    f"nodes-{port}.conf",
                    "--cluster-node-timeout",
                    "2000",
                ]

            nodes.append(
                start_server(
                    program,
                    make_args,
                    ping,
                    workdir=workdir,
                    companions=(CLUSTER_BUS_OFFSET,),
                )
            )
        _form_cluster(nodes)
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return nodes


@contextlib.contextmanager
def running_cluster(
    program: Program = REDIS, masters: int = 3
) -> Iterator[list[Server]]:
    """Run a cluster for the duration of the block, then stop every node."""
    nodes = start_cluster(program, masters)
    try:
        yield nodes
    finally:
        for node in nodes:
            node.stop()
