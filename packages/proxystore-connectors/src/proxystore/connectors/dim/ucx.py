"""UCX transport and the peer-to-peer `UCXConnector`.

Needs ``ucxx`` (``pip install ucxx-cu12``; about 300 MB with its dependencies) or
the older ``ucp`` (ucx-py). Neither is imported until a connector, transport or
server is created, and a missing library raises
`TransportUnavailableError` saying how
to install one.

UCX moves one buffer per message, so a message's frames travel packed
([`pack_frames`][proxystore.connectors.dim.models.pack_frames]). The library runs on an
asyncio loop: the client keeps one loop on a background thread and one endpoint per
peer. On a machine without RDMA hardware set ``UCX_TLS=tcp,self,sm``.

Note:
    This module is type-checked and its import guard is tested, but the transport
    itself is not exercised in this repository's test runs (``ucxx`` is not
    installed there).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

from proxystore.connectors.dim._base import PeerConnector
from proxystore.connectors.dim.models import Op, Request, Response
from proxystore.connectors.dim.server import spawn_server_process
from proxystore.connectors.dim.transport import (
    RequestHandler,
    answer_packed,
    import_library,
    no_op,
    pack_request,
    timeout_error,
    unpack_response,
)

__all__ = [
    "UCXConnector",
    "UCXTransport",
    "serve",
    "spawn_server",
    "start_server",
    "wait_for_server",
]

_INSTALL = "pip install ucxx-cu12 (or ucxx-cu11 / ucxx-cu13 to match your CUDA)"


def _ucx() -> ModuleType:
    return import_library(("ucxx", "ucp"), "UCX", _INSTALL)


class UCXTransport:
    """Client side of the UCX transport (one endpoint per peer).

    Raises:
        TransportUnavailableError: On creation, if neither ``ucxx`` nor ``ucp`` is
            installed.
    """

    def __init__(self) -> None:
        self._lib = _ucx()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="dim-ucx-client", daemon=True
        )
        self._thread.start()
        self._endpoints: dict[tuple[str, int], Any] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    async def _exchange(
        self, host: str, port: int, requests: Sequence[Request]
    ) -> list[Response]:
        endpoint = self._endpoints.get((host, port))
        if endpoint is None:
            endpoint = await self._lib.create_endpoint(host, port)
            self._endpoints[(host, port)] = endpoint
        ids = [next(self._ids) & 0xFFFFFFFF for _ in requests]
        for rid, request in zip(ids, requests, strict=True):
            await endpoint.send_obj(pack_request(request, rid))
        by_id: dict[int, Response] = {}
        while len(by_id) < len(ids):
            response = unpack_response(await endpoint.recv_obj())
            by_id[response.request_id] = response
        return [by_id[rid] for rid in ids]

    def exchange(
        self,
        host: str,
        port: int,
        requests: Sequence[Request],
        timeout: float,
    ) -> list[Response]:
        """Send ``requests`` to ``host:port``; return the responses in order.

        Raises:
            ServerTimeoutError: If the answers do not all arrive in ``timeout``
                seconds (the peer's endpoint is then dropped).
            MessageDecodeError: If the peer's answer is malformed.
        """
        with self._lock:
            future = asyncio.run_coroutine_threadsafe(
                self._exchange(host, port, requests), self._loop
            )
            try:
                return future.result(timeout)
            except concurrent.futures.TimeoutError:
                future.cancel()
                self._drop(host, port)
                raise timeout_error(
                    host, port, timeout, f"{len(requests)} request(s)"
                ) from None

    def _drop(self, host: str, port: int) -> None:
        endpoint = self._endpoints.pop((host, port), None)
        if endpoint is not None:
            asyncio.run_coroutine_threadsafe(endpoint.close(), self._loop)

    def close(self) -> None:
        """Close every endpoint and stop the loop thread."""
        with self._lock:
            for host, port in list(self._endpoints):
                self._drop(host, port)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
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
    """Answer DIM requests on UCX ``port`` until ``should_stop()``.

    UCX listeners bind every interface, so ``address`` is unused; there are no
    options (UCX splits large messages itself).

    Raises:
        TransportUnavailableError: If neither ``ucxx`` nor ``ucp`` is installed.
    """
    lib = _ucx()

    async def on_connect(endpoint: Any) -> None:
        while True:
            try:
                data = await endpoint.recv_obj()
            except Exception:  # the peer closed its endpoint: this client is done
                return
            await endpoint.send_obj(answer_packed(handler, data))

    async def run() -> None:
        listener = lib.create_listener(on_connect, port)
        on_ready()
        try:
            # should_stop() is a plain callable (signals, parent watch): poll it.
            while not should_stop():  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        finally:
            listener.close()

    asyncio.run(run())


def wait_for_server(address: str, port: int, timeout: float = 0.1) -> None:
    """Return once the UCX DIM server at ``address:port`` answers a ping.

    Raises:
        ServerTimeoutError: If it does not answer within ``timeout`` seconds.
        TransportUnavailableError: If neither ``ucxx`` nor ``ucp`` is installed.
    """
    transport = UCXTransport()
    try:
        transport.exchange(address, port, [Request(Op.PING)], timeout)
    finally:
        transport.close()


def start_server(port: int, address: str = "0.0.0.0") -> None:
    """Run a UCX DIM server in this process until SIGINT/SIGTERM."""
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

    Raises:
        ConnectorConnectionError: If the server exits before answering.
        ServerTimeoutError: If it does not answer within ``spawn_timeout`` seconds.
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

    Like [`ZeroMQConnector`][proxystore.connectors.dim.zmq.ZeroMQConnector]: the first
    connector on a host spawns the server that holds this peer's objects; a get
    fetches from the peer named in the key. ``close()`` leaves the server running
    by default, as the reference does.

    Args:
        port: Port of this peer's server.
        address: Address of this peer's server (wins over ``interface``).
        interface: Network interface whose IPv4 address to use.
        timeout: Seconds any request may take (plus time proportional to size).

    Raises:
        TransportUnavailableError: If neither ``ucxx`` nor ``ucp`` is installed.
        ServerTimeoutError: If no local server answers and a spawned one does not.
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
            lambda: spawn_server(self.address, port, spawn_timeout=max(timeout, 5.0)),
        )

    def close(self, kill_server: bool = False) -> None:
        """Close endpoints; stop the spawned server only if ``kill_server``."""
        super().close(kill_server=kill_server)
