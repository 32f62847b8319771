"""Unit tests of proxystore.connectors.dim.zmq (servers are local processes)."""

from __future__ import annotations

import array
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import zmq

from proxystore.connectors.dim.exceptions import (
    DIMServerError,
    MessageDecodeError,
    ServerTimeoutError,
)
from proxystore.connectors.dim.models import (
    DIMKey,
    Op,
    Request,
    Response,
    Status,
    decode_response,
)
from proxystore.connectors.dim.server import DIMStorage, stop_server_process
from proxystore.connectors.dim.transport import RequestHandler
from proxystore.connectors.dim.zmq import (
    ZeroMQConnector,
    ZeroMQTransport,
    serve,
    spawn_server,
    wait_for_server,
)
from proxystore.connectors.exceptions import (
    ConnectorConnectionError,
    ConnectorTimeoutError,
)
from proxystore.connectors.protocols import Connector
from tests.conformance.connector_suite import ConnectorSuite

HOST = "127.0.0.1"


def _static_contracts() -> None:
    # Never called: mypy proves ZeroMQConnector satisfies the Connector contract.
    _c: Connector[DIMKey] = ZeroMQConnector(0)


def _free_port() -> int:
    # The kernel picks an unused ephemeral port: distinct across xdist workers.
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture(scope="module")
def server_port() -> Iterator[int]:
    """One spawned server shared by the module's connectors (spawning is slow)."""
    port = _free_port()
    process = spawn_server(HOST, port)
    try:
        yield port
    finally:
        stop_server_process(process)
    assert not _alive(process.pid)


class TestZeroMQConformance(ConnectorSuite):
    @pytest.fixture
    def connector(self, server_port: int) -> Iterator[ZeroMQConnector]:
        with ZeroMQConnector(server_port, address=HOST) as connector:
            assert connector.server is None  # attached to the module's server
            yield connector


class TestZeroMQChunkedConformance(ConnectorSuite):
    @pytest.fixture
    def connector(self, server_port: int) -> Iterator[ZeroMQConnector]:
        with ZeroMQConnector(server_port, address=HOST, chunk_length=4096) as c:
            yield c


class _ThreadServer:
    """A ZeroMQ DIM server on a thread of this process, with a swappable handler."""

    def __init__(self, handler: RequestHandler, chunk_length: int | None = None):
        self.port = _free_port()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=serve,
            args=(HOST, self.port, handler),
            kwargs={
                "options": {}
                if chunk_length is None
                else {"chunk_length": str(chunk_length)},
                "should_stop": self._stop.is_set,
            },
        )
        self._thread.start()
        wait_for_server(HOST, self.port, timeout=5)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def thread_server() -> Iterator[_ThreadServer]:
    server = _ThreadServer(DIMStorage().handle)
    try:
        yield server
    finally:
        server.stop()


def test_spawns_server_and_kills_it_on_close() -> None:
    port = _free_port()
    connector = ZeroMQConnector(port, address=HOST)
    assert connector.server is not None
    pid = connector.server.pid
    key = connector.put(b"data")
    assert key == DIMKey("zmq", key.obj_id, 4, HOST, port)
    assert connector.url == f"tcp://{HOST}:{port}"
    assert f"spawned_server=pid {pid}, open" in repr(connector)
    connector.close()
    assert not _alive(pid)
    assert repr(connector).endswith("spawned_server=none, closed)")
    with pytest.raises(RuntimeError, match="closed"):
        connector.get(key)


def test_close_without_kill_keeps_server_until_stopped() -> None:
    port = _free_port()
    first = ZeroMQConnector(port, address=HOST)
    process = first.server
    assert process is not None
    key = first.put(b"survives")
    first.close(kill_server=False)
    try:
        with ZeroMQConnector(port, address=HOST) as second:
            assert second.server is None
            assert second.get(key) == b"survives"
    finally:
        stop_server_process(process)
    assert not _alive(process.pid)


def test_large_object_is_a_zero_copy_view(server_port: int) -> None:
    data = os.urandom(200_000)
    with ZeroMQConnector(server_port, address=HOST) as connector:
        key = connector.put(memoryview(data))
        got = connector.get(key)
        assert isinstance(got, memoryview)
        assert got == data
        assert connector.get(connector.put(b"small")) == b"small"


