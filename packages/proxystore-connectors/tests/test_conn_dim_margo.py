"""Unit tests of proxystore.connectors.dim.margo without a Margo runtime.

pymargo cannot be installed here (it is built with Mochi through Spack), so these
tests drive the transport against an in-process stand-in that follows
py-mochi-margo's API and the rules of the Mochi runtime under it:

* `Engine.register(name)` gives a remote function; `.on(address)` creates one
  RPC handle, and `CallableRemoteFunction._forward` calls `handle._forward`, so
  the handle lives in that frame while the call runs (and in any traceback
  raised through it). RPC arguments are pickled; bulk handles travel by id.
* Failures raise `MargoException("<function>() returned <code>")`, the
  message of pymargo's pybind11 exception, with no code attribute; a forward
  past its timeout returns Mercury's `HG_TIMEOUT` (20) after that timeout.
* Mercury counts live RPC handles, addresses and bulk handles: finalizing an
  engine while any is alive makes Mercury print its errors (a `MercuryError`
  warning here, which `filterwarnings = error` turns into a failure), and an
  address freed after finalize raises `margo_addr_free() returned 11`, which
  Python reports as an unraisable exception.
* A server cannot listen on an address no interface carries (libfabric):
  Mercury prints its reason on stderr and `margo_init()` fails.

Real peers run in `tests/integration/test_dim_margo.py` where pymargo exists.
"""

from __future__ import annotations

import array
import itertools
import logging
import os
import pickle
import sys
import textwrap
import threading
import time
import types
import warnings
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from proxystore.connectors.dim import margo
from proxystore.connectors.dim.exceptions import (
    DIMServerError,
    MessageDecodeError,
    ServerTimeoutError,
)
from proxystore.connectors.dim.margo import (
    HG_RETURN_CODES,
    HG_TIMEOUT,
    INLINE_MAX,
    MargoConnector,
    MargoTransport,
    Protocol,
    bind_problem,
    mercury_address,
    mercury_code,
    plan_payload,
    serve,
    spawn_server,
)
from proxystore.connectors.dim.models import (
    Op,
    Request,
    Response,
    Status,
    decode_response,
    encode_request,
    pack_frames,
)
from proxystore.connectors.dim.server import DIMStorage
from proxystore.connectors.dim.transport import RequestHandler
from proxystore.connectors.dim.utils import interface_addresses
from proxystore.connectors.exceptions import ConnectorConnectionError

HOST = "127.0.0.1"
HG_INVALID_ARG = 11  # mercury_core_types.h


# --------------------------------------------------------------- the stand-in
class MargoException(Exception):
    """Stand-in for pymargo.core.MargoException (its message only, no code)."""


class MercuryError(RuntimeWarning):
    """What Mercury prints on stderr when finalized with objects still alive."""


def _returned(function: str, code: int) -> MargoException:
    return MargoException(f"{function}() returned {code}")


class _Instance:
    """A margo_instance_id: what is alive in its Mercury class and context."""

    def __init__(self, fake: FakeMargo, url: str) -> None:
        self.fake = fake
        self.url = url
        self.handles: weakref.WeakSet[object] = weakref.WeakSet()
        self.addresses: weakref.WeakSet[object] = weakref.WeakSet()
        self.bulks: weakref.WeakSet[object] = weakref.WeakSet()
        self.finalized = False

    def finalize(self) -> None:
        lines = []
        if self.handles:
            lines.append(
                "hg_core_context_destroy(): HG core handles must be freed before "
                f"destroying context ({len(self.handles)} remaining)"
            )
        if self.bulks:
            lines.append(
                "hg_core_finalize(): HG bulk handles must be destroyed before "
                f"finalizing HG ({len(self.bulks)} remaining)"
            )
        if self.addresses:
            lines.append(
                "hg_core_finalize(): HG addrs must be freed before finalizing HG "
                f"({len(self.addresses)} remaining)"
            )
        self.finalized = True
        if lines:
            lines.append("HG_Finalize(): Could not finalize HG core class")
            self.fake.complaints.extend(lines)
            warnings.warn("\n".join(lines), MercuryError, stacklevel=3)


