"""Mochi-Margo transport and the peer-to-peer `MargoConnector`.

Needs ``pymargo`` (built with Mochi, e.g. ``spack install py-mochi-margo``; it is
not on PyPI). It is not imported until a connector, transport or server is created,
and a missing library raises
`TransportUnavailableError` saying how
to install it.

Each DIM message travels as one Margo RPC (``proxystore_dim``) whose argument and
answer are packed frames (`pack_frames`).
pymargo encodes RPC arguments itself; our bytes are only ever decoded by
`models`.

Note:
    This module is type-checked and its import guard is tested, but the transport
    itself is not exercised in this repository's test runs (``pymargo`` is not
    installed there).
"""

from __future__ import annotations

import enum
import itertools
import queue
import subprocess
import threading
import time
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
    "MargoConnector",
    "MargoTransport",
    "Protocol",
    "serve",
    "spawn_server",
    "start_server",
    "wait_for_server",
]

_INSTALL = "spack install py-mochi-margo (pymargo is not published on PyPI)"
_RPC_NAME = "proxystore_dim"


class Protocol(enum.Enum):
    """Mercury network transports a Margo engine can use."""

    OFI_TCP = "ofi+tcp"
    OFI_VERBS = "ofi+verbs"
    OFI_GNI = "ofi+gni"
    UCX_TCP = "ucx+tcp"
    UCX_VERBS = "ucx+verbs"
    SM_SHM = "sm+shm"
    BMI_TCP = "bmi+tcp"


def _pymargo() -> ModuleType:
    lib = import_library(("pymargo",), "Margo", _INSTALL)
    import_library(("pymargo.core",), "Margo", _INSTALL)
    return lib


class MargoTransport:
    """Client side of the Margo transport (one client engine, one RPC).

    Margo calls cannot be cancelled, so each exchange runs on a daemon thread and
    the caller stops waiting after the timeout.

    Raises:
        TransportUnavailableError: On creation, if ``pymargo`` is not installed.
    """

    def __init__(self, protocol: Protocol | str) -> None:
        lib = _pymargo()
        self.protocol = Protocol(protocol).value
        self._engine = lib.core.Engine(
            self.protocol, mode=lib.client, use_progress_thread=True
        )
        self._rpc = self._engine.register(_RPC_NAME)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def _call(
        self, host: str, port: int, requests: Sequence[Request]
    ) -> list[Response]:
        address = self._engine.lookup(f"{self.protocol}://{host}:{port}")
        responses = []
        for request in requests:
            rid = next(self._ids) & 0xFFFFFFFF
            answer = self._rpc.on(address)(pack_request(request, rid))
            responses.append(unpack_response(answer))
        return responses

    def exchange(
        self,
        host: str,
        port: int,
        requests: Sequence[Request],
        timeout: float,
    ) -> list[Response]:
        """Send ``requests`` to ``host:port``; return the responses in order.

        Raises:
            ServerTimeoutError: If the answers do not all arrive in ``timeout`` s.
            MessageDecodeError: If the peer's answer is malformed.
        """
        results: queue.Queue[list[Response] | BaseException] = queue.Queue(1)

        def run() -> None:
            try:
                results.put(self._call(host, port, requests))
            except BaseException as exc:  # handed to the waiting caller
                results.put(exc)

        with self._lock:
            threading.Thread(target=run, name="dim-margo-call", daemon=True).start()
            try:
                result = results.get(timeout=timeout)
            except queue.Empty:
                raise timeout_error(
                    host, port, timeout, f"{len(requests)} request(s)"
                ) from None
        if isinstance(result, BaseException):
            raise result
        return result

    def close(self) -> None:
        """Finalize the client engine."""
        with self._lock:
            self._engine.finalize()


