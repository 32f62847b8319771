"""Mochi-Margo transport and the peer-to-peer `MargoConnector`.

Needs `pymargo`, which is not published on PyPI or in Linux distributions: HPC
sites build it with Mochi through Spack::

    spack install py-mochi-margo ^mercury+ofi   # or ^mercury+ucx for UCX
    spack load py-mochi-margo

It is not imported until a connector, transport or server is created, and a
missing library raises `TransportUnavailableError` saying how to install it.

How a message travels: every DIM request is one Margo RPC (`proxystore_dim`)
whose arguments are the packed DIM frames (header, plus the payload when it is
at most `INLINE_MAX` bytes) and, for a larger payload, a bulk handle exposing
the sender's buffer with its size. The receiver allocates a buffer of exactly
that size and fills it with **one bulk pull**: the server pulls a put's object
from the client, and a client pulls a get's object from the server, which keeps
one read-only bulk handle per stored object (registered once, freed on evict or
overwrite). No chunking and no per-chunk RPCs: Mercury moves the bytes with RDMA
where the network has it.

Supported protocols (`Protocol`) and the Mercury address class each selects
explicitly (naming the libfabric provider stack keeps Mercury from guessing and
printing a warning):

| Protocol | Mercury class | network |
|---|---|---|
| `ofi+tcp` | `ofi+tcp;ofi_rxm` | any IP network (libfabric tcp with RxM) |
| `ofi+verbs` | `ofi+verbs;ofi_rxm` | InfiniBand / RoCE |
| `ofi+gni` | `ofi+gni` | Cray Aries |
| `ucx+tcp` | `ucx+tcp` | IP through UCX |
| `ucx+verbs` | `ucx+rc_verbs` | InfiniBand through UCX |
| `bmi+tcp` | `bmi+tcp` | IP through BMI |

`sm+shm` (Mercury's shared-memory plugin) is listed for compatibility but is not
addressable by host and port, so the connector rejects it.

Note:
    pymargo cannot be installed on this project's CI, so the real-peer tests in
    `tests/integration/test_dim_margo.py` are skipped there; the wire format,
    request/response handling, timeouts, error translation and the bulk plan are
    unit-tested against an in-process stand-in for pymargo.
"""

from __future__ import annotations

import enum
import itertools
import logging
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any, NamedTuple

from proxystore.connectors.dim._base import PeerConnector
from proxystore.connectors.dim.exceptions import (
    MessageDecodeError,
    ServerTimeoutError,
)
from proxystore.connectors.dim.models import (
    Op,
    Request,
    Response,
    Status,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    pack_frames,
    unpack_frames,
)
from proxystore.connectors.dim.server import spawn_server_process
from proxystore.connectors.dim.transport import (
    RequestHandler,
    import_library,
    no_op,
    timeout_error,
)
from proxystore.connectors.protocols import BytesLike

__all__ = [
    "INLINE_MAX",
    "BulkPlan",
    "MargoConnector",
    "MargoTransport",
    "Protocol",
    "mercury_address",
    "plan_payload",
    "serve",
    "spawn_server",
    "start_server",
    "wait_for_server",
]

logger = logging.getLogger(__name__)

_INSTALL = "spack install py-mochi-margo (pymargo is not published on PyPI)"
_RPC_NAME = "proxystore_dim"
#: Payloads up to this many bytes travel inside the RPC; larger ones by bulk pull.
INLINE_MAX = 64 * 1024


class Protocol(enum.Enum):
    """Mercury network transports a Margo engine can use."""

    OFI_TCP = "ofi+tcp"
    OFI_VERBS = "ofi+verbs"
    OFI_GNI = "ofi+gni"
    UCX_TCP = "ucx+tcp"
    UCX_VERBS = "ucx+verbs"
    SM_SHM = "sm+shm"
    BMI_TCP = "bmi+tcp"