_current = threading.local()  # the instance pickled bulk handles belong to


def _with_mid(mid: _Instance, convert: Callable[[Any], Any], value: Any) -> Any:
    """Run pickle's `convert` with bulk handles bound to `mid` (as pymargo)."""
    _current.mid = mid
    try:
        return convert(value)
    finally:
        _current.mid = None


def _dumps(mid: _Instance, data: Any) -> bytes:
    raw: bytes = _with_mid(mid, pickle.dumps, data)
    return raw


def _loads(mid: _Instance, raw: bytes) -> Any:
    return _with_mid(mid, pickle.loads, raw)


class _Address:
    """pymargo.core.Address: frees its hg_addr_t when dropped."""

    def __init__(self, mid: _Instance, url: str) -> None:
        self._mid = mid
        self.url = url
        mid.addresses.add(self)

    def __del__(self) -> None:
        if self._mid.finalized:
            raise _returned("margo_addr_free", HG_INVALID_ARG)


class _Bulk:
    """pymargo.bulk.Bulk over a registered region; pickles as the region id."""

    def __init__(self, mid: _Instance, region: int, *, owner: bool) -> None:
        self._mid = mid
        self.region = region
        self._owner = owner
        mid.bulks.add(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_deserialize_bulk, (self.region,))

    def __del__(self) -> None:
        if self._owner:
            self._mid.fake.regions.pop(self.region, None)
        if self._mid.finalized:
            raise _returned("margo_bulk_free", HG_INVALID_ARG)


def _deserialize_bulk(region: int) -> _Bulk:
    return _Bulk(_current.mid, region, owner=False)


class _ServerHandle:
    """The pymargo Handle a server's RPC function receives."""

    def __init__(self, mid: _Instance, origin: str) -> None:
        self._mid = mid
        self._origin = origin
        self.answer: bytes | None = None
        mid.handles.add(self)

    def get_addr(self) -> _Address:
        return _Address(self._mid, self._origin)  # a copy, freed when dropped

    address = property(get_addr)

    def respond(self, data: Any = None) -> None:
        self.answer = _dumps(self._mid, data)


class _HgHandle:
    """A client RPC handle (pymargo's C++ Handle): holds its address."""

    def __init__(self, mid: _Instance, address: _Address) -> None:
        self._mid = mid
        self._address = address
        mid.handles.add(self)

    def _forward(
        self, provider_id: int = 0, input: bytes = b"", timeout: float = 0.0
    ) -> bytes:
        fake = self._mid.fake
        url = self._address.url
        fake.rpcs.append((url, timeout))
        if fake.fail_forward is not None:
            raise fake.fail_forward
        limit = timeout / 1000.0 if timeout > 0 else float("inf")
        server = fake.servers.get(url)
        if server is None:  # nobody answers: Margo's timer ends the forward
            time.sleep(limit)
            raise _returned("margo_provider_forward_timed", HG_TIMEOUT)
        answer = server(self._mid.url, input)
        if fake.delay >= limit:
            time.sleep(limit)
            raise _returned("margo_provider_forward_timed", HG_TIMEOUT)
        time.sleep(fake.delay)
        if fake.answer_override is not None:
            return _dumps(self._mid, fake.answer_override)
        return answer


class _CallableRemoteFunction:
    """pymargo.core.CallableRemoteFunction: `_forward` runs with the handle."""

    def __init__(self, handle: _HgHandle) -> None:
        self._handle = handle

    def __call__(self, *args: Any, timeout: float = 0.0) -> Any:
        return self._forward(*args, timeout=timeout)

    def _forward(self, *args: Any, timeout: float = 0.0) -> Any:
        raw = _dumps(self._handle._mid, {"args": args, "kwargs": {}})
        raw_response = self._handle._forward(provider_id=0, input=raw, timeout=timeout)
        return _loads(self._handle._mid, raw_response)


