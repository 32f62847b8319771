"""UCX transport and the peer-to-peer `UCXConnector`.

Needs `ucxx` (`pip install 'proxystore-connectors[ucx]'`, which installs
`ucxx-cu12`; about 300 MB with its dependencies, no GPU needed). It is not
imported until a connector, transport or server is created, and a missing library
raises `TransportUnavailableError` saying how to install it.

How a peer is reached:

* Each server listens on a TCP socket bound to exactly its configured
  `address:port` (ucxx's own listener can only bind every interface). A client
  connects there and the two swap UCX worker addresses and a pair of random
  tags; each then opens a UCX endpoint to the other.
* Every message is a small control record on that TCP connection (the DIM
  header, plus the payload when it is small). A larger payload travels as one
  UCX tag message straight into a buffer of its exact size: one receive, no
  copies, over shared memory on one host or TCP/RDMA between hosts.

The TCP connection doubles as the liveness signal: a peer that dies closes it,
so requests fail at once instead of waiting for the timeout (which still bounds
every request). On a machine without RDMA hardware set `UCX_TLS=tcp,self,sm`;
for loopback-only tests also `UCX_NET_DEVICES=lo`.

UCX endpoints are opened with UCX's peer-failure handling, so a peer that dies
mid-transfer is an error, not a crash. UCX then excludes its shared-memory
transports (they cannot detect a dead peer), so peers on one node talk over TCP.
`PROXYSTORE_DIM_UCX_ERROR_HANDLING=0` (read when an endpoint opens, in clients
and servers alike) trades that safety for shared memory (CMA) within a node,
several times faster on loopback: but then UCX aborts the process when a peer
dies during a transfer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import secrets
import struct
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

from proxystore.connectors.dim._base import PeerConnector
from proxystore.connectors.dim.exceptions import (
    MessageDecodeError,
    ServerTimeoutError,
)
from proxystore.connectors.dim.models import (
    Op,
    Request,
    Response,
    decode_response,
    encode_request,
    encode_response,
)
from proxystore.connectors.dim.server import spawn_server_process
from proxystore.connectors.dim.transport import (
    RequestHandler,
    import_library,
    no_op,
    respond,
    timeout_error,
)
from proxystore.connectors.protocols import BytesLike

__all__ = [
    "UCXConnector",
    "UCXTransport",
    "serve",
    "spawn_server",
    "start_server",
    "wait_for_server",
]

_INSTALL = "pip install 'proxystore-connectors[ucx]' (ucxx-cu12)"
# Payloads up to this size ride inside the control record: one TCP write is
# cheaper than a second (UCX) message for them.
INLINE_MAX = 16 * 1024
# Connection greeting: magic, the sender's two tags (request, response), the
# length of its UCX worker address (which follows).
_HELLO = struct.Struct("!4sQQI")
_HELLO_MAGIC = b"DMUX"
# Control record: payload mode, header length, payload length; then the header,
# then the payload when the mode is inline.
_RECORD = struct.Struct("!BIQ")
_NO_PAYLOAD, _INLINE, _BULK = 0, 1, 2
# A UCX server imports ucxx (and its CUDA-aware dependencies) before it binds:
# seconds on a busy node. The server says when it is ready, so a generous bound
# costs nothing when it starts fast.
_SPAWN_TIMEOUT = 30.0
# Largest worker address or header accepted from a peer (guards allocations).
_MAX_META = 1 << 20


def _ucx() -> ModuleType:
    # ucxx sets UCX_MEMTYPE_CACHE, which recent UCX releases no longer know; UCX
    # would print a warning about it in every process.
    os.environ.setdefault("UCX_WARN_UNUSED_ENV_VARS", "n")
    return import_library(("ucxx",), "UCX", _INSTALL)


def _error_handling() -> bool:
    """Whether endpoints use UCX peer-failure handling (see the module notes)."""
    return os.environ.get("PROXYSTORE_DIM_UCX_ERROR_HANDLING", "1") != "0"


def _flat(parts: Sequence[BytesLike]) -> BytesLike:
    """One buffer for a message's payload (a copy only for several parts)."""
    if len(parts) == 1:
        view = memoryview(parts[0])
        return view if view.ndim == 1 and view.itemsize == 1 else view.cast("B")
    return b"".join(parts)