_MERCURY_CLASS = {
    Protocol.OFI_TCP: "ofi+tcp;ofi_rxm",
    Protocol.OFI_VERBS: "ofi+verbs;ofi_rxm",
    Protocol.OFI_GNI: "ofi+gni",
    Protocol.UCX_TCP: "ucx+tcp",
    Protocol.UCX_VERBS: "ucx+rc_verbs",
    Protocol.BMI_TCP: "bmi+tcp",
}


def mercury_address(protocol: Protocol | str, host: str, port: int) -> str:
    """Return the Mercury address of `host:port` with the provider spelled out.

    Raises:
        ValueError: If `protocol` is unknown or cannot address a host and port
            (`sm+shm`).
    """
    proto = Protocol(protocol)
    mercury = _MERCURY_CLASS.get(proto)
    if mercury is None:
        raise ValueError(
            f"Margo protocol {proto.value!r} is not addressable by host and port; "
            f"use one of {', '.join(p.value for p in _MERCURY_CLASS)}"
        )
    return f"{mercury}://{host}:{port}"


def _pymargo() -> ModuleType:
    lib = import_library(("pymargo",), "Margo", _INSTALL)
    for sub in ("pymargo.core", "pymargo.bulk"):
        import_library((sub,), "Margo", _INSTALL)
    return lib


class BulkPlan(NamedTuple):
    """How one message's payload travels.

    Attributes:
        frames: The packed DIM frames sent inside the RPC (header first, then
            the payload when it is small).
        bulk: The one buffer to expose for a bulk pull, or `None`.
    """

    frames: bytes
    bulk: BytesLike | None

    @property
    def bulk_size(self) -> int:
        """Bytes the receiver pulls (0 without bulk)."""
        return 0 if self.bulk is None else memoryview(self.bulk).nbytes


def plan_payload(header: bytes, payload: Sequence[BytesLike]) -> BulkPlan:
    """Decide how a message travels: inline in the RPC, or one bulk pull.

    A payload of several parts that needs bulk is joined into one buffer first
    (one copy; the connector always sends one part).
    """
    size = sum(memoryview(part).nbytes for part in payload)
    if size <= INLINE_MAX:
        return BulkPlan(pack_frames([header, *payload]), None)
    if len(payload) == 1:
        view = memoryview(payload[0])
        bulk: BytesLike = view if view.format == "B" else view.cast("B")
    else:
        bulk = b"".join(payload)
    return BulkPlan(pack_frames([header]), bulk)


def _unpack(frames: BytesLike, pulled: BytesLike | None) -> tuple[BytesLike, list[Any]]:
    """Split received frames into the header and the payload (pulled or inline).

    Raises:
        MessageDecodeError: If the frames are malformed, or carry a payload
            besides a pulled one.
    """
    try:
        header, *inline = unpack_frames(frames)
    except ValueError:
        raise MessageDecodeError("DIM Margo message holds no frames") from None
    if pulled is None:
        return header, inline
    if inline:
        raise MessageDecodeError("DIM Margo message has both inline and bulk payload")
    return header, [pulled]


def _pull(lib: ModuleType, engine: Any, origin: Any, bulk: Any, size: int) -> bytearray:
    """Fill a new buffer of `size` bytes with one bulk pull from `origin`."""
    buffer = bytearray(size)
    local = engine.create_bulk(buffer, lib.bulk.write_only)
    engine.transfer(
        op=lib.bulk.pull,
        origin_addr=origin,
        origin_handle=bulk,
        origin_offset=0,
        local_handle=local,
        local_offset=0,
        size=size,
    )
    return buffer