def test_chunked_get_from_chunking_server() -> None:
    data = os.urandom(10_000)
    server = _ThreadServer(DIMStorage().handle, chunk_length=1000)
    try:
        with ZeroMQConnector(server.port, address=HOST, chunk_length=3000) as c:
            key = c.put(data)
            assert c.get(key) == data
            assert c.get_batch([key, key]) == [data, data]
    finally:
        server.stop()


def test_dead_peer_times_out_and_names_it(server_port: int) -> None:
    dead = _free_port()  # nothing listens there
    key = DIMKey("zmq", "abc", 3, HOST, dead)
    with ZeroMQConnector(server_port, address=HOST, timeout=0.2) as connector:
        with pytest.raises(ServerTimeoutError, match=f"{HOST}:{dead}") as info:
            connector.get(key)
        assert info.value.address == f"{HOST}:{dead}"
        assert isinstance(info.value, ConnectorTimeoutError)
        with pytest.raises(ServerTimeoutError):
            connector.exists(key)
        # The local peer is unaffected.
        assert connector.get(connector.put(b"ok")) == b"ok"


def test_socket_is_reset_after_timeout_and_reusable() -> None:
    release = threading.Event()
    storage = DIMStorage()

    def slow(request: Request) -> Response:
        if request.op is Op.GET and not release.is_set():
            release.wait(5)
        return storage.handle(request)

    server = _ThreadServer(slow)
    try:
        with ZeroMQConnector(server.port, address=HOST, timeout=0.2) as connector:
            key = connector.put(b"late")
            with pytest.raises(ServerTimeoutError):
                connector.get(key)
            release.set()
            # The stale answer to the timed-out get must not be read as this one's.
            other = connector.put(b"fresh")
            assert connector.get(other) == b"fresh"
            assert connector.get(key) == b"late"
    finally:
        release.set()
        server.stop()


def test_server_error_is_reported_with_address() -> None:
    def failing(request: Request) -> Response:
        if request.op is Op.PING:
            return Response(request.op, Status.OK, request_id=request.request_id)
        return Response(
            request.op, Status.ERROR, request_id=request.request_id, text="boom"
        )

    server = _ThreadServer(failing)
    try:
        with (
            ZeroMQConnector(server.port, address=HOST) as connector,
            pytest.raises(DIMServerError, match=f"{HOST}:{server.port}.*boom"),
        ):
            connector.put(b"x")
    finally:
        server.stop()


def test_storage_failure_becomes_error_response() -> None:
    class Broken(DIMStorage):
        def put(self, obj_id: str, payload: object, ttl: float | None = None) -> None:
            raise MemoryError("full")

    response = Broken().handle(Request(Op.PUT, "k", (b"x",), 7))
    assert response.status is Status.ERROR
    assert response.request_id == 7
    assert "full" in response.text


def test_server_answers_malformed_request_and_keeps_serving(
    thread_server: _ThreadServer,
) -> None:
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 5000)
    try:
        sock.connect(f"tcp://{HOST}:{thread_server.port}")
        sock.send_multipart([b"XX\x01\x02\x00\x00\x00\x09" + bytes(8)])
        header, *payload = sock.recv_multipart()
        response = decode_response(header, payload)
        assert response.status is Status.ERROR
        assert response.request_id == 9
        assert "magic" in response.text
    finally:
        sock.close()
        context.term()
    with ZeroMQConnector(thread_server.port, address=HOST) as connector:
        assert connector.get(connector.put(b"alive")) == b"alive"


def test_malformed_response_raises_decode_error() -> None:
    context = zmq.Context()
    sock = context.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    port = sock.bind_to_random_port(f"tcp://{HOST}")

    def bad_server() -> None:
        if sock.poll(5000):
            identity, *_ = sock.recv_multipart()
            sock.send_multipart([identity, b"not a header"])

    thread = threading.Thread(target=bad_server)
    thread.start()
    transport = ZeroMQTransport()
    try:
        with pytest.raises(MessageDecodeError, match="header"):
            transport.exchange(HOST, port, [Request(Op.PING)], 5)
    finally:
        thread.join()
        transport.close()
        sock.close()
        context.term()


def test_key_of_other_transport_is_rejected(server_port: int) -> None:
    with (
        ZeroMQConnector(server_port, address=HOST) as connector,
        pytest.raises(ValueError, match="'ucx'"),
    ):
        connector.get(DIMKey("ucx", "id", 1, HOST, server_port))


