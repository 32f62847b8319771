"""Unit tests of proxystore.connectors.dim.margo without a Margo runtime.

pymargo cannot be installed here (it is built with Mochi through Spack), so these
tests drive the transport against a small in-process stand-in with the same API
(`Engine`, `register(...).on(addr)(...)`, `create_bulk`, `transfer`). It pickles
RPC arguments and answers like pymargo does and counts RPCs, bulk registrations
and transfers, so the wire format, the request/response handling, the timeouts,
the error translation and the bulk-transfer plan are checked for real. Real
peers run in `tests/integration/test_dim_margo.py` where pymargo exists.
"""

from __future__ import annotations

import pickle
import threading
import time
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from proxystore.connectors.dim import margo
from proxystore.connectors.dim.exceptions import (
    DIMServerError,
    MessageDecodeError,
    ServerTimeoutError,
)
from proxystore.connectors.dim.margo import (
    INLINE_MAX,
    MargoConnector,
    MargoTransport,
    Protocol,
    mercury_address,
    plan_payload,
    serve,
)
from proxystore.connectors.dim.models import Op, Request, Status, encode_request
from proxystore.connectors.dim.server import DIMStorage
from proxystore.connectors.dim.transport import RequestHandler

HOST = "127.0.0.1"


class MargoException(Exception):
    """Stand-in for pymargo.core.MargoException."""


class _Bulk:
    """A registered memory region; pickles as its id, like a serialized handle."""

    def __init__(self, fake: FakeMargo, region: int) -> None:
        self._fake = fake
        self.region = region

    def __reduce__(self) -> tuple[Any, ...]:
        return (_lookup_bulk, (self.region,))


_BULKS: dict[int, tuple[memoryview, str]] = {}
_FAKE: list[FakeMargo] = []


def _lookup_bulk(region: int) -> _Bulk:
    return _Bulk(_FAKE[-1], region)


class _Handle:
    def __init__(self, address: str) -> None:
        self.address = address
        self.answer: bytes | None = None

    def respond(self, value: Any) -> None:
        self.answer = pickle.dumps(value)


class FakeMargo:
    """The parts of pymargo the transport uses, in one process."""

    def __init__(self) -> None:
        self.servers: dict[str, Callable[..., None]] = {}
        self.rpcs: list[tuple[str, float]] = []  # (address, timeout in ms)
        self.pulls: list[int] = []
        self.registrations: list[str] = []
        self.delay = 0.0
        self.fail_forward: Exception | None = None
        self.answer_override: Any = None
        self.module = self._module()

    def _module(self) -> types.ModuleType:
        fake = self
        core = types.SimpleNamespace(
            Engine=lambda addr, mode, use_progress_thread=False: _Engine(
                fake, addr, mode
            ),
            client="client",
            server="server",
            MargoException=MargoException,
        )
        bulk = types.SimpleNamespace(
            read_only="r", write_only="w", pull="pull", push="push"
        )
        module = types.ModuleType("pymargo")
        module.core = core  # type: ignore[attr-defined]
        module.bulk = bulk  # type: ignore[attr-defined]
        return module


class _Engine:
    def __init__(self, fake: FakeMargo, addr: str, mode: str) -> None:
        self.fake = fake
        self.addr = addr
        self.mode = mode
        self.done = threading.Event()

    def register(self, name: str, func: Callable[..., None] | None = None) -> Any:
        assert name == "proxystore_dim"
        if func is not None:
            assert self.mode == "server"
            self.fake.servers[self.addr] = func
            self.registered = func
        return types.SimpleNamespace(on=lambda address: self._caller(address))

    def _caller(self, address: str) -> Callable[..., Any]:
        def call(*args: Any, timeout: float = 0.0) -> Any:
            fake = self.fake
            fake.rpcs.append((address, timeout))
            if fake.fail_forward is not None:
                raise fake.fail_forward
            server = fake.servers.get(address)
            if server is None:
                raise MargoException(f"HG_TIMEOUT forwarding to {address}")
            handle = _Handle(f"client-of-{address}")
            server(handle, *pickle.loads(pickle.dumps(args)))
            if fake.delay:
                time.sleep(fake.delay)
            if fake.answer_override is not None:
                return fake.answer_override
            assert handle.answer is not None
            return pickle.loads(handle.answer)

        return call

    def lookup(self, url: str) -> str:
        return url

    def create_bulk(self, buffer: Any, mode: str) -> _Bulk:
        region = len(_BULKS) + 1
        _BULKS[region] = (memoryview(buffer).cast("B"), mode)
        self.fake.registrations.append(mode)
        return _Bulk(self.fake, region)

    def transfer(self, **kwargs: Any) -> None:
        assert kwargs["op"] == "pull"
        source, source_mode = _BULKS[kwargs["origin_handle"].region]
        target, target_mode = _BULKS[kwargs["local_handle"].region]
        assert (source_mode, target_mode) == ("r", "w")
        size = kwargs["size"]
        start = kwargs["origin_offset"]
        target[kwargs["local_offset"] : size] = source[start : start + size]
        self.fake.pulls.append(size)

    def finalize(self) -> None:
        self.fake.servers.pop(self.addr, None)
        self.done.set()

    def wait_for_finalize(self) -> None:
        self.done.wait()


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeMargo:
    instance = FakeMargo()
    _FAKE.append(instance)
    monkeypatch.setattr(margo, "_pymargo", lambda: instance.module)
    return instance