class MargoTransport:
    """Client side of the Margo transport (one client engine, one RPC).

    Every RPC carries Margo's own timeout; a call that still does not return
    (Margo calls cannot be cancelled) is abandoned on a daemon thread after the
    timeout, and the exchange fails with `ServerTimeoutError`.

    Raises:
        TransportUnavailableError: On creation, if `pymargo` is not installed.
        ValueError: If `protocol` is unknown or not addressable by host and port.
    """

    def __init__(self, protocol: Protocol | str) -> None:
        self.protocol = Protocol(protocol).value
        mercury_address(self.protocol, "localhost", 0)  # rejects sm+shm early
        self._lib = _pymargo()
        self._engine = self._lib.core.Engine(
            _MERCURY_CLASS[Protocol(protocol)],
            mode=self._lib.core.client,
            use_progress_thread=True,
        )
        self._rpc = self._engine.register(_RPC_NAME)
        self._addresses: dict[tuple[str, int], Any] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._closed = False

    def _address(self, host: str, port: int) -> Any:
        address = self._addresses.get((host, port))
        if address is None:
            address = self._engine.lookup(mercury_address(self.protocol, host, port))
            self._addresses[(host, port)] = address
        return address

    def _call(
        self, host: str, port: int, requests: Sequence[Request], timeout: float
    ) -> list[Response]:
        address = self._address(host, port)
        responses = []
        for request in requests:
            rid = next(self._ids) & 0xFFFFFFFF
            plan = plan_payload(encode_request(request, rid), request.payload)
            bulk = None
            if plan.bulk is not None:
                bulk = self._engine.create_bulk(plan.bulk, self._lib.bulk.read_only)
            answer = self._rpc.on(address)(
                plan.frames,
                bulk,
                plan.bulk_size,
                timeout=timeout * 1000.0,  # margo_forward_timed takes ms
            )
            responses.append(self._decode(address, answer))
        return responses

    def _decode(self, address: Any, answer: Any) -> Response:
        try:
            frames, bulk, size = answer
        except (TypeError, ValueError):
            raise MessageDecodeError(
                f"DIM Margo answer is not (frames, bulk, size): {type(answer)!r}"
            ) from None
        pulled = None
        if bulk is not None:
            pulled = _pull(self._lib, self._engine, address, bulk, int(size))
        header, payload = _unpack(frames, pulled)
        return decode_response(header, payload)

    def exchange(
        self,
        host: str,
        port: int,
        requests: Sequence[Request],
        timeout: float,
    ) -> list[Response]:
        """Send `requests` to `host:port`; return the responses in order.

        Raises:
            ServerTimeoutError: If the peer cannot be reached, Margo reports an
                error for the RPC or transfer, or the answers do not all arrive
                within `timeout` seconds.
            MessageDecodeError: If the peer's answer is malformed.
        """
        results: queue.Queue[list[Response] | BaseException] = queue.Queue(1)

        def run() -> None:
            try:
                results.put(self._call(host, port, requests, timeout))
            except BaseException as exc:  # handed to the waiting caller
                results.put(exc)

        what = f"{len(requests)} request(s)"
        with self._lock:
            if self._closed:
                raise RuntimeError("MargoTransport is closed")
            threading.Thread(target=run, name="dim-margo-call", daemon=True).start()
            try:
                result = results.get(timeout=timeout + 1.0)
            except queue.Empty:
                self._addresses.pop((host, port), None)
                raise timeout_error(host, port, timeout, what) from None
        if isinstance(result, BaseException):
            raise self._translate(result, host, port, timeout, what)
        return result

    def _translate(
        self,
        error: BaseException,
        host: str,
        port: int,
        timeout: float,
        what: str,
    ) -> BaseException:
        """Map a Margo failure to `ServerTimeoutError`; leave others as they are."""
        margo_error = getattr(self._lib.core, "MargoException", None)
        if margo_error is None or not isinstance(error, margo_error):
            return error
        with self._lock:
            self._addresses.pop((host, port), None)
        if "TIMEOUT" in str(error).upper():
            failure = timeout_error(host, port, timeout, what)
        else:
            failure = ServerTimeoutError(
                f"DIM server at {host}:{port} is not reachable over Margo while "
                f"sending {what}: {error}",
                address=f"{host}:{port}",
            )
        failure.__cause__ = error
        return failure

    def close(self) -> None:
        """Finalize the client engine (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._addresses.clear()
            self._engine.finalize()


class _Exposed:
    """Read-only bulk handles over stored objects, one per object id."""

    def __init__(self, lib: ModuleType, engine: Any) -> None:
        self._lib = lib
        self._engine = engine
        self._handles: dict[str, tuple[BytesLike, Any]] = {}
        self._lock = threading.Lock()

    def handle(self, obj_id: str, buffer: BytesLike) -> Any:
        """The bulk handle of `buffer`, created on the object's first get."""
        with self._lock:
            known = self._handles.get(obj_id)
            if known is not None and known[0] is buffer:
                return known[1]
            bulk = self._engine.create_bulk(buffer, self._lib.bulk.read_only)
            self._handles[obj_id] = (buffer, bulk)
            return bulk

    def forget(self, obj_id: str) -> None:
        """Free the handle of an evicted or overwritten object."""
        with self._lock:
            self._handles.pop(obj_id, None)

    def __len__(self) -> int:
        return len(self._handles)