class _Link:
    """Both halves of a connection to one peer: the TCP stream and the endpoint."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        endpoint: Any,
        send_tag: int,
        recv_tag: int,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.endpoint = endpoint
        self.send_tag = send_tag
        self.recv_tag = recv_tag

    def write(self, header: bytes, payload: Sequence[BytesLike]) -> BytesLike | None:
        """Write one control record; return the payload still to send over UCX."""
        size = sum(map(len, payload))
        if size == 0 and not payload:
            self.writer.write(_RECORD.pack(_NO_PAYLOAD, len(header), 0) + header)
            return None
        if size <= INLINE_MAX:
            record = _RECORD.pack(_INLINE, len(header), size)
            self.writer.writelines([record, header, *payload])
            return None
        self.writer.write(_RECORD.pack(_BULK, len(header), size) + header)
        return _flat(payload)

    async def send_bulk(self, payload: BytesLike) -> None:
        await self.endpoint.send(payload, tag=self.send_tag, force_tag=True)

    async def read(self) -> tuple[bytes, tuple[BytesLike, ...]]:
        """Read one message: its header and payload (received over UCX if bulk).

        Raises:
            asyncio.IncompleteReadError: If the peer closed the connection.
            MessageDecodeError: If the control record is malformed.
        """
        mode, header_length, size = _RECORD.unpack(
            await self.reader.readexactly(_RECORD.size)
        )
        if header_length > _MAX_META or mode not in (_NO_PAYLOAD, _INLINE, _BULK):
            raise MessageDecodeError(
                f"DIM UCX control record is malformed (mode {mode}, header "
                f"{header_length} bytes)"
            )
        header = await self.reader.readexactly(header_length)
        if mode == _NO_PAYLOAD:
            return header, ()
        if mode == _INLINE:
            if size > INLINE_MAX:
                raise MessageDecodeError(
                    f"DIM UCX inline payload of {size} bytes exceeds {INLINE_MAX}"
                )
            return header, (await self.reader.readexactly(size),)
        buffer = bytearray(size)
        if size:
            await self.endpoint.recv(buffer, tag=self.recv_tag, force_tag=True)
        return header, (buffer,)

    async def close(self) -> None:
        """Close the endpoint and the TCP stream (never raises)."""
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.endpoint.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


async def _greet(
    lib: ModuleType,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    tags: tuple[int, int] | None,
) -> _Link:
    """Swap worker addresses over a fresh connection; open the UCX endpoint.

    The client picks the tags (`tags`: client-to-server, server-to-client) and
    sends them in its greeting; the server passes `None` and adopts them.

    Raises:
        MessageDecodeError: If the peer's greeting is not a DIM UCX greeting.
    """
    address = lib.get_worker_address().tobytes()
    mine = tags or (0, 0)
    writer.write(_HELLO.pack(_HELLO_MAGIC, *mine, len(address)) + address)
    magic, to_server, to_client, length = _HELLO.unpack(
        await reader.readexactly(_HELLO.size)
    )
    if magic != _HELLO_MAGIC or length > _MAX_META:
        raise MessageDecodeError("peer did not greet as a DIM UCX peer")
    peer = lib.get_ucx_address_from_buffer(await reader.readexactly(length))
    endpoint = await lib.create_endpoint_from_worker_address(
        peer, endpoint_error_handling=_error_handling()
    )
    if tags is None:  # server side
        return _Link(reader, writer, endpoint, to_client, to_server)
    return _Link(reader, writer, endpoint, *tags)


class UCXTransport:
    """Client side of the UCX transport (one connection per peer).

    The library runs on an asyncio loop on a background thread; exchanges are
    serialized by a lock.

    Raises:
        TransportUnavailableError: On creation, if `ucxx` is not installed.
    """

    def __init__(self) -> None:
        self._lib = _ucx()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="dim-ucx-client", daemon=True
        )
        self._thread.start()
        self._links: dict[tuple[str, int], _Link] = {}
        self._ids = 0
        self._lock = threading.Lock()
        self._closed = False

    async def _connect(self, host: str, port: int) -> _Link:
        link = self._links.get((host, port))
        if link is None:
            reader, writer = await asyncio.open_connection(host, port)
            try:
                tags = secrets.randbits(64), secrets.randbits(64)
                link = await _greet(self._lib, reader, writer, tags)
            except BaseException:
                writer.close()
                raise
            self._links[(host, port)] = link
        return link

    async def _exchange(
        self, host: str, port: int, requests: Sequence[Request]
    ) -> list[Response]:
        link = await self._connect(host, port)
        ids = []
        sends: list[asyncio.Task[Any]] = []
        try:
            for request in requests:
                self._ids = (self._ids + 1) & 0xFFFFFFFF
                ids.append(self._ids)
                bulk = link.write(encode_request(request, self._ids), request.payload)
                if bulk is not None:
                    sends.append(asyncio.ensure_future(link.send_bulk(bulk)))
            await link.writer.drain()
            by_id: dict[int, Response] = {}
            while len(by_id) < len(ids):
                header, payload = await link.read()
                response = decode_response(header, payload)
                by_id[response.request_id] = response
            await asyncio.gather(*sends)
            return [by_id[rid] for rid in ids]
        except BaseException:
            # Timed out, peer gone or garbage: this connection is unusable.
            for task in sends:
                task.cancel()
            await asyncio.gather(*sends, return_exceptions=True)
            if self._links.pop((host, port), None) is link:
                await link.close()
            raise

    def exchange(
        self,
        host: str,
        port: int,
        requests: Sequence[Request],
        timeout: float,
    ) -> list[Response]:
        """Send `requests` to `host:port`; return the responses in order.

        Raises:
            ServerTimeoutError: If the peer cannot be reached, closes the
                connection, or does not answer within `timeout` seconds (the
                connection is then dropped).
            MessageDecodeError: If the peer's answer is malformed.
        """
        what = f"{len(requests)} request(s)"
        with self._lock:
            if self._closed:
                raise RuntimeError("UCXTransport is closed")
            future = asyncio.run_coroutine_threadsafe(
                asyncio.wait_for(self._exchange(host, port, requests), timeout),
                self._loop,
            )
            try:
                # wait_for cancels on time; the margin covers a slow cancellation.
                return future.result(timeout + 5.0)
            except (TimeoutError, concurrent.futures.TimeoutError):
                future.cancel()
                raise timeout_error(host, port, timeout, what) from None
            except (OSError, EOFError) as exc:
                raise ServerTimeoutError(
                    f"DIM server at {host}:{port} is not reachable ({exc!r}) while "
                    f"sending {what}",
                    address=f"{host}:{port}",
                ) from exc
            except MessageDecodeError:
                raise
            except Exception as exc:
                if type(exc).__module__.startswith("ucxx"):
                    # The UCX endpoint failed (e.g. the peer died mid-transfer).
                    raise ServerTimeoutError(
                        f"DIM server at {host}:{port} failed while answering "
                        f"{what}: {exc!r}",
                        address=f"{host}:{port}",
                    ) from exc
                raise

    async def _close_all(self) -> None:
        links = list(self._links.values())
        self._links.clear()
        await asyncio.gather(*(link.close() for link in links))
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        """Close every connection and stop the loop thread (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            done = asyncio.run_coroutine_threadsafe(self._close_all(), self._loop)
            with contextlib.suppress(Exception):
                done.result(10.0)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10.0)
            if not self._thread.is_alive():
                self._loop.close()


