"""ZeroMQ transport and the peer-to-peer `ZeroMQConnector`.

Each peer runs a ROUTER server (a separate process). Clients keep one DEALER socket
per peer, so requests to a peer are pipelined and a reply is matched to its request
by id. Object buffers travel as their own frames with ``copy=False``: a large object
is never copied into a message on either side.

CurveZMQ (optional): with a key pair (``curve_public_key`` and the secret key by
reference, see `ZeroMQConnector`), every peer's server and every client encrypt
and authenticate their traffic. A server serves only clients whose public key it
knows (its own, which the peers of one deployment share, plus ``curve_clients``):
any other client -- plain text, or another key -- gets no answer, and the server
keeps serving the others.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

from proxystore.connectors.dim._base import PeerConnector
from proxystore.connectors.dim.exceptions import (
    MessageDecodeError,
    TransportUnavailableError,
)
from proxystore.connectors.dim.models import (
    RPC,
    Op,
    Request,
    Response,
    RPCResponse,
    decode_response,
    encode_request,
    encode_response,
)
from proxystore.connectors.dim.server import spawn_server_process
from proxystore.connectors.dim.transport import (
    RequestHandler,
    no_op,
    respond,
    timeout_error,
)
from proxystore.connectors.protocols import BytesLike
from proxystore.utils.credentials import resolve_secret

try:
    import zmq
except ImportError as exc:  # pragma: no cover - pyzmq is this module's one need
    raise TransportUnavailableError(
        "the DIM ZeroMQ transport needs the 'pyzmq' package; install it with: "
        "pip install 'proxystore-connectors[zmq]'",
        name="zmq",
    ) from exc

__all__ = [
    "CurveKeys",
    "ZeroMQConnector",
    "ZeroMQServer",
    "ZeroMQTransport",
    "curve_keypair",
    "run_server",
    "serve",
    "spawn_server",
    "start_server",
    "wait_for_server",
]

# Frames smaller than this are copied into `bytes` on receipt: a copy of a few KB
# is cheaper than keeping a zmq.Frame alive, and callers get plain bytes.
_COPY_BELOW = 64 * 1024
_POLL_MS = 100
# Requests in flight per peer within one exchange (well under ZeroMQ's HWM of 1000).
_WINDOW = 256
# Environment variable through which a spawner hands a directly passed Curve secret
# to its server process (never on the command line, which others can read).
_CURVE_SECRET_VAR = "PROXYSTORE_DIM_CURVE_SECRET"
_Z85_KEY_LENGTH = 40


class CurveKeys(NamedTuple):
    """A CurveZMQ key pair shared by the peers of one deployment (Z85 text).

    The same pair is the servers' identity and the clients' credentials; a
    server also admits the clients whose public keys are in ``clients``.
    """

    public: str
    secret: str
    clients: tuple[str, ...] = ()

    def check(self) -> None:
        """Raise ``ValueError`` unless every key is 40 characters of Z85 text."""
        for what, key in (
            ("public", self.public),
            ("secret", self.secret),
            *(("client", c) for c in self.clients),
        ):
            if len(key) != _Z85_KEY_LENGTH:
                raise ValueError(
                    f"CurveZMQ {what} key must be 40 characters of Z85 text "
                    "(see curve_keypair())"
                )


def curve_keypair() -> tuple[str, str]:
    """Return a new CurveZMQ ``(public, secret)`` key pair as Z85 text."""
    public, secret = zmq.curve_keypair()
    return public.decode("ascii"), secret.decode("ascii")


def _secure_client(sock: zmq.Socket[bytes], curve: CurveKeys) -> None:
    sock.curve_publickey = curve.public.encode("ascii")
    sock.curve_secretkey = curve.secret.encode("ascii")
    sock.curve_serverkey = curve.public.encode("ascii")


def _frames(
    payload: Sequence[BytesLike], chunk_length: int | None
) -> Iterator[BytesLike]:
    for part in payload:
        if chunk_length is None or len(part) <= chunk_length:
            yield part
        else:
            view = memoryview(part).cast("B")
            for start in range(0, len(view), chunk_length):
                yield view[start : start + chunk_length]


def _recv_rest(sock: zmq.Socket[bytes]) -> list[BytesLike]:
    """Receive the remaining frames of a message (its payload)."""
    parts: list[BytesLike] = []
    while sock.getsockopt(zmq.RCVMORE):
        frame = sock.recv(copy=False)
        parts.append(frame.bytes if len(frame) < _COPY_BELOW else frame.buffer)
    return parts


class ZeroMQTransport:
    """Client side of the ZeroMQ transport (one DEALER socket per peer).

    Thread-safe: exchanges are serialized by a lock, since ZeroMQ sockets must not
    be shared between threads concurrently. Fork-safe: a forked child leaves the
    parent's sockets alone and opens its own on first use.
    """

    def __init__(
        self, chunk_length: int | None = None, curve: CurveKeys | None = None
    ) -> None:
        self.chunk_length = chunk_length
        self._curve = curve
        self._pid = os.getpid()
        self._context = zmq.Context()
        self._sockets: dict[tuple[str, int], zmq.Socket[bytes]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def _socket(self, host: str, port: int) -> zmq.Socket[bytes]:
        if self._pid != os.getpid():
            # ZeroMQ state is not fork-safe: never touch what the parent owns.
            self._pid = os.getpid()
            self._context = zmq.Context()
            self._sockets = {}
        sock = self._sockets.get((host, port))
        if sock is None:
            sock = self._context.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            if self._curve is not None:
                _secure_client(sock, self._curve)
            sock.connect(f"tcp://{host}:{port}")
            self._sockets[(host, port)] = sock
        return sock

    def _reset(self, host: str, port: int) -> None:
        # A timed-out request may still be answered later; a fresh socket makes
        # sure that stale answer is never read as the reply to a new request.
        sock = self._sockets.pop((host, port), None)
        if sock is not None:
            sock.close(linger=0)

    def exchange(
        self,
        host: str,
        port: int,
        requests: Sequence[Request],
        timeout: float,
    ) -> list[Response]:
        """Send ``requests`` to ``host:port``; return the responses in order.

        At most ``_WINDOW`` requests are in flight at once, so a large batch never
        fills the sockets' queues (where ZeroMQ would block or drop).

        Raises:
            ServerTimeoutError: If the answers do not all arrive within ``timeout``
                seconds (the peer's socket is then reset).
            MessageDecodeError: If the peer's answer is malformed.
        """
        deadline = time.monotonic() + timeout
        out: list[Response | None] = [None] * len(requests)
        with self._lock:
            sock = self._socket(host, port)
            try:
                for start in range(0, len(requests), _WINDOW):
                    window = range(start, min(start + _WINDOW, len(requests)))
                    self._round_trip(sock, requests, window, out, deadline)
            except zmq.Again:
                self._reset(host, port)
                raise timeout_error(
                    host, port, timeout, f"{len(requests)} request(s)"
                ) from None
            except MessageDecodeError:
                self._reset(host, port)
                raise
        return [r for r in out if r is not None]

    def _round_trip(
        self,
        sock: zmq.Socket[bytes],
        requests: Sequence[Request],
        window: range,
        out: list[Response | None],
        deadline: float,
    ) -> None:
        # Socket timeouts instead of poll(): poll() builds a Poller per call, which
        # costs more than a whole small-object round trip. zmq.Again = timed out.
        pending: dict[int, int] = {}
        sock.setsockopt(zmq.SNDTIMEO, _remaining_ms(deadline))
        for index in window:
            request = requests[index]
            rid = next(self._ids) & 0xFFFFFFFF
            pending[rid] = index
            sock.send_multipart(
                [
                    encode_request(request, rid),
                    *_frames(request.payload, self.chunk_length),
                ],
                copy=False,
            )
        while pending:
            sock.setsockopt(zmq.RCVTIMEO, _remaining_ms(deadline))
            header = sock.recv(copy=True)
            response = decode_response(header, _recv_rest(sock))
            index = pending.pop(response.request_id, -1)
            if index >= 0:  # else: a stale answer to an abandoned request
                out[index] = response

    def close(self) -> None:
        """Close every socket and the context (a forked child closes only its own)."""
        with self._lock:
            if self._pid != os.getpid():
                return
            for sock in self._sockets.values():
                sock.close(linger=0)
            self._sockets.clear()
            self._context.term()


def _remaining_ms(deadline: float) -> int:
    remaining = int((deadline - time.monotonic()) * 1000)
    if remaining <= 0:
        raise zmq.Again
    return remaining


def serve(
    address: str,
    port: int,
    handler: RequestHandler,
    *,
    options: Mapping[str, str],
    should_stop: Callable[[], bool],
    on_ready: Callable[[], None] = no_op,
) -> None:
    """Answer DIM requests on ``tcp://address:port`` until ``should_stop()``.

    Options: ``chunk_length`` splits payload frames larger than this many bytes;
    ``curve_public_key``, ``curve_secret_ref`` (a reference to the secret key, see
    `proxystore.utils.credentials`) and ``curve_clients`` (comma-separated extra
    client public keys) turn on CurveZMQ.

    Raises:
        zmq.ZMQError: If the address cannot be bound (e.g. the port is taken).
        CredentialError: If the Curve secret reference does not resolve.
    """
    length = options.get("chunk_length")
    chunk_length = int(length) if length else None
    context = zmq.Context()
    sock = context.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, _POLL_MS)
    authenticator = None
    try:
        public = options.get("curve_public_key")
        if public:
            authenticator = _secure_server(sock, context, public, options)
        sock.bind(f"tcp://{address}:{port}")
        on_ready()
        while not should_stop():
            try:
                identity = sock.recv(copy=True)
            except zmq.Again:
                continue
            if not sock.getsockopt(zmq.RCVMORE):
                continue  # an identity without a message: nothing to answer
            header = sock.recv(copy=True)
            response = respond(handler, header, _recv_rest(sock))
            sock.send_multipart(
                [
                    identity,
                    encode_response(response),
                    *_frames(response.payload, chunk_length),
                ],
                copy=False,
            )
    finally:
        if authenticator is not None:
            authenticator.stop()
        sock.close(linger=0)
        context.term()


class _AllowedClients:
    """ZAP credentials provider: admit only the listed client public keys."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._keys = frozenset(key.encode("ascii") for key in keys)

    def callback(self, domain: str, key: bytes) -> bool:
        return key in self._keys


def _secure_server(
    sock: zmq.Socket[bytes],
    context: zmq.Context[zmq.Socket[bytes]],
    public: str,
    options: Mapping[str, str],
) -> Any:
    from zmq.auth.thread import ThreadAuthenticator

    clients = [c for c in options.get("curve_clients", "").split(",") if c]
    secret = resolve_secret(options.get("curve_secret_ref", ""))
    CurveKeys(public, secret, tuple(clients)).check()
    # ZAP: the handshake of a client whose key is not listed fails; it gets
    # nothing, and other clients are not disturbed.
    authenticator = ThreadAuthenticator(context)
    authenticator.start()
    authenticator.configure_curve_callback(
        "*", credentials_provider=_AllowedClients([public, *clients])
    )
    sock.curve_secretkey = secret.encode("ascii")
    sock.curve_publickey = public.encode("ascii")
    sock.curve_server = True
    return authenticator


def wait_for_server(
    address: str, port: int, timeout: float = 0.1, curve: CurveKeys | None = None
) -> None:
    """Return once the ZeroMQ DIM server at ``address:port`` answers a ping.

    Args:
        address: Address of the server.
        port: Port of the server.
        timeout: Seconds to wait.
        curve: CurveZMQ keys, for a server that requires them.

    Raises:
        ServerTimeoutError: If it does not answer within ``timeout`` seconds.
    """
    transport = ZeroMQTransport(curve=curve)
    try:
        transport.exchange(address, port, [Request(Op.PING)], timeout)
    finally:
        transport.close()


def start_server(address: str, port: int, chunk_length: int | None = None) -> None:
    """Run a ZeroMQ DIM server in this process until SIGINT/SIGTERM."""
    from proxystore.connectors.dim.server import serve_forever

    options = {} if chunk_length is None else {"chunk_length": str(chunk_length)}
    serve_forever("zmq", address, port, options=options)


def run_server(address: str, port: int, chunk_length: int | None = None) -> None:
    """Run a ZeroMQ DIM server in this process until SIGINT/SIGTERM.

    Same as `start_server` (the name proxystore-ex uses for its blocking loop).
    """
    start_server(address, port, chunk_length)


class ZeroMQServer:
    """An in-process object store that answers `RPC` requests.

    The state of one DIM server, usable without sockets (e.g. in tests of code
    written against proxystore-ex). The server processes spawned by
    `ZeroMQConnector` hold their objects the same way.
    """

    def __init__(self) -> None:
        self.data: dict[str, BytesLike] = {}

    def put(self, key: str, data: BytesLike) -> None:
        """Store ``data`` under ``key`` (overwriting)."""
        self.data[key] = data

    def get(self, key: str) -> BytesLike | None:
        """Return the bytes under ``key``, or ``None`` when missing."""
        return self.data.get(key)

    def exists(self, key: str) -> bool:
        """Return whether ``key`` is stored."""
        return key in self.data

    def evict(self, key: str) -> None:
        """Forget ``key``; a missing key is not an error."""
        self.data.pop(key, None)

    def handle_rpc(self, rpc: RPC) -> RPCResponse:
        """Perform ``rpc`` and describe its outcome.

        Never raises: an error (e.g. a ``put`` without data, an unknown operation)
        is returned in `RPCResponse.exception`.
        """
        obj_id = rpc.key.obj_id
        response = RPCResponse(rpc.operation, rpc.key)
        try:
            if rpc.operation == "get":
                response.data = self.get(obj_id)
            elif rpc.operation == "exists":
                response.exists = self.exists(obj_id)
            elif rpc.operation == "evict":
                self.evict(obj_id)
            elif rpc.operation == "put":
                if rpc.data is None:
                    raise ValueError(f"put of key {obj_id!r} carries no data")
                self.put(obj_id, rpc.data)
            else:
                raise ValueError(f"unknown DIM operation {rpc.operation!r}")
        except Exception as exc:  # reported to the caller, like a server would
            response.exception = exc
        return response


def spawn_server(
    address: str,
    port: int,
    *,
    chunk_length: int | None = None,
    spawn_timeout: float = 5.0,
    kill_timeout: float = 1.0,
    curve: CurveKeys | None = None,
) -> subprocess.Popen[bytes]:
    """Start a ZeroMQ DIM server process; return it once it answers.

    The process is stopped when this interpreter exits, and it stops itself if
    this process dies. With ``curve``, the server requires CurveZMQ; its secret
    key reaches it through its environment, never its command line.

    Raises:
        ConnectorConnectionError: If the server exits before answering.
        ServerTimeoutError: If it does not answer within ``spawn_timeout`` seconds.
    """
    options = {} if chunk_length is None else {"chunk_length": str(chunk_length)}
    env: dict[str, str] = {}
    if curve is not None:
        options["curve_public_key"] = curve.public
        options["curve_secret_ref"] = f"env:{_CURVE_SECRET_VAR}"
        if curve.clients:
            options["curve_clients"] = ",".join(curve.clients)
        env[_CURVE_SECRET_VAR] = curve.secret
    return spawn_server_process(
        "zmq",
        address,
        port,
        wait=lambda a, p, t: wait_for_server(a, p, t, curve=curve),
        options=options,
        spawn_timeout=spawn_timeout,
        kill_timeout=kill_timeout,
        env=env,
    )


def _listening(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class ZeroMQConnector(PeerConnector):
    """Peer-to-peer in-memory connector over ZeroMQ.

    The first connector on a host (for a given address and port) spawns a server
    process that holds the objects this peer puts; later connectors attach to it.
    A get fetches from the server of the peer named in the key.

    Args:
        port: Port of this peer's server.
        address: Address of this peer's server (wins over ``interface``).
        interface: Network interface whose IPv4 address to use.
        chunk_length: Split object frames larger than this many bytes (``None``:
            send each object as one zero-copy frame).
        timeout: Seconds any request may take (plus time proportional to the
            object size); also how long to wait for the local server.
        curve_public_key: Turn on CurveZMQ with this deployment-wide key pair
            (Z85 text, from `curve_keypair`): the spawned server requires it and
            every request is encrypted and authenticated with it.
        curve_secret_key: The pair's secret key, passed directly: used by this
            connector (and the server it spawns) only, never part of
            `config`.
        curve_secret_key_env: Environment variable holding the secret key (a
            reference: kept in `config`, resolved in each process).
        curve_secret_key_credential: Credentials-file entry holding the secret
            key (see `proxystore.utils.credentials`).
        curve_clients: Public keys of further clients the spawned server admits.

    Raises:
        ServerTimeoutError: If no local server answers and a spawned one does not
            answer within ``timeout`` seconds.
        ConnectorConnectionError: If the spawned server exits at once (port taken).
        ValueError: If Curve keys are malformed, or a secret is given without
            ``curve_public_key``.
        CredentialError: If the secret key reference does not resolve here.
    """

    dim_type = "zmq"
    # Curve options of config() (only when Curve is on); none by default.
    _curve_config: Mapping[str, Any] = MappingProxyType({})

    def __init__(
        self,
        port: int,
        address: str | None = None,
        interface: str | None = None,
        chunk_length: int | None = None,
        timeout: float = 1,
        *,
        curve_public_key: str | None = None,
        curve_secret_key: str | None = None,
        curve_secret_key_env: str | None = None,
        curve_secret_key_credential: str | None = None,
        curve_clients: Sequence[str] = (),
    ) -> None:
        self._locate(port, address, interface, timeout)
        self.chunk_length = chunk_length
        self.url = f"tcp://{self.address}:{port}"
        curve = None
        if curve_public_key is not None:
            self._curve_config = {
                "curve_public_key": curve_public_key,
                "curve_secret_key_env": curve_secret_key_env,
                "curve_secret_key_credential": curve_secret_key_credential,
                "curve_clients": list(curve_clients),
            }
            if curve_secret_key is None:
                ref = (
                    f"env:{curve_secret_key_env}"
                    if curve_secret_key_env
                    else curve_secret_key_credential or ""
                )
                curve_secret_key = resolve_secret(ref)
            curve = CurveKeys(curve_public_key, curve_secret_key, tuple(curve_clients))
            curve.check()
        elif curve_secret_key or curve_secret_key_env or curve_secret_key_credential:
            raise ValueError("a Curve secret key needs its curve_public_key")
        self._start(
            ZeroMQTransport(chunk_length, curve),
            lambda: spawn_server(
                self.address,
                port,
                chunk_length=chunk_length,
                spawn_timeout=max(timeout, 5.0),
                curve=curve,
            ),
        )

    def _server_answers(self) -> bool:
        # A refused TCP connection means nothing listens: spawn at once instead of
        # waiting `timeout` for a ping that cannot be answered.
        return (
            _listening(self.address, self.port, self.timeout)
            and super()._server_answers()
        )

    def config(self) -> dict[str, Any]:
        """Plain-data configuration (see `PeerConnector.config`)."""
        return {
            **super().config(),
            "chunk_length": self.chunk_length,
            **self._curve_config,
        }