def test_get_batch_across_peers(server_port: int) -> None:
    other = _ThreadServer(DIMStorage().handle)
    try:
        with (
            ZeroMQConnector(server_port, address=HOST) as a,
            ZeroMQConnector(other.port, address=HOST) as b,
        ):
            ka, kb = a.put(b"on a"), b.put(b"on b")
            assert (ka.peer_port, kb.peer_port) == (server_port, other.port)
            assert a.get_batch([kb, ka, kb]) == [b"on b", b"on a", b"on b"]
            assert b.exists(ka)
            b.evict(ka)
            assert not a.exists(ka)
    finally:
        other.stop()


def test_config_keeps_unresolved_address() -> None:
    connector = ZeroMQConnector.__new__(ZeroMQConnector)
    connector._address, connector._interface = None, "lo"
    connector.port, connector.chunk_length, connector.timeout = 5, None, 2.0
    assert connector.config() == {
        "port": 5,
        "address": None,
        "interface": "lo",
        "chunk_length": None,
        "timeout": 2.0,
    }


def test_interface_resolves_address(server_port: int) -> None:
    with ZeroMQConnector(server_port, interface="lo") as connector:
        assert connector.address == HOST
        assert connector.server is None


def test_wait_for_server_times_out() -> None:
    port = _free_port()
    with pytest.raises(ServerTimeoutError, match=f"{HOST}:{port}"):
        wait_for_server(HOST, port, timeout=0.05)


def test_spawn_on_taken_port_fails_fast() -> None:
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConnectorConnectionError, match=f"{HOST}:{port}"):
            spawn_server(HOST, port, spawn_timeout=30)


def test_unclosed_connector_warns(server_port: int) -> None:
    def make_and_drop() -> None:
        connector = ZeroMQConnector(server_port, address=HOST)
        connector._transport.close()  # release sockets; only the warning is tested

    with pytest.warns(ResourceWarning, match="not closed"):
        make_and_drop()


def test_server_exits_when_its_parent_dies() -> None:
    port = _free_port()
    code = (
        "import sys, time\n"
        "from proxystore.connectors.dim.zmq import spawn_server\n"
        f"p = spawn_server({HOST!r}, {port})\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        server_pid = int(parent.stdout.readline())
        assert _alive(server_pid)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10
        while _alive(server_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(server_pid)
    finally:
        if parent.poll() is None:
            parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


def test_large_batch_is_windowed(server_port: int) -> None:
    objs = [i.to_bytes(4, "big") for i in range(700)]  # more than one window
    with ZeroMQConnector(server_port, address=HOST) as connector:
        keys = connector.put_batch(objs)
        assert connector.get_batch(keys) == objs


def test_typed_memoryview_is_stored_as_its_bytes(server_port: int) -> None:
    values = array.array("d", [1.5, 2.5, 3.5])
    strided = memoryview(b"abcdef")[::2]
    with ZeroMQConnector(server_port, address=HOST) as connector:
        key = connector.put(memoryview(values))
        assert key.size == 24
        assert connector.get(key) == values.tobytes()
        assert connector.get(connector.put(strided)) == b"ace"


def test_forked_child_uses_own_sockets_and_spares_parent_server() -> None:
    port = _free_port()
    with ZeroMQConnector(port, address=HOST) as connector:
        assert connector.server is not None
        key = connector.put(b"before fork")
        pid = os.fork()
        if pid == 0:  # child: any failure becomes a non-zero exit code
            code = 1
            try:
                ok = connector.get(key) == b"before fork"
                connector.close()  # must not stop the parent's server
                code = 0 if ok else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert connector.server is not None
        assert _alive(connector.server.pid)
        assert connector.get(key) == b"before fork"


def test_racing_connectors_share_one_server() -> None:
    port = _free_port()
    barrier = threading.Barrier(3)
    made: list[ZeroMQConnector] = []
    errors: list[BaseException] = []

    def create() -> None:
        barrier.wait()
        try:
            made.append(ZeroMQConnector(port, address=HOST, timeout=2))
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        spawned = [c.server for c in made if c.server is not None]
        assert len(spawned) == 1
        key = made[0].put(b"shared")
        assert all(c.get(key) == b"shared" for c in made)
    finally:
        for connector in made:
            connector.close()