def _answerer(
    lib: ModuleType, engine: Any, handler: RequestHandler
) -> Callable[[Any, BytesLike, Any, int], None]:
    """Build the RPC callback: pull a put's object, handle, answer with a plan.

    The callback's `exposed` attribute holds the bulk handles of stored objects.
    """
    exposed = _Exposed(lib, engine)

    def on_rpc(handle: Any, frames: BytesLike, bulk: Any, size: int) -> None:
        obj_id = ""
        try:
            pulled = None
            if bulk is not None:
                origin = getattr(handle, "address", None) or handle.get_addr()
                pulled = _pull(lib, engine, origin, bulk, int(size))
            header, payload = _unpack(frames, pulled)
            request = decode_request(header, payload)
        except Exception as exc:  # a malformed request gets an error answer
            response = Response(Op.PING, Status.ERROR, text=f"bad request: {exc}")
        else:
            obj_id = request.obj_id
            if request.op in (Op.PUT, Op.EVICT):
                exposed.forget(obj_id)  # its old buffer is about to go
            response = handler(request)
        plan = plan_payload(encode_response(response), response.payload)
        out = None
        if plan.bulk is not None:
            if len(response.payload) == 1:
                out = exposed.handle(obj_id, response.payload[0])
            else:  # joined into a copy: expose that copy, for this answer only
                out = engine.create_bulk(plan.bulk, lib.bulk.read_only)
        handle.respond((plan.frames, out, plan.bulk_size))

    on_rpc.exposed = exposed  # type: ignore[attr-defined]
    return on_rpc


def serve(
    address: str,
    port: int,
    handler: RequestHandler,
    *,
    options: Mapping[str, str],
    should_stop: Callable[[], bool],
    on_ready: Callable[[], None] = no_op,
) -> None:
    """Answer DIM requests with a Margo engine until `should_stop()`.

    Option `protocol` (required): a `Protocol` value such as `ofi+tcp`.

    Raises:
        TransportUnavailableError: If `pymargo` is not installed.
        KeyError: If the `protocol` option is missing.
        ValueError: If the protocol is unknown or not addressable by host and port.
    """
    url = mercury_address(options["protocol"], address, port)
    lib = _pymargo()
    engine = lib.core.Engine(url, mode=lib.core.server, use_progress_thread=True)
    engine.register(_RPC_NAME, _answerer(lib, engine, handler))

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
    """Return once the Margo DIM server at `address:port` answers a ping.

    Raises:
        ServerTimeoutError: If it does not answer within `timeout` seconds.
        TransportUnavailableError: If `pymargo` is not installed.
    """
    transport = MargoTransport(protocol)
    try:
        transport.exchange(address, port, [Request(Op.PING)], timeout)
    finally:
        transport.close()


def start_server(url: str) -> None:
    """Run a Margo DIM server at `url` (`protocol://host:port`) in this process."""
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
        ServerTimeoutError: If it does not answer within `spawn_timeout` seconds.
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
        address: Address of this peer's server (wins over `interface`).
        interface: Network interface whose IPv4 address to use.
        timeout: Seconds any request may take (plus time proportional to size).
        force_spawn_server: Spawn a server without first looking for one.

    Raises:
        TransportUnavailableError: If `pymargo` is not installed.
        ValueError: If `protocol` is not a known Mercury transport addressable by
            host and port.
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
        mercury_address(self.protocol, "localhost", port)
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
