"""The `proxystore-endpoint` CLI: click's runner for the commands, and the real
console script for starting (attached and detached) and stopping."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from proxystore.endpoint import commands
from proxystore.endpoint.cli import cli
from proxystore.endpoint.commands import EndpointStatus, get_status
from proxystore.endpoint.config import get_pid_filepath, read_config, write_config


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PROXYSTORE_HOME", str(tmp_path))
    return tmp_path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _configure(name: str, *extra: str) -> None:
    result = CliRunner().invoke(
        cli,
        ["configure", name, "--host", "127.0.0.1", "--no-relay-server", *extra],
    )
    assert result.exit_code == 0, result.output


def test_help_and_version() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["help"])
    assert result.exit_code == 0
    for command in ("configure", "list", "start", "stop", "remove", "check-nat"):
        assert command in result.output
    result = runner.invoke(cli, ["version"])
    assert result.exit_code == 0
    assert result.output.startswith("ProxyStore v")


def test_configure_list_remove(home: Path) -> None:
    runner = CliRunner()
    _configure("ep1", "--port", "4321", "--persist")
    cfg = read_config(str(home / "ep1"))
    assert cfg.port == 4321
    assert cfg.host == "127.0.0.1"
    assert cfg.host_type == "static"
    assert cfg.relay.address is None
    assert cfg.storage.database_path == str(home / "ep1" / "blobs.db")
    result = runner.invoke(cli, ["configure", "ep1"])
    assert result.exit_code == 1
    assert "already exists" in result.output
    result = runner.invoke(cli, ["list"])
    assert result.exit_code == 0
    assert "ep1" in result.output
    assert "STOPPED" in result.output
    assert cfg.uuid in result.output
    result = runner.invoke(cli, ["remove", "ep1"])
    assert result.exit_code == 0
    assert not (home / "ep1").exists()
    result = runner.invoke(cli, ["remove", "ep1"])
    assert result.exit_code == 1
    assert "does not exist" in result.output
    assert "No valid endpoint" in runner.invoke(cli, ["list"]).output


def test_configure_defaults_use_relay_and_ip(home: Path) -> None:
    result = CliRunner().invoke(cli, ["configure", "ep2"])
    assert result.exit_code == 0
    cfg = read_config(str(home / "ep2"))
    assert cfg.host_type == "ip"
    assert cfg.relay.address == "wss://relay.proxystore.dev"
    assert cfg.relay.auth.method == "globus"
    assert 10 * 1024 <= cfg.port <= 20 * 1024


def test_configure_rejects_bad_name(home: Path) -> None:
    result = CliRunner().invoke(cli, ["configure", "bad.name"])
    assert result.exit_code == 1
    assert "name" in result.output


def test_unknown_endpoint_commands_fail(home: Path) -> None:
    runner = CliRunner()
    for args in (["start", "nope"], ["stop", "nope"], ["test", "nope", "exists", "k"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 1, args
        assert "nope" in result.output or "does not exist" in result.output


def test_test_commands_against_stopped_endpoint(home: Path) -> None:
    _configure("ep", "--port", str(_free_port()))
    result = CliRunner().invoke(cli, ["test", "ep", "exists", "k"])
    assert result.exit_code == 1
    assert "Unable to connect" in result.output


def test_status_detects_hanging_pid_file(home: Path) -> None:
    _configure("ep")
    pid_file = Path(get_pid_filepath(str(home / "ep")))
    proc = subprocess.run([sys.executable, "-c", "pass"], check=True)
    assert proc.returncode == 0
    pid_file.write_text("999999999")
    assert get_status("ep") is EndpointStatus.HANGING
    result = CliRunner().invoke(cli, ["stop", "ep"])
    assert result.exit_code == 0
    assert not pid_file.exists()
    assert get_status("ep") is EndpointStatus.STOPPED
    assert get_status("missing") is EndpointStatus.UNKNOWN


def _script() -> str:
    path = shutil.which("proxystore-endpoint", path=os.path.dirname(sys.executable))
    assert path is not None
    return path


def _wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port}")


def test_start_attached_then_stop(home: Path) -> None:
    port = _free_port()
    _configure("ep", "--port", str(port))
    proc = subprocess.Popen(
        [_script(), "start", "ep", "--no-detach"],
        env={**os.environ, "PROXYSTORE_HOME": str(home)},
    )
    try:
        _wait_port(port)
        assert get_status("ep") is EndpointStatus.RUNNING
        runner = CliRunner()
        result = runner.invoke(cli, ["test", "ep", "put", "hello"])
        assert result.exit_code == 0, result.output
        key = result.output.strip().split()[-1]
        result = runner.invoke(cli, ["test", "ep", "get", key])
        assert "Result: hello" in result.output
        result = runner.invoke(cli, ["test", "ep", "exists", key])
        assert "Object exists: True" in result.output
        result = runner.invoke(cli, ["test", "ep", "evict", key])
        assert result.exit_code == 0
        result = runner.invoke(cli, ["test", "ep", "get", key])
        assert "Object does not exist" in result.output
        result = runner.invoke(cli, ["start", "ep"])
        assert result.exit_code == 1
        assert "already running" in result.output
        result = runner.invoke(cli, ["remove", "ep"])
        assert result.exit_code == 1
        result = runner.invoke(cli, ["stop", "ep"])
        assert result.exit_code == 0
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert get_status("ep") is EndpointStatus.STOPPED
    assert "Serving endpoint" in (home / "ep" / "log.txt").read_text()


def test_start_detached_then_stop(home: Path) -> None:
    port = _free_port()
    _configure("ep", "--port", str(port))
    env = {**os.environ, "PROXYSTORE_HOME": str(home)}
    done = subprocess.run(  # noqa: PLW1510 - exit codes are asserted
        [_script(), "start", "ep", "--detach"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    pid_file = Path(get_pid_filepath(str(home / "ep")))
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        assert "is running" in done.stdout
        assert get_status("ep") is EndpointStatus.RUNNING
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            pass
    finally:
        stopped = subprocess.run(  # noqa: PLW1510 - exit codes are asserted
            [_script(), "stop", "ep"], env=env, capture_output=True, text=True
        )
    assert stopped.returncode == 0
    assert not pid_file.exists()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_detached_start_reports_failure(home: Path) -> None:
    # A port someone else holds: the daemon dies and start says so.
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        _configure("ep", "--port", str(port))
        cfg = read_config(str(home / "ep"))
        write_config(cfg, str(home / "ep"))
        done = subprocess.run(  # noqa: PLW1510 - exit codes are asserted
            [_script(), "start", "ep"],
            env={**os.environ, "PROXYSTORE_HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    # Found before detaching: one line naming the port, no "see log".
    assert done.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert get_status("ep") is not EndpointStatus.RUNNING


def test_commands_are_importable_api() -> None:
    for name in commands.__all__:
        assert callable(getattr(commands, name))