class _RemoteFunction:
    def __init__(self, engine: _Engine) -> None:
        self._engine = engine

    def on(self, address: _Address) -> _CallableRemoteFunction:
        return _CallableRemoteFunction(_HgHandle(self._engine._mid, address))


class _Engine:
    """pymargo.core.Engine."""

    def __init__(
        self,
        fake: FakeMargo,
        addr: str,
        mode: str = "server",
        use_progress_thread: bool = False,
    ) -> None:
        self._finalized = True
        if mode == "server" and addr.startswith("ofi+"):
            host = addr.partition("://")[2].rpartition(":")[0]
            if host not in fake.interfaces:
                provider = addr.partition("+")[2].partition("://")[0]
                os.write(
                    2,
                    f'# na_ofi_verify_info(): No provider found for "{provider}" '
                    f'provider on domain "{host}"\n'.encode(),
                )
                raise RuntimeError("margo_init() returned MARGO_INSTANCE_NULL")
        self.fake = fake
        self.url = addr
        self.mode = mode
        self._mid = _Instance(fake, addr)
        self._finalized = False
        self.done = threading.Event()

    def register(
        self, rpc_name: str, func: Callable[..., None] | None = None
    ) -> _RemoteFunction:
        assert rpc_name == "proxystore_dim"
        if func is not None:
            assert self.mode == "server"
            mid = self._mid

            def wrapper(origin: str, raw: bytes) -> bytes:
                handle = _ServerHandle(mid, origin)
                data = _loads(mid, raw)
                func(handle, *data["args"], **data["kwargs"])
                assert handle.answer is not None
                return handle.answer

            self.fake.servers[self.url] = wrapper
            self.fake.engines[self.url] = self
            self.fake.handlers[self.url] = func
        return _RemoteFunction(self)

    def lookup(self, url: str) -> _Address:
        return _Address(self._mid, url)

    def create_bulk(self, buffer: Any, mode: str) -> _Bulk:
        region = next(self.fake.region_ids)
        self.fake.regions[region] = (memoryview(buffer).cast("B"), mode)
        self.fake.registrations.append(mode)
        return _Bulk(self._mid, region, owner=True)

    def transfer(
        self,
        op: str,
        origin_addr: _Address,
        origin_handle: _Bulk,
        origin_offset: int,
        local_handle: _Bulk,
        local_offset: int,
        size: int,
    ) -> None:
        assert op == "pull"
        assert origin_addr._mid is self._mid is local_handle._mid
        try:
            source, source_mode = self.fake.regions[origin_handle.region]
            target, target_mode = self.fake.regions[local_handle.region]
        except KeyError:
            raise _returned("margo_bulk_transfer", HG_INVALID_ARG) from None
        assert (source_mode, target_mode) == ("r", "w")
        target[local_offset : local_offset + size] = source[
            origin_offset : origin_offset + size
        ]
        self.fake.pulls.append(size)

    def finalize(self) -> None:
        self.fake.servers.pop(self.url, None)
        self._finalized = True
        self.done.set()
        self._mid.finalize()

    def wait_for_finalize(self) -> None:
        self.done.wait()

    def __del__(self) -> None:
        if not self._finalized:
            self.finalize()