def serve(
    address: str,
    port: int,
    handler: RequestHandler,
    *,
    options: Mapping[str, str],
    should_stop: Callable[[], bool],
    on_ready: Callable[[], None] = no_op,
) -> None:
    """Answer DIM requests with a Margo engine until ``should_stop()``.

    Option ``protocol`` (required): a `Protocol` value such as ``ofi+tcp``.

    Raises:
        TransportUnavailableError: If ``pymargo`` is not installed.
        KeyError: If the ``protocol`` option is missing.
    """
    lib = _pymargo()
    protocol = Protocol(options["protocol"]).value
    engine = lib.core.Engine(f"{protocol}://{address}:{port}", mode=lib.server)

    def on_rpc(handle: Any, data: bytes) -> None:
        handle.respond(answer_packed(handler, data))

    engine.register(_RPC_NAME, on_rpc)

    def watch() -> None:
        while not should_stop():
            time.sleep(0.1)
        engine.finalize()

    threading.Thread(target=watch, name="dim-margo-stop", daemon=True).start()
    on_ready()
    engine.wait_for_finalize()


def wait_for_server(
    protocol: Protocol | str,
    address: str,
    port: int,
    timeout: float = 0.1,
) -> None:
    """Return once the Margo DIM server at ``address:port`` answers a ping.

    Raises:
        ServerTimeoutError: If it does not answer within ``timeout`` seconds.
        TransportUnavailableError: If ``pymargo`` is not installed.
    """
    transport = MargoTransport(protocol)
    try:
        transport.exchange(address, port, [Request(Op.PING)], timeout)
    finally:
        transport.close()


def start_server(url: str) -> None:
    """Run a Margo DIM server at ``url`` (``protocol://host:port``) in this process."""
    from proxystore.connectors.dim.server import serve_forever

    protocol, _, rest = url.partition("://")
    host, _, port = rest.rpartition(":")
    serve_forever("margo", host, int(port), options={"protocol": protocol})


def spawn_server(
    protocol: Protocol | str,
    address: str,
    port: int,
    *,
    spawn_timeout: float = 5.0,
    kill_timeout: float = 1.0,
) -> subprocess.Popen[bytes]:
    """Start a Margo DIM server process; return it once it answers.

    Raises:
        ConnectorConnectionError: If the server exits before answering.
        ServerTimeoutError: If it does not answer within ``spawn_timeout`` seconds.
    """
    value = Protocol(protocol).value

    def wait(host: str, port_: int, timeout: float) -> None:
        wait_for_server(value, host, port_, timeout)

    return spawn_server_process(
        "margo",
        address,
        port,
        wait=wait,
        options={"protocol": value},
        spawn_timeout=spawn_timeout,
        kill_timeout=kill_timeout,
    )


class MargoConnector(PeerConnector):
    """Peer-to-peer in-memory connector over Mochi-Margo.

    Args:
        port: Port of this peer's server.
        protocol: Mercury transport (a `Protocol` or its value).
        address: Address of this peer's server (wins over ``interface``).
        interface: Network interface whose IPv4 address to use.
        timeout: Seconds any request may take (plus time proportional to size).
        force_spawn_server: Spawn a server without first looking for one.

    Raises:
        TransportUnavailableError: If ``pymargo`` is not installed.
        ValueError: If ``protocol`` is not a known Mercury transport.
        ServerTimeoutError: If no local server answers and a spawned one does not.
    """

    dim_type = "margo"

    def __init__(
        self,
        port: int,
        protocol: Protocol | str,
        address: str | None = None,
        interface: str | None = None,
        timeout: float = 1,
        force_spawn_server: bool = False,
    ) -> None:
        self.protocol = Protocol(protocol)
        self._locate(port, address, interface, timeout)
        self.force_spawn_server = force_spawn_server
        self._start(
            MargoTransport(self.protocol),
            lambda: spawn_server(
                self.protocol, self.address, port, spawn_timeout=max(timeout, 5.0)
            ),
            look_first=not force_spawn_server,
        )

    def config(self) -> dict[str, Any]:
        """Plain-data configuration (see `PeerConnector.config`)."""
        return {
            **super().config(),
            "protocol": self.protocol.value,
            "force_spawn_server": self.force_spawn_server,
        }