def serve(
    address: str,
    port: int,
    handler: RequestHandler,
    *,
    options: Mapping[str, str],
    should_stop: Callable[[], bool],
    on_ready: Callable[[], None] = no_op,
) -> None:
    """Answer DIM requests on `address:port` (TCP control, UCX payloads).

    Binds `address` only. There are no options (UCX splits large messages
    itself).

    Raises:
        TransportUnavailableError: If `ucxx` is not installed.
        OSError: If the address cannot be bound (e.g. the port is taken).
    """
    lib = _ucx()

    async def answer(link: _Link) -> None:
        while True:
            header, payload = await link.read()
            response = respond(handler, header, payload)
            bulk = link.write(encode_response(response), response.payload)
            await link.writer.drain()
            if bulk is not None:
                await link.send_bulk(bulk)

    async def on_client(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        link = None
        try:
            # A client that never greets (a port scan, a plain TCP probe) is
            # dropped after a while.
            link = await asyncio.wait_for(_greet(lib, reader, writer, None), 30.0)
            await answer(link)
        except (asyncio.CancelledError, Exception):
            # The client went away, broke the protocol, or the server is stopping:
            # nothing more to answer on this connection, and never fatal.
            pass
        finally:
            if link is not None:
                await link.close()
            else:
                writer.close()

    async def run() -> None:
        clients: set[asyncio.Task[None]] = set()

        def track(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.ensure_future(on_client(reader, writer))
            clients.add(task)
            task.add_done_callback(clients.discard)

        # Start UCX (worker, progress) before announcing readiness.
        lib.get_worker_address()
        server = await asyncio.start_server(track, address, port)
        on_ready()
        try:
            # should_stop() is a plain callable (signals, parent watch): poll it.
            while not should_stop():  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        finally:
            server.close()
            for task in list(clients):
                task.cancel()
            await asyncio.gather(*clients, return_exceptions=True)
            await server.wait_closed()

    asyncio.run(run())


def wait_for_server(address: str, port: int, timeout: float = 0.1) -> None:
    """Return once the UCX DIM server at `address:port` answers a ping.

    Raises:
        ServerTimeoutError: If it does not answer within `timeout` seconds.
        TransportUnavailableError: If `ucxx` is not installed.
    """
    transport = UCXTransport()
    try:
        transport.exchange(address, port, [Request(Op.PING)], timeout)
    finally:
        transport.close()


def start_server(port: int, address: str = "127.0.0.1") -> None:
    """Run a UCX DIM server on `address:port` in this process until SIGINT/SIGTERM."""
    from proxystore.connectors.dim.server import serve_forever

    serve_forever("ucx", address, port)


def spawn_server(
    address: str,
    port: int,
    *,
    spawn_timeout: float = 5.0,
    kill_timeout: float = 1.0,
) -> subprocess.Popen[bytes]:
    """Start a UCX DIM server process; return it once it answers.

    The process is stopped when this interpreter exits, and it stops itself if
    this process dies.

    Raises:
        ConnectorConnectionError: If the server exits before answering (e.g. the
            port is taken).
        ServerTimeoutError: If it does not answer within `spawn_timeout` seconds.
    """
    return spawn_server_process(
        "ucx",
        address,
        port,
        wait=wait_for_server,
        spawn_timeout=spawn_timeout,
        kill_timeout=kill_timeout,
    )


class UCXConnector(PeerConnector):
    """Peer-to-peer in-memory connector over UCX.

    Like `ZeroMQConnector`: the first connector on a host (for an address and
    port) spawns the server process that holds this peer's objects; later ones
    attach to it. A get fetches from the peer named in the key. `close()` leaves
    the server running by default, as the reference does.

    Args:
        port: Port of this peer's server.
        address: Address of this peer's server (wins over `interface`); the
            server binds this address only.
        interface: Network interface whose IPv4 address to use.
        timeout: Seconds any request may take (plus time proportional to the
            object size); also how long to wait for the local server.

    Raises:
        TransportUnavailableError: If `ucxx` is not installed.
        ServerTimeoutError: If no local server answers and a spawned one does not.
        ConnectorConnectionError: If the spawned server exits at once and no
            other server answers on the port.
    """

    dim_type = "ucx"

    def __init__(
        self,
        port: int,
        address: str | None = None,
        interface: str | None = None,
        timeout: float = 1,
    ) -> None:
        self._locate(port, address, interface, timeout)
        self._start(
            UCXTransport(),
            lambda: spawn_server(
                self.address, port, spawn_timeout=max(timeout, _SPAWN_TIMEOUT)
            ),
        )

    def close(self, kill_server: bool = False) -> None:
        """Close connections; stop the spawned server only if `kill_server`.

        Args:
            kill_server: Stop the server this connector spawned (its objects are
                lost). By default it keeps serving until this process exits.
        """
        super().close(kill_server=kill_server)