class FakeMargo:
    """The parts of pymargo the transport uses, in one process."""

    def __init__(self) -> None:
        self.servers: dict[str, Callable[[str, bytes], bytes]] = {}
        self.engines: dict[str, _Engine] = {}
        self.handlers: dict[str, Callable[..., None]] = {}
        self.regions: dict[int, tuple[memoryview, str]] = {}
        self.region_ids = itertools.count(1)
        self.interfaces = {HOST: "lo"}
        self.rpcs: list[tuple[str, float]] = []  # (address, timeout in ms)
        self.pulls: list[int] = []
        self.registrations: list[str] = []
        self.complaints: list[str] = []  # what Mercury printed at finalize
        self.delay = 0.0
        self.fail_forward: BaseException | None = None
        self.answer_override: Any = None
        self.module = self._module()

    def _module(self) -> types.ModuleType:
        fake = self

        def engine(addr: str, mode: str, use_progress_thread: bool = False) -> Any:
            return _Engine(fake, addr, mode, use_progress_thread)

        core = types.SimpleNamespace(
            Engine=engine,
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

    def on_rpc(self, port: int) -> Callable[..., None]:
        """The server's registered RPC function."""
        return self.handlers[mercury_address("ofi+tcp", HOST, port)]

    def server_instance(self, port: int) -> _Instance:
        return self.engines[mercury_address("ofi+tcp", HOST, port)]._mid


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeMargo:
    instance = FakeMargo()
    monkeypatch.setattr(margo, "_pymargo", lambda: instance.module)
    monkeypatch.setattr(margo, "interface_addresses", lambda: dict(instance.interfaces))
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


def _client_instance(transport: MargoTransport) -> _Instance:
    instance: _Instance = transport._engine._mid
    return instance


# ------------------------------------------------ the stand-in is the runtime
def test_stand_in_reports_what_outlives_finalize(
    fake: FakeMargo, monkeypatch: pytest.MonkeyPatch
) -> None:
    unraisable: list[BaseException | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: unraisable.append(u.exc_value))
    engine = _Engine(fake, "ofi+tcp;ofi_rxm", "client")
    address = engine.lookup("ofi+tcp;ofi_rxm://h:1")
    call = _RemoteFunction(engine).on(address)
    with pytest.warns(MercuryError) as record:
        engine.finalize()
    text = str(record[0].message)
    assert (
        "HG core handles must be freed before destroying context (1 remaining)" in text
    )
    assert "HG addrs must be freed before finalizing HG (1 remaining)" in text
    assert "HG_Finalize(): Could not finalize HG core class" in text
    del call, address
    assert [str(exc) for exc in unraisable] == ["margo_addr_free() returned 11"]


def test_stand_in_failure_traceback_holds_the_handle(fake: FakeMargo) -> None:
    engine = _Engine(fake, "ofi+tcp;ofi_rxm", "client")
    call = _RemoteFunction(engine).on(engine.lookup("ofi+tcp;ofi_rxm://h:1"))
    try:
        call(b"x", timeout=10.0)
    except MargoException as exc:
        error = exc
    del call
    assert str(error) == "margo_provider_forward_timed() returned 20"
    assert not hasattr(error, "code")
    assert len(engine._mid.handles) == 1  # alive through the traceback's frames
    error.__traceback__ = None
    assert len(engine._mid.handles) == 0
    engine.finalize()


# ------------------------------------------------------------------- addresses
def test_mercury_address_names_the_provider() -> None:
    assert mercury_address("ofi+tcp", "h", 1) == "ofi+tcp;ofi_rxm://h:1"
    assert mercury_address(Protocol.OFI_VERBS, "h", 2) == "ofi+verbs;ofi_rxm://h:2"
    assert mercury_address("ucx+verbs", "h", 3) == "ucx+rc_verbs://h:3"
    with pytest.raises(ValueError, match="not addressable"):
        mercury_address(Protocol.SM_SHM, "h", 1)
    with pytest.raises(ValueError, match="carrier"):
        mercury_address("carrier-pigeon", "h", 1)


def test_interface_addresses_list_loopback() -> None:
    assert interface_addresses()["127.0.0.1"]


def test_bind_problem_names_what_libfabric_refuses(fake: FakeMargo) -> None:
    fake.interfaces = {"127.0.0.1": "lo", "192.0.2.2": "eth0"}
    problem = bind_problem("ofi+tcp", "127.0.0.2")
    assert problem is not None
    assert "127.0.0.2 is not the address of any network interface" in problem
    assert "libfabric's tcp provider" in problem
    assert "127.0.0.1 (lo), 192.0.2.2 (eth0)" in problem
    assert "ip addr add 127.0.0.2/8 dev lo" in problem
    assert bind_problem("ofi+tcp", "127.0.0.1") is None
    assert bind_problem("ofi+tcp", "localhost") is None  # resolves to 127.0.0.1
    assert bind_problem("ucx+tcp", "127.0.0.2") is None  # not known to refuse


def test_server_that_cannot_listen_names_the_reason(fake: FakeMargo) -> None:
    with pytest.raises(ConnectorConnectionError) as info:
        serve(
            "127.0.0.2",
            6001,
            DIMStorage().handle,
            options={"protocol": "ofi+tcp"},
            should_stop=lambda: True,
        )
    message = str(info.value)
    assert "margo_init() returned MARGO_INSTANCE_NULL" in message
    assert "127.0.0.2 is not the address of any network interface" in message
    assert info.value.address == "127.0.0.2:6001"


_CHILD_PYMARGO = """
import os

class MargoException(Exception):
    pass

client, server = "client", "server"

class Engine:
    def __init__(self, addr, mode=server, use_progress_thread=False):
        host = addr.partition("://")[2].rpartition(":")[0]
        os.write(2, (
            '# na_ofi_verify_info(): No provider found for "tcp;ofi_rxm" '
            f'provider on domain "{host}"\\n'
        ).encode())
        raise RuntimeError("margo_init() returned MARGO_INSTANCE_NULL")
"""


def test_spawned_server_failure_quotes_mercury(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server process whose pymargo fails like Mercury on an address no
    # interface carries: the spawner's error must quote Mercury's reason.
    package = tmp_path / "pymargo"
    package.mkdir()
    (package / "__init__.py").write_text("from pymargo import core, bulk\n")
    (package / "core.py").write_text(textwrap.dedent(_CHILD_PYMARGO))
    (package / "bulk.py").write_text("read_only = write_only = pull = None\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    with pytest.raises(ConnectorConnectionError) as info:
        spawn_server("ofi+tcp", "127.0.0.2", 6002, spawn_timeout=60)
    message = str(info.value)
    assert (
        'No provider found for "tcp;ofi_rxm" provider on domain "127.0.0.2"' in message
    )
    assert "margo_init() returned MARGO_INSTANCE_NULL" in message


# ------------------------------------------------------------------ bulk plan
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
    exposed = fake.on_rpc(server.port).exposed  # type: ignore[attr-defined]
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


# ------------------------------------------------------------------- timeouts
def test_every_rpc_carries_what_is_left_of_the_timeout_in_ms(
    fake: FakeMargo, server: _Server, transport: MargoTransport
) -> None:
    requests = [Request(Op.PING), Request(Op.PING)]
    fake.delay = 0.05
    transport.exchange(HOST, server.port, requests, timeout=2.5)
    (url, first), (_, second) = fake.rpcs
    assert url == mercury_address("ofi+tcp", HOST, server.port)
    assert 2400 < first <= 2500
    assert second <= first - 50  # the first answer's time is spent


def test_slow_server_times_out_naming_the_peer(
    fake: FakeMargo, server: _Server, transport: MargoTransport
) -> None:
    fake.delay = 3.0
    start = time.monotonic()
    with pytest.raises(ServerTimeoutError, match=f"{HOST}:{server.port}") as info:
        transport.exchange(HOST, server.port, [Request(Op.PING)], timeout=0.2)
    assert time.monotonic() - start < 2.5
    assert info.value.address == f"{HOST}:{server.port}"


def test_mercury_timeout_code_reads_as_a_timeout(
    fake: FakeMargo, server: _Server, transport: MargoTransport
) -> None:
    # Real pymargo's text for a timeout has no "TIMEOUT" in it, only code 20.
    fake.delay = 1.0
    with pytest.raises(ServerTimeoutError, match="did not answer") as info:
        transport.exchange(HOST, server.port, [Request(Op.PING)], timeout=0.1)
    cause = info.value.__cause__
    assert isinstance(cause, MargoException)
    assert str(cause) == "margo_provider_forward_timed() returned 20"
    assert "not reachable" not in str(info.value)


def test_mercury_codes_are_read_by_number() -> None:
    assert mercury_code(_returned("margo_provider_forward_timed", 20)) == HG_TIMEOUT
    assert mercury_code(MargoException("HG_TIMEOUT happened")) is None
    assert HG_RETURN_CODES[HG_TIMEOUT][0] == "HG_TIMEOUT"
    assert HG_RETURN_CODES[11][0] == "HG_INVALID_ARG"  # margo_addr_free's 11


@pytest.mark.parametrize(
    ("error", "match"),
    [
        (_returned("margo_provider_forward_timed", 20), "did not answer"),
        (TimeoutError("Margo forward timed out"), "did not answer"),
        (
            _returned("margo_provider_forward_timed", 19),
            r"not reachable over Margo .*returned 19 \(HG_HOSTUNREACH: cannot reach",
        ),
        (_returned("margo_provider_forward_timed", 21), r"\(HG_CANCELED: operation"),
        (_returned("margo_addr_lookup", 24), r"returned 24 \(HG_NA_ERROR"),
        (MargoException("Request already waited on"), "no Mercury return code"),
        # The word alone is not the code: 12 is HG_PROTOCOL_ERROR.
        (MargoException("TIMEOUT: margo_create() returned 12"), "HG_PROTOCOL_ERROR"),
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
    assert error.__traceback__ is None  # kept without the frames it came through


def test_missing_server_is_a_timeout(
    fake: FakeMargo, transport: MargoTransport
) -> None:
    with pytest.raises(ServerTimeoutError, match="did not answer"):
        transport.exchange(HOST, 7002, [Request(Op.PING)], timeout=0.2)


def test_other_errors_pass_through(fake: FakeMargo, transport: MargoTransport) -> None:
    fake.fail_forward = KeyError("not margo")
    with pytest.raises(KeyError):
        transport.exchange(HOST, 7003, [Request(Op.PING)], timeout=1)


# ----------------------------------------- no pymargo object outlives finalize
@pytest.mark.parametrize("size", [10, INLINE_MAX * 2])
def test_failed_exchange_keeps_no_handle_past_close(fake: FakeMargo, size: int) -> None:
    # The peer-killed scenario: the caller keeps the error while it closes.
    client = MargoTransport(Protocol.OFI_TCP)
    with pytest.raises(ServerTimeoutError) as info:
        client.exchange(HOST, 7004, [Request(Op.PUT, "k", (bytes(size),))], 0.1)
    instance = _client_instance(client)
    assert (len(instance.handles), len(instance.bulks)) == (0, 0)
    client.close()  # MercuryError here if a handle, bulk or address lived on
    assert fake.complaints == []
    assert isinstance(info.value.__cause__, MargoException)


def test_debug_log_of_a_failure_keeps_no_handle(
    fake: FakeMargo, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=margo.__name__)
    client = MargoTransport(Protocol.OFI_TCP)
    with pytest.raises(ServerTimeoutError):
        client.exchange(HOST, 7005, [Request(Op.PING)], 0.05)
    client.close()
    assert fake.complaints == []
    assert "margo_provider_forward_timed() returned 20" in caplog.text
    assert all(record.exc_info is None for record in caplog.records)


def test_malformed_answer_keeps_no_handle_past_close(
    fake: FakeMargo, server: _Server
) -> None:
    client = MargoTransport(Protocol.OFI_TCP)
    fake.answer_override = "garbage"
    with pytest.raises(MessageDecodeError) as info:
        client.exchange(HOST, server.port, [Request(Op.PING)], timeout=5)
    client.close()
    assert fake.complaints == []
    assert info.value.__traceback__ is not None  # raised afresh, from exchange()


def test_close_waits_for_running_exchanges(fake: FakeMargo, server: _Server) -> None:
    client = MargoTransport(Protocol.OFI_TCP)
    fake.delay = 0.3
    done: list[object] = []
    caller = threading.Thread(
        target=lambda: done.append(
            client.exchange(HOST, server.port, [Request(Op.PING)], timeout=5)
        )
    )
    caller.start()
    while not fake.rpcs:
        time.sleep(0.01)
    client.close()
    caller.join(5)
    assert len(done) == 1
    assert fake.complaints == []
    with pytest.raises(RuntimeError, match="closed"):
        client.exchange(HOST, server.port, [Request(Op.PING)], timeout=5)


def test_stopped_server_frees_its_bulk_handles_first(fake: FakeMargo) -> None:
    running = _Server(6003)
    instance = fake.server_instance(running.port)
    client = MargoTransport(Protocol.OFI_TCP)
    try:
        data = bytes(INLINE_MAX * 2)
        client.exchange(HOST, running.port, [Request(Op.PUT, "k", (data,))], 5)
        (got,) = client.exchange(HOST, running.port, [Request(Op.GET, "k")], 5)
        assert bytes(got.payload[0]) == data
        assert len(instance.bulks) == 1  # the stored object's exposed handle
    finally:
        client.close()
        running.stop()
    assert fake.complaints == []


# ------------------------------------------------------- no thread per exchange
def test_exchanges_start_no_threads(
    fake: FakeMargo,
    server: _Server,
    transport: MargoTransport,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[str] = []
    start = threading.Thread.start

    def counting_start(thread: threading.Thread) -> None:
        started.append(thread.name)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    before = threading.active_count()
    transport.exchange(HOST, server.port, [Request(Op.PUT, "k", (b"v" * 10240,))], 5)
    for _ in range(50):
        (got,) = transport.exchange(HOST, server.port, [Request(Op.GET, "k")], 5)
        assert got.status is Status.OK
    assert started == []
    assert threading.active_count() == before


# ------------------------------------------------------------ request handling
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
    handle = _ServerHandle(fake.server_instance(server.port), "someone")
    fake.on_rpc(server.port)(handle, b"not frames", None, 0)
    assert handle.answer is not None
    frames, bulk, size = pickle.loads(handle.answer)
    assert (bulk, size) == (None, 0)
    decoded = decode_response(*margo._unpack(frames, None))
    assert decoded.status is Status.ERROR
    assert "bad request" in decoded.text


def test_request_with_inline_and_bulk_payload_is_rejected(
    fake: FakeMargo, server: _Server
) -> None:
    instance = fake.server_instance(server.port)
    engine = fake.engines[instance.url]
    bulk = engine.create_bulk(b"x" * 10, "r")
    frames = pack_frames([encode_request(Request(Op.PUT, "k", (b"y",))), b"y"])
    handle = _ServerHandle(instance, "someone")
    fake.on_rpc(server.port)(handle, frames, bulk, 10)
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
    assert fake.complaints == []


def test_server_errors_reach_the_connector(fake: FakeMargo) -> None:
    def broken(request: Request) -> Response:
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


def test_two_host_scenarios_put_peer_b_where_margo_can_listen(
    fake: FakeMargo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.integration import dim_scenarios

    def problem(host: str) -> str | None:
        return bind_problem("ofi+tcp", host)

    monkeypatch.setattr(dim_scenarios, "interface_addresses", lambda: fake.interfaces)
    fake.interfaces = {"127.0.0.1": "lo", "::1": "lo", "192.0.2.2": "eth0"}
    assert dim_scenarios.host_b_for("Margo", problem) == "192.0.2.2"
    fake.interfaces = {"127.0.0.1": "lo", "127.0.0.2": "lo"}
    assert dim_scenarios.host_b_for("Margo", problem) == "127.0.0.2"
    fake.interfaces = {"127.0.0.1": "lo"}
    with pytest.raises(pytest.skip.Exception, match="libfabric's tcp provider"):
        dim_scenarios.host_b_for("Margo", problem)