class _Server:
    def __init__(self, port: int, handler: RequestHandler | None = None) -> None:
        self.port = port
        self.storage = DIMStorage()
        self._stop = threading.Event()
        ready = threading.Event()
        self._thread = threading.Thread(
            target=serve,
            args=(HOST, port, handler or self.storage.handle),
            kwargs={
                "options": {"protocol": "ofi+tcp"},
                "should_stop": self._stop.is_set,
                "on_ready": ready.set,
            },
        )
        self._thread.start()
        assert ready.wait(5)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        assert not self._thread.is_alive()


@pytest.fixture
def server(fake: FakeMargo) -> Iterator[_Server]:
    running = _Server(6000)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def transport(fake: FakeMargo) -> Iterator[MargoTransport]:
    client = MargoTransport(Protocol.OFI_TCP)
    try:
        yield client
    finally:
        client.close()


def test_mercury_address_names_the_provider() -> None:
    assert mercury_address("ofi+tcp", "h", 1) == "ofi+tcp;ofi_rxm://h:1"
    assert mercury_address(Protocol.OFI_VERBS, "h", 2) == "ofi+verbs;ofi_rxm://h:2"
    assert mercury_address("ucx+verbs", "h", 3) == "ucx+rc_verbs://h:3"
    with pytest.raises(ValueError, match="not addressable"):
        mercury_address(Protocol.SM_SHM, "h", 1)
    with pytest.raises(ValueError, match="carrier"):
        mercury_address("carrier-pigeon", "h", 1)


def test_small_payload_travels_inline() -> None:
    plan = plan_payload(b"head", [b"a" * INLINE_MAX])
    assert plan.bulk is None
    assert plan.bulk_size == 0


def test_large_payload_is_one_bulk_buffer_without_copy() -> None:
    data = bytearray(INLINE_MAX + 1)
    plan = plan_payload(b"head", [data])
    assert isinstance(plan.bulk, memoryview)
    assert plan.bulk.obj is data  # exposed in place, not copied
    assert plan.bulk_size == len(data)


def test_typed_and_multipart_payloads_become_one_byte_buffer() -> None:
    import array

    numbers = array.array("d", range(INLINE_MAX))
    plan = plan_payload(b"h", [memoryview(numbers)])
    assert plan.bulk_size == numbers.itemsize * len(numbers)
    parts = [b"x" * INLINE_MAX, b"y" * 10]
    assert bytes(plan_payload(b"h", parts).bulk or b"") == b"".join(parts)


def test_put_and_get_pull_each_large_object_once(
    fake: FakeMargo, server: _Server, transport: MargoTransport
) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    put = transport.exchange(
        HOST, server.port, [Request(Op.PUT, "obj", (data,))], timeout=5
    )
    assert put[0].status is Status.OK
    assert fake.pulls == [len(data)]  # the server pulled it, in one transfer
    assert len(fake.rpcs) == 1  # one RPC, no per-chunk messages
    for _ in range(2):
        (got,) = transport.exchange(HOST, server.port, [Request(Op.GET, "obj")], 5)
        assert got.status is Status.OK
        assert bytes(got.payload[0]) == data
    assert fake.pulls == [len(data)] * 3
    # The stored object is registered once, then its handle is reused.
    assert fake.registrations.count("r") == 2  # the client's put + one on server
    exposed = fake.servers[mercury_address("ofi+tcp", HOST, server.port)].exposed  # type: ignore[attr-defined]
    assert len(exposed) == 1
    transport.exchange(HOST, server.port, [Request(Op.EVICT, "obj")], 5)
    assert len(exposed) == 0


def test_small_objects_need_no_bulk(
    fake: FakeMargo, server: _Server, transport: MargoTransport
) -> None:
    requests = [Request(Op.PUT, "a", (b"tiny",)), Request(Op.GET, "a")]
    put, got = transport.exchange(HOST, server.port, requests, timeout=5)
    assert put.status is Status.OK
    assert bytes(got.payload[0]) == b"tiny"
    assert fake.pulls == []
    assert fake.registrations == []


def test_every_rpc_carries_the_timeout_in_ms(
    fake: FakeMargo, server: _Server, transport: MargoTransport
) -> None:
    transport.exchange(HOST, server.port, [Request(Op.PING)], timeout=2.5)
    assert fake.rpcs == [(mercury_address("ofi+tcp", HOST, server.port), 2500.0)]


