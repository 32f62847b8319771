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

How a call is bounded and cleaned up: each RPC runs in the caller's thread with
Margo's own timeout (`margo_provider_forward_timed`, driven by the engine's
progress thread), so no thread is started per exchange. pymargo reports a
failure as `MargoException` with the text ``<function>() returned <code>``
(no code attribute); the code is a Mercury ``hg_return_t`` (`HG_RETURN_CODES`)
and is translated by number: 20 (`HG_TIMEOUT`) is a timeout, any other code is
named in the error. Mercury refuses to finalize an engine while RPC handles,
addresses or bulk handles are alive, and pymargo objects are freed only when
Python drops them; so a failed exchange keeps no pymargo object: the frames of
the failure (which hold the RPC handle and the address) are dropped before it
is raised, and `MargoTransport.close` releases the cached addresses and waits
for running exchanges before it finalizes the engine.

Note:
    pymargo cannot be installed on this project's CI, so the real-peer tests in
    `tests/integration/test_dim_margo.py` are skipped there; the wire format,
    request/response handling, timeouts, error translation, the bulk plan and
    the lifetime of pymargo objects are unit-tested against an in-process
    stand-in that follows py-mochi-margo's API and Mercury's rules.
"""

from __future__ import annotations

import enum
import ipaddress
import itertools
import logging
import re
import socket
import subprocess
import threading
import time
import traceback
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
from proxystore.connectors.dim.utils import interface_addresses
from proxystore.connectors.exceptions import ConnectorConnectionError
from proxystore.connectors.protocols import BytesLike

__all__ = [
    "HG_RETURN_CODES",
    "HG_TIMEOUT",
    "INLINE_MAX",
    "BulkPlan",
    "MargoConnector",
    "MargoTransport",
    "Protocol",
    "bind_problem",
    "mercury_address",
    "mercury_code",
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

# Seconds `MargoTransport.close` waits, beyond the longest timeout it has seen,
# for running exchanges to return before it finalizes the engine anyway.
_CLOSE_GRACE = 5.0

#: Mercury's return codes (``hg_return_t``, ``HG_RETURN_VALUES`` in
#: ``mercury_core_types.h``): number -> (name, meaning). These numbers hold for
#: every Mercury 2.x; the codes after ``HG_CANCELED`` moved in 2.4, which
#: inserted ``HG_IO_ERROR`` at 22 (see `_HG_RETURN_MOVED`).
HG_RETURN_CODES: dict[int, tuple[str, str]] = {
    0: ("HG_SUCCESS", "operation succeeded"),
    1: ("HG_PERMISSION", "operation not permitted"),
    2: ("HG_NOENTRY", "no such file or directory"),
    3: ("HG_INTERRUPT", "operation interrupted"),
    4: ("HG_AGAIN", "operation must be retried"),
    5: ("HG_NOMEM", "out of memory"),
    6: ("HG_ACCESS", "permission denied"),
    7: ("HG_FAULT", "bad address"),
    8: ("HG_BUSY", "device or resource busy"),
    9: ("HG_EXIST", "entry already exists"),
    10: ("HG_NODEV", "no such device"),
    11: ("HG_INVALID_ARG", "invalid argument"),
    12: ("HG_PROTOCOL_ERROR", "protocol error"),
    13: ("HG_OVERFLOW", "value too large"),
    14: ("HG_MSGSIZE", "message size too long"),
    15: ("HG_PROTONOSUPPORT", "protocol not supported"),
    16: ("HG_OPNOTSUPPORTED", "operation not supported on endpoint"),
    17: ("HG_ADDRINUSE", "address already in use"),
    18: ("HG_ADDRNOTAVAIL", "cannot assign requested address"),
    19: ("HG_HOSTUNREACH", "cannot reach host during operation"),
    20: ("HG_TIMEOUT", "operation reached timeout"),
    21: ("HG_CANCELED", "operation canceled"),
}
# Codes whose name depends on the Mercury version (2.4 first, then 2.0-2.3).
_HG_RETURN_MOVED = {
    22: "HG_IO_ERROR: I/O error (Mercury 2.4; HG_CHECKSUM_ERROR before)",
    23: "HG_CHECKSUM_ERROR (Mercury 2.4; HG_NA_ERROR, a network error, before)",
    24: "HG_NA_ERROR: generic network error (Mercury 2.4; HG_OTHER_ERROR before)",
    25: "HG_OTHER_ERROR: generic Mercury error",
}
#: The code of a Margo call that ran out of time.
HG_TIMEOUT = 20
# pymargo's MargoException text: "margo_provider_forward_timed() returned 20".
_RETURNED = re.compile(r"(\w+)\(\) returned (\d+)")
# Providers that listen only on an address some network interface carries.
_INTERFACE_BOUND = {
    Protocol.OFI_TCP: "libfabric's tcp provider",
    Protocol.OFI_VERBS: "libfabric's verbs provider",
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


def mercury_code(error: BaseException) -> int | None:
    """The Mercury return code in a pymargo error's text, or `None`.

    pymargo's `MargoException` carries only its message,
    ``<function>() returned <code>``; there is no code attribute.
    """
    found = _RETURNED.search(str(error))
    return int(found.group(2)) if found else None


def _describe_code(code: int | None) -> str:
    if code is None:
        return "no Mercury return code in the message"
    known = HG_RETURN_CODES.get(code)
    if known is not None:
        return f"{known[0]}: {known[1]}"
    return _HG_RETURN_MOVED.get(code, f"Mercury return code {code}")


def bind_problem(protocol: Protocol | str, host: str) -> str | None:
    """Say why a `protocol` server could not listen on `host` here, if known.

    libfabric's providers (`ofi+tcp`, `ofi+verbs`) listen only on an address
    that a network interface carries: with only ``127.0.0.1/8`` on ``lo``,
    ``127.0.0.2`` is refused (Mercury prints ``na_ofi_verify_info() No provider
    found ... on domain "127.0.0.2"`` and ``margo_init()`` fails), although the
    kernel would let a socket bind it. Other protocols are not checked.

    Returns:
        `None` when nothing is known against `host`, else the reason.
    """
    provider = _INTERFACE_BOUND.get(Protocol(protocol))
    if provider is None:
        return None
    try:
        ip = str(ipaddress.ip_address(host))
    except ValueError:
        try:
            ip = socket.gethostbyname(host)
        except OSError as exc:
            return f"{host!r} does not resolve to an address here: {exc}"
    try:
        assigned = interface_addresses()
    except OSError:  # cannot tell: let Mercury decide
        return None
    if ip in assigned:
        return None
    listed = ", ".join(f"{addr} ({name})" for addr, name in assigned.items())
    how = (
        f"`ip addr add {ip}/8 dev lo`"
        if ipaddress.ip_address(ip).is_loopback
        else "an interface carrying it"
    )
    return (
        f"{host} is not the address of any network interface here, and "
        f"{provider} listens only on interface addresses (this host has "
        f"{listed or 'none'}); add it ({how}) or use one of those"
    )


def _drop_frames(error: BaseException) -> None:
    """Drop the tracebacks of `error` and of the errors it chains to.

    A traceback keeps every frame it passed through alive with its locals:
    here pymargo's `_forward` frame (holding the RPC handle) and ours (holding
    the address and bulk handles), which Mercury needs freed before finalize.
    """
    pending: list[BaseException] = [error]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        current.__traceback__ = None
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                pending.append(linked)


class _Expired(Exception):
    """The exchange's time ran out between two of its RPCs."""


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

    An exchange runs in the caller's thread; each RPC carries what is left of
    the exchange's time as Margo's own timeout, which Margo enforces from its
    progress thread. Exchanges may run concurrently; `close` waits for them.

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
        self._idle = threading.Condition(self._lock)
        self._running = 0  # exchanges in progress
        self._longest = 0.0  # longest timeout given so far
        self._closed = False

    def _address(self, host: str, port: int) -> Any:
        with self._lock:
            address = self._addresses.get((host, port))
        if address is None:
            found = self._engine.lookup(mercury_address(self.protocol, host, port))
            with self._lock:
                address = self._addresses.setdefault((host, port), found)
        return address

    def _call(
        self, host: str, port: int, requests: Sequence[Request], deadline: float
    ) -> list[Response]:
        address = self._address(host, port)
        responses = []
        for request in requests:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Expired
            rid = next(self._ids) & 0xFFFFFFFF
            plan = plan_payload(encode_request(request, rid), request.payload)
            bulk = None
            if plan.bulk is not None:
                bulk = self._engine.create_bulk(plan.bulk, self._lib.bulk.read_only)
            answer = self._rpc.on(address)(
                plan.frames,
                bulk,
                plan.bulk_size,
                timeout=remaining * 1000.0,  # margo_forward_timed takes ms
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

    def _attempt(
        self, host: str, port: int, requests: Sequence[Request], timeout: float
    ) -> list[Response] | BaseException:
        """Run the exchange; return its responses or the error to raise.

        The error comes back without the frames it was raised through, so no
        RPC handle, address or bulk handle outlives this call.
        """
        what = f"{len(requests)} request(s)"
        try:
            return self._call(host, port, requests, time.monotonic() + timeout)
        except _Expired:
            return timeout_error(host, port, timeout, what)
        except BaseException as exc:
            if logger.isEnabledFor(logging.DEBUG):  # as text: a record keeps no frame
                logger.debug(
                    "Margo exchange with %s:%s failed:\n%s",
                    host,
                    port,
                    "".join(traceback.format_exception(exc)).rstrip(),
                )
            _drop_frames(exc)
            return self._translate(exc, host, port, timeout, what)

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
            RuntimeError: If the transport is closed.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("MargoTransport is closed")
            self._running += 1
            self._longest = max(self._longest, timeout)
        try:
            outcome = self._attempt(host, port, requests, timeout)
        finally:
            with self._lock:
                self._running -= 1
                if not self._running:
                    self._idle.notify_all()
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _translate(
        self,
        error: BaseException,
        host: str,
        port: int,
        timeout: float,
        what: str,
    ) -> BaseException:
        """Map a Margo failure to `ServerTimeoutError`; leave others as they are.

        The Mercury code is read from the message by number: `HG_TIMEOUT` (20)
        is a timeout; any other code is named in the error.
        """
        margo_error = getattr(self._lib.core, "MargoException", None)
        from_margo = margo_error is not None and isinstance(error, margo_error)
        # pymargo raises the builtin TimeoutError when a reply is HG_TIMEOUT.
        timed_out = type(error) is TimeoutError
        if not (from_margo or timed_out):
            return error
        with self._lock:
            self._addresses.pop((host, port), None)
        code = HG_TIMEOUT if timed_out else mercury_code(error)
        if code == HG_TIMEOUT:
            failure = timeout_error(host, port, timeout, what)
        else:
            failure = ServerTimeoutError(
                f"DIM server at {host}:{port} is not reachable over Margo while "
                f"sending {what}: {error} ({_describe_code(code)})",
                address=f"{host}:{port}",
            )
        failure.__cause__ = error
        return failure

    def close(self) -> None:
        """Release every pymargo object, then finalize the engine (idempotent).

        Running exchanges (each bounded by its timeout) are waited for first:
        Mercury cannot finalize while their handles are alive.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if not self._idle.wait_for(
                lambda: not self._running, self._longest + _CLOSE_GRACE
            ):
                logger.warning(
                    "finalizing the Margo client engine with %d exchange(s) "
                    "still running",
                    self._running,
                )
            self._addresses.clear()
        self._engine.finalize()


class _Exposed:
    """Read-only bulk handles over stored objects, one per object id."""

    def __init__(self, lib: ModuleType, engine: Any) -> None:
        self._lib = lib
        self._engine = engine
        self._handles: dict[str, tuple[BytesLike, Any]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def handle(self, obj_id: str, buffer: BytesLike) -> Any:
        """The bulk handle of `buffer`, created on the object's first get.

        Once closed, a handle is made for the one answer and not kept.
        """
        with self._lock:
            known = self._handles.get(obj_id)
            if known is not None and known[0] is buffer:
                return known[1]
            bulk = self._engine.create_bulk(buffer, self._lib.bulk.read_only)
            if not self._closed:
                self._handles[obj_id] = (buffer, bulk)
            return bulk

    def forget(self, obj_id: str) -> None:
        """Free the handle of an evicted or overwritten object."""
        with self._lock:
            self._handles.pop(obj_id, None)

    def close(self) -> None:
        """Free every handle (before the engine is finalized) and keep no more."""
        with self._lock:
            self._closed = True
            self._handles.clear()

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
            if request.op in (Op.PUT, Op.PUT_TTL, Op.EVICT):
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
        ConnectorConnectionError: If Margo cannot listen there; the message
            names the reason when it is known (`bind_problem`), and Mercury's
            own lines are on stderr.
    """
    protocol = options["protocol"]
    url = mercury_address(protocol, address, port)
    lib = _pymargo()
    engine = _listen(lib, url, protocol, address, port)
    answer = _answerer(lib, engine, handler)
    engine.register(_RPC_NAME, answer)

    def watch() -> None:
        while not should_stop():
            time.sleep(0.1)
        answer.exposed.close()  # type: ignore[attr-defined]
        engine.finalize()

    threading.Thread(target=watch, name="dim-margo-stop", daemon=True).start()
    on_ready()
    engine.wait_for_finalize()


def _listen(lib: ModuleType, url: str, protocol: str, host: str, port: int) -> Any:
    """Start a server engine on `url`, naming the reason when Margo cannot."""
    try:
        return lib.core.Engine(url, mode=lib.core.server, use_progress_thread=True)
    except Exception as exc:  # pymargo: RuntimeError("margo_init() returned ...")
        problem = bind_problem(protocol, host)
        reason = problem or "Mercury prints its reason on stderr"
        raise ConnectorConnectionError(
            f"Margo cannot listen on {url} ({exc}): {reason}",
            address=f"{host}:{port}",
        ) from exc


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
