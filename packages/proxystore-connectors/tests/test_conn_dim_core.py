"""Unit tests of the transport-independent DIM pieces (storage, processes, seams)."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys

import pytest

from proxystore.connectors.dim import (
    ServerTimeoutError,
    TransportUnavailableError,
    get_ip_address,
)
from proxystore.connectors.dim.models import Op, Request, Status
from proxystore.connectors.dim.server import (
    DIMStorage,
    main,
    spawn_server_process,
    stop_server_process,
)
from proxystore.connectors.dim.transport import (
    answer_packed,
    import_library,
    pack_request,
    unpack_response,
)
from proxystore.connectors.dim.utils import resolve_address
from proxystore.connectors.exceptions import ConnectorConnectionError, ConnectorError

_HAS_UCX = importlib.util.find_spec("ucxx") is not None
_HAS_MARGO = importlib.util.find_spec("pymargo") is not None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_storage_operations() -> None:
    storage = DIMStorage()
    handle = storage.handle
    assert handle(Request(Op.PING, request_id=3)).status is Status.OK
    assert handle(Request(Op.EXISTS, "a")).status is Status.MISSING
    assert handle(Request(Op.GET, "a")).status is Status.MISSING
    put = handle(Request(Op.PUT, "a", (b"12", b"34"), 4))
    assert (put.status, put.request_id) == (Status.OK, 4)
    got = handle(Request(Op.GET, "a", request_id=5))
    assert (got.status, list(got.payload), got.request_id) == (
        Status.OK,
        [b"12", b"34"],
        5,
    )
    assert handle(Request(Op.EXISTS, "a")).status is Status.OK
    assert handle(Request(Op.EVICT, "a")).status is Status.OK
    assert handle(Request(Op.EVICT, "a")).status is Status.OK  # missing is fine
    assert not storage.exists("a")


def test_packed_messages_round_trip_through_storage() -> None:
    # The server path of the UCX and Margo transports, without their libraries.
    storage = DIMStorage()
    put = unpack_response(
        answer_packed(storage.handle, pack_request(Request(Op.PUT, "k", (b"v",)), 8))
    )
    assert (put.status, put.request_id) == (Status.OK, 8)
    got = unpack_response(
        answer_packed(storage.handle, pack_request(Request(Op.GET, "k"), 9))
    )
    assert [bytes(p) for p in got.payload] == [b"v"]
    assert got.request_id == 9


def test_packed_garbage_gets_error_response() -> None:
    response = unpack_response(answer_packed(DIMStorage().handle, b"\x00\x00"))
    assert response.status is Status.ERROR
    assert "unreadable" in response.text


def test_get_ip_address_of_loopback() -> None:
    assert get_ip_address("lo") == "127.0.0.1"
    with pytest.raises(ValueError, match="'nope0'"):
        get_ip_address("nope0")


def test_resolve_address_precedence() -> None:
    assert resolve_address("10.1.2.3", "lo") == "10.1.2.3"
    assert resolve_address(None, "lo") == "127.0.0.1"
    assert resolve_address(None, None) == socket.gethostbyname(socket.gethostname())


def test_import_library_names_package_and_install_hint() -> None:
    with pytest.raises(TransportUnavailableError, match="pip install nothing") as info:
        import_library(
            ("no_such_mod_a", "no_such_mod_b"), "Test", "pip install nothing"
        )
    message = str(info.value)
    assert "'no_such_mod_a' or 'no_such_mod_b'" in message
    assert isinstance(info.value, ImportError)
    assert isinstance(info.value, ConnectorError)
    assert info.value.name == "no_such_mod_a"
    assert import_library(("no_such_mod_a", "json"), "Test", "-") is __import__("json")


@pytest.mark.skipif(_HAS_UCX, reason="ucxx is installed")
def test_ucx_connector_without_library_says_how_to_install() -> None:
    from proxystore.connectors.dim.ucx import UCXConnector

    with pytest.raises(
        TransportUnavailableError, match=r"'ucxx'.*proxystore-connectors\[ucx\]"
    ):
        UCXConnector(_free_port(), address="127.0.0.1")


@pytest.mark.skipif(_HAS_MARGO, reason="pymargo is installed")
def test_margo_connector_without_library_says_how_to_install() -> None:
    from proxystore.connectors.dim.margo import MargoConnector, Protocol

    with pytest.raises(TransportUnavailableError, match=r"'pymargo'.*spack"):
        MargoConnector(_free_port(), Protocol.OFI_TCP, address="127.0.0.1")
    with pytest.raises(ValueError, match="'carrier-pigeon'"):
        MargoConnector(_free_port(), "carrier-pigeon")


@pytest.mark.skipif(_HAS_UCX, reason="ucxx is installed")
def test_spawning_server_of_missing_transport_fails_fast() -> None:
    def never(address: str, port: int, timeout: float) -> None:
        raise ServerTimeoutError("not up")

    port = _free_port()
    with pytest.raises(
        ConnectorConnectionError, match=f"ucx server for 127.0.0.1:{port}"
    ):
        spawn_server_process("ucx", "127.0.0.1", port, wait=never, spawn_timeout=60)


def test_spawn_timeout_stops_the_process() -> None:
    seen: list[int] = []

    def never(address: str, port: int, timeout: float) -> None:
        seen.append(port)
        raise ServerTimeoutError("not up")

    port = _free_port()
    with pytest.raises(ServerTimeoutError, match=f"127.0.0.1:{port}.*within 3 s"):
        spawn_server_process("zmq", "127.0.0.1", port, wait=never, spawn_timeout=3.0)
    assert seen
    # The server did start (the stub just never saw it): it must be gone now.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_stop_escalates_to_sigkill() -> None:
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == b"ready\n"
        stop_server_process(process, timeout=0.2)
        assert process.returncode == -9
        stop_server_process(process)  # twice is harmless
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


@pytest.mark.skipif(_HAS_UCX, reason="ucxx is installed")
def test_cli_reports_missing_transport(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ucx", "127.0.0.1", str(_free_port())]) == 3
    assert "proxystore-connectors[ucx]" in capsys.readouterr().err


def test_cli_rejects_bad_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["zmq", "127.0.0.1", "1", "--option", "chunk_length"])
    assert info.value.code == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_module_entry_point_serves() -> None:
    from proxystore.connectors.dim.zmq import wait_for_server

    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "proxystore.connectors.dim",
            "zmq",
            "127.0.0.1",
            str(port),
            "--option",
            "chunk_length=1024",
        ],
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_for_server("127.0.0.1", port, timeout=30)
        process.terminate()
        assert process.wait(10) == 0  # SIGTERM is a clean shutdown
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