def test_slow_server_times_out_naming_the_peer(
    fake: FakeMargo, server: _Server, transport: MargoTransport
) -> None:
    fake.delay = 3.0
    start = time.monotonic()
    with pytest.raises(ServerTimeoutError, match=f"{HOST}:{server.port}") as info:
        transport.exchange(HOST, server.port, [Request(Op.PING)], timeout=0.2)
    assert time.monotonic() - start < 2.5
    assert info.value.address == f"{HOST}:{server.port}"


@pytest.mark.parametrize(
    ("error", "match"),
    [
        (MargoException("HG_TIMEOUT"), "did not answer"),
        (MargoException("HG_NODEV: no such device"), "not reachable over Margo"),
    ],
)
def test_margo_errors_become_server_timeouts(
    fake: FakeMargo, transport: MargoTransport, error: Exception, match: str
) -> None:
    fake.fail_forward = error
    with pytest.raises(ServerTimeoutError, match=match) as info:
        transport.exchange(HOST, 7001, [Request(Op.PING)], timeout=1)
    assert info.value.address == f"{HOST}:7001"
    assert info.value.__cause__ is error


def test_missing_server_is_a_timeout(
    fake: FakeMargo, transport: MargoTransport
) -> None:
    with pytest.raises(ServerTimeoutError):
        transport.exchange(HOST, 7002, [Request(Op.PING)], timeout=1)


def test_other_errors_pass_through(fake: FakeMargo, transport: MargoTransport) -> None:
    fake.fail_forward = KeyError("not margo")
    with pytest.raises(KeyError):
        transport.exchange(HOST, 7003, [Request(Op.PING)], timeout=1)


@pytest.mark.parametrize("answer", ["garbage", (b"\x00", None, 0)])
def test_malformed_answer_is_a_decode_error(
    fake: FakeMargo, server: _Server, transport: MargoTransport, answer: Any
) -> None:
    fake.answer_override = answer
    with pytest.raises(MessageDecodeError):
        transport.exchange(HOST, server.port, [Request(Op.PING)], timeout=5)


def test_malformed_request_gets_an_error_answer(
    fake: FakeMargo, server: _Server
) -> None:
    on_rpc = fake.servers[mercury_address("ofi+tcp", HOST, server.port)]
    handle = _Handle("someone")
    on_rpc(handle, b"not frames", None, 0)
    assert handle.answer is not None
    frames, bulk, size = pickle.loads(handle.answer)
    assert (bulk, size) == (None, 0)
    response = margo._unpack(frames, None)
    from proxystore.connectors.dim.models import decode_response

    decoded = decode_response(*response)
    assert decoded.status is Status.ERROR
    assert "bad request" in decoded.text


def test_request_with_inline_and_bulk_payload_is_rejected(
    fake: FakeMargo, server: _Server
) -> None:
    on_rpc = fake.servers[mercury_address("ofi+tcp", HOST, server.port)]
    engine = _Engine(fake, "client", "client")
    bulk = engine.create_bulk(b"x" * 10, "r")
    from proxystore.connectors.dim.models import pack_frames

    frames = pack_frames([encode_request(Request(Op.PUT, "k", (b"y",))), b"y"])
    handle = _Handle("someone")
    on_rpc(handle, frames, bulk, 10)
    assert handle.answer is not None
    assert b"both inline and bulk" in handle.answer


def test_connector_over_the_stand_in(fake: FakeMargo, server: _Server) -> None:
    with MargoConnector(server.port, "ofi+tcp", address=HOST, timeout=5) as connector:
        assert connector.server is None  # attached to the running server
        big = bytes(INLINE_MAX * 3)
        key = connector.put(big)
        assert connector.get(key) == big
        assert connector.get_batch([key, connector.put(b"s")]) == [big, b"s"]
        connector.evict(key)
        assert connector.get(key) is None
        config = connector.config()
        assert config["protocol"] == "ofi+tcp"
        assert config["force_spawn_server"] is False


def test_server_errors_reach_the_connector(fake: FakeMargo) -> None:
    def broken(request: Request) -> Any:
        from proxystore.connectors.dim.models import Response

        if request.op is Op.PING:
            return Response(Op.PING, Status.OK, request_id=request.request_id)
        return Response(
            request.op, Status.ERROR, request_id=request.request_id, text="disk on fire"
        )

    running = _Server(6100, broken)
    try:
        with (
            MargoConnector(running.port, "ofi+tcp", address=HOST) as connector,
            pytest.raises(DIMServerError, match="disk on fire"),
        ):
            connector.put(b"x")
    finally:
        running.stop()


def test_shared_memory_protocol_is_rejected_by_the_connector() -> None:
    with pytest.raises(ValueError, match="not addressable"):
        MargoConnector(1, Protocol.SM_SHM, address=HOST)
