"""What `start` checks before detaching, and what an endpoint says of its relay."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from proxystore.endpoint import _preflight
from proxystore.endpoint import cli as cli_module
from proxystore.endpoint._relay_state import relay_state, relay_unavailable
from proxystore.endpoint.config import (
    EndpointConfig,
    EndpointRelayAuthConfig,
    EndpointRelayConfig,
)
from proxystore.endpoint.endpoint import Endpoint
from proxystore.endpoint.exceptions import PeerTimeoutError, RelayUnavailableError
from proxystore.p2p.exceptions import PeerConnectionTimeoutError


def _config(address: str | None, method: Any = None, **relay: Any) -> EndpointConfig:
    return EndpointConfig(
        name="ep",
        uuid=str(uuid.uuid4()),
        host="127.0.0.1",
        port=5000,
        relay=EndpointRelayConfig(
            address=address, auth=EndpointRelayAuthConfig(method=method), **relay
        ),
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# ------------------------------------------------------------------ port


def test_check_port_free_and_taken() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        problem = _preflight.check_port("127.0.0.1", port)
    assert problem is not None
    assert f"port {port} on 127.0.0.1 is already in use" in problem
    assert _preflight.check_port("127.0.0.1", port) is None


def test_check_port_foreign_address_names_host() -> None:
    problem = _preflight.check_port("192.0.2.1", 5000)  # TEST-NET: not ours
    assert problem is not None
    assert "192.0.2.1" in problem
    assert "host" in problem


# ------------------------------------------------------------------ relay


def test_probe_unreachable_relay_is_a_warning_not_fatal(tmp_path: Path) -> None:
    probe = _preflight.probe_relay(
        _config(f"ws://127.0.0.1:{_closed_port()}"), str(tmp_path)
    )
    assert not probe.reachable
    assert not probe.fatal
    assert "not reachable" in probe.cause


def test_probe_reachable_relay(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        probe = _preflight.probe_relay(_config(f"ws://127.0.0.1:{port}"), ".")
    assert probe.reachable
    assert probe.cause == ""


def test_probe_plain_server_behind_wss_is_fatal(tmp_path: Path) -> None:
    # A wss:// address whose server speaks plain TCP: the handshake fails, and
    # retrying would not help.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def answer_garbage() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(1024)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

        thread = threading.Thread(target=answer_garbage, daemon=True)
        thread.start()
        probe = _preflight.probe_relay(_config(f"wss://127.0.0.1:{port}"), ".")
        thread.join(5)
    assert probe.fatal
    assert "TLS" in probe.cause


# ------------------------------------------------------------------ auth


def test_no_auth_and_token_auth_need_no_login(tmp_path: Path) -> None:
    assert _preflight.relay_auth_problem(_config("ws://x:1"), str(tmp_path)) is None
    assert _preflight.relay_auth_problem(_config(None, "globus"), ".") is None


def test_globus_auth_without_login_names_the_login_and_the_opt_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROXYSTORE_HOME", str(tmp_path))
    monkeypatch.delenv("PROXYSTORE_GLOBUS_CLIENT_ID", raising=False)
    monkeypatch.delenv("PROXYSTORE_GLOBUS_CLIENT_SECRET", raising=False)
    problem = _preflight.relay_auth_problem(
        _config("ws://127.0.0.1:1", "globus"), str(tmp_path / "ep")
    )
    assert problem is not None
    assert "proxystore-globus-auth login" in problem
    assert "--no-relay-auth" in problem
    assert str(tmp_path / "ep" / "config.toml") in problem


# ------------------------------------------------------------------ log


def test_new_log_errors_reads_errors_after_the_offset(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    log.write_text("[t] ERROR (x) :: an old failure\n")
    offset = log.stat().st_size
    with log.open("a") as f:
        f.write(
            "[t] INFO  (x) :: Serving\n"
            "[t] ERROR (x) :: Endpoint ep stopped on an error: boom\n"
            "Traceback (most recent call last):\n"
            '  File "x.py", line 1, in <module>\n'
            "pkg.BoomError: boom\n"
            "[t] ERROR (x) :: Endpoint ep stopped on an error: boom\n"
        )
    assert _preflight.new_log_errors(str(log), offset) == [
        "Endpoint ep stopped on an error: boom"
    ]


def test_new_log_errors_keeps_a_bare_exception_line(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    log.write_text("Traceback (most recent call last):\n  x\nclick.exceptions.Abort\n")
    assert _preflight.new_log_errors(str(log), 0) == ["click.exceptions.Abort"]
    assert _preflight.new_log_errors(str(tmp_path / "missing"), 0) == []


# ------------------------------------------------------------------ relay state


class _Relay:
    def __init__(self, connected: bool, refused: bool = False) -> None:
        self.address = "ws://relay.example:8700"
        self.connected = connected
        self.refused = refused
        self.last_error = None if connected else "ClientConnectorError: refused"


class _Manager:
    def __init__(self, relay: _Relay, peers: list[uuid.UUID] | None = None) -> None:
        self.relay_client = relay
        self.peers = peers or []
        self.name = "a"
        self.uuid = uuid.uuid4()
        self.sent = 0

    async def async_init(self) -> None:
        pass

    async def send(self, peer: uuid.UUID, message: bytes | str) -> None:
        self.sent += 1
        await asyncio.sleep(0.2)
        raise PeerConnectionTimeoutError(
            f"Peer connection to {peer} not established within 0.2 s."
        )

    async def recv(self) -> tuple[uuid.UUID, bytes]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def close(self) -> None:
        pass


def test_relay_state_reports_each_status() -> None:
    assert relay_state(_Manager(_Relay(True))) == {
        "address": "ws://relay.example:8700",
        "status": "connected",
        "error": None,
    }
    assert relay_state(_Manager(_Relay(False))) == {
        "address": "ws://relay.example:8700",
        "status": "connecting",
        "error": "ClientConnectorError: refused",
    }
    assert relay_state(_Manager(_Relay(False)))["status"] == "connecting"  # type: ignore[index]
    assert relay_state(_Manager(_Relay(False, True)))["status"] == "refused"  # type: ignore[index]
    assert relay_state(object()) is None


def test_relay_unavailable_only_for_peers_needing_the_relay() -> None:
    me, peer, linked = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert relay_unavailable(_Manager(_Relay(True)), me, peer) is None
    down = _Manager(_Relay(False), peers=[linked])
    assert relay_unavailable(down, me, linked) is None
    error = relay_unavailable(down, me, peer)
    assert isinstance(error, RelayUnavailableError)
    assert "not connected to the relay at ws://relay.example:8700" in str(error)
    assert "last attempt: ClientConnectorError: refused" in str(error)
    assert str(peer) in str(error)


def test_peer_request_without_relay_fails_at_once() -> None:
    async def body() -> None:
        manager = _Manager(_Relay(False))
        async with Endpoint(peer_manager=manager, request_timeout=30) as ep:  # type: ignore[arg-type]
            started = time.monotonic()
            with pytest.raises(RelayUnavailableError, match=r"ws://relay\.example"):
                await ep.get("k", endpoint=uuid.uuid4())
            assert time.monotonic() - started < 1
            assert manager.sent == 0

    asyncio.run(body())


def test_peer_timeout_states_the_limit_that_fired() -> None:
    # The manager's own connection timeout (0.2 s here) fires long before the
    # request timeout (30 s): the error must not claim 30 s.
    async def body() -> None:
        manager = _Manager(_Relay(True))
        async with Endpoint(peer_manager=manager, request_timeout=30) as ep:  # type: ignore[arg-type]
            with pytest.raises(PeerTimeoutError) as info:
                await ep.get("k", endpoint=uuid.uuid4())
        assert "30 s" not in str(info.value)
        assert "0.2 s" in str(info.value)

    asyncio.run(body())


# ------------------------------------------------------------------ CLI


def test_unexpected_error_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> int:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(cli_module, "list_endpoints", broken)
    result = CliRunner().invoke(cli_module.cli, ["list"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line]
    assert lines == [
        "ERROR: RuntimeError: disk on fire (run with --log-level DEBUG for the "
        "traceback)"
    ]
    debug = CliRunner().invoke(cli_module.cli, ["--log-level", "DEBUG", "list"])
    assert "Traceback" in debug.output


def test_endpoint_server_never_starts_a_globus_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the daemon runs to build its relay headers: with no tokens stored it
    # must fail with the fix, not start the (prompting) login flow.
    globus_app = pytest.importorskip("proxystore.globus.app")
    from proxystore.endpoint import _peering

    monkeypatch.setenv("PROXYSTORE_HOME", str(tmp_path))
    monkeypatch.delenv("PROXYSTORE_GLOBUS_CLIENT_ID", raising=False)
    monkeypatch.delenv("PROXYSTORE_GLOBUS_CLIENT_SECRET", raising=False)

    def prompt(*args: object, **kwargs: object) -> None:
        raise AssertionError("the endpoint started an interactive Globus login")

    monkeypatch.setattr(globus_app._PromptLoginFlowManager, "run_login_flow", prompt)
    with pytest.raises(
        globus_app.GlobusLoginRequiredError, match="proxystore-globus-auth login"
    ):
        _peering._auth_headers(_config("ws://127.0.0.1:1", "globus"))
