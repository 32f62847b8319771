"""`stop` and the status of an endpoint name its own daemon, never a PID file's.

A PID file can name a process that is not the endpoint (a stale file whose PID
was reused, or one containing ``1``): that process must survive `stop`, from the
real console script and from `commands.stop_endpoint`, and must never be signalled.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from proxystore.endpoint import commands
from proxystore.endpoint.cli import cli
from proxystore.endpoint.commands import EndpointStatus, get_status, stop_endpoint
from proxystore.endpoint.config import get_pid_filepath, read_config


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PROXYSTORE_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is not an endpoint (`sleep 60`)."""
    proc = subprocess.Popen(["sleep", "60"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _configure(name: str) -> Path:
    result = CliRunner().invoke(
        cli,
        [
            "configure",
            name,
            "--host",
            "127.0.0.1",
            "--port",
            str(_free_port()),
            "--no-relay-server",
        ],
    )
    assert result.exit_code == 0, result.output
    return Path(get_pid_filepath(os.path.join(os.environ["PROXYSTORE_HOME"], name)))


def _script() -> str:
    path = shutil.which("proxystore-endpoint", path=os.path.dirname(sys.executable))
    assert path is not None
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: PLW1510 - exit codes are asserted
        [_script(), *args], capture_output=True, text=True, timeout=60
    )


def test_stop_script_leaves_a_foreign_pid_alive(
    home: Path, bystander: subprocess.Popen[bytes]
) -> None:
    pid_file = _configure("ep")
    pid_file.write_text(str(bystander.pid))
    stopped = _run("stop", "ep")
    assert stopped.returncode == 0, stopped.stderr
    assert bystander.poll() is None, "stop signalled a process that is not the endpoint"
    [line] = stopped.stderr.strip().splitlines()
    assert "stale" in line
    assert f"PID {bystander.pid}" in line
    assert "nothing was signalled" in line
    assert not pid_file.exists()
    assert get_status("ep") is EndpointStatus.STOPPED

    # The status of such a PID file: stale (HANGING), never RUNNING.
    pid_file.write_text(str(bystander.pid))
    assert get_status("ep") is EndpointStatus.HANGING
    listed = _run("list")
    assert listed.returncode == 0
    assert "RUNNING" not in listed.stdout
    assert "HANGING" in listed.stdout
    assert f"PID {bystander.pid}" in listed.stderr
    assert "proxystore-endpoint stop ep" in listed.stderr
    assert bystander.poll() is None


def test_stop_endpoint_leaves_a_foreign_pid_alive(
    home: Path, bystander: subprocess.Popen[bytes]
) -> None:
    pid_file = _configure("ep")
    pid_file.write_text(str(bystander.pid))
    assert stop_endpoint("ep") == 0
    assert bystander.poll() is None
    assert get_status("ep") is EndpointStatus.STOPPED


def test_pid_1_is_never_signalled(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int]] = []
    real_kill = os.kill

    def kill(pid: int, sig: int) -> None:
        calls.append((pid, sig))
        if pid != 1:
            real_kill(pid, sig)

    monkeypatch.setattr(commands, "_STOP_GRACE", 0.2)
    monkeypatch.setattr(os, "kill", kill)
    pid_file = _configure("ep")
    pid_file.write_text("1")
    assert stop_endpoint("ep") == 0
    pid_file.write_text("1")
    result = CliRunner().invoke(cli, ["stop", "ep"])
    assert result.exit_code == 0
    pid_file.write_text("1")
    assert CliRunner().invoke(cli, ["list"]).exit_code == 0
    assert [call for call in calls if call[0] == 1] == []
    assert get_status("ep") is EndpointStatus.HANGING
    assert "stale" in result.output


def test_stop_signals_the_daemon_not_the_pid_file(
    home: Path, bystander: subprocess.Popen[bytes]
) -> None:
    # A real detached daemon, whose PID file is then overwritten with a
    # bystander's PID: `stop` still stops the daemon, and only the daemon.
    pid_file = _configure("ep")
    started = _run("start", "ep", "--detach")
    daemon = commands._daemon_pid(str(pid_file.parent))
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert daemon is not None
        assert pid_file.read_text().strip() == str(daemon)
        assert get_status("ep") is EndpointStatus.RUNNING
        again = _run("start", "ep", "--detach")
        assert again.returncode == 1
        assert "already running" in again.stderr
        pid_file.write_text(str(bystander.pid))
        assert get_status("ep") is EndpointStatus.RUNNING
        stopped = _run("stop", "ep")
        assert stopped.returncode == 0, stopped.stderr
        assert "has been stopped" in stopped.stdout
    finally:
        if daemon is not None and commands._daemon_pid(str(pid_file.parent)):
            os.kill(daemon, signal.SIGKILL)
    assert bystander.poll() is None
    assert commands._daemon_pid(str(pid_file.parent)) is None
    assert get_status("ep") is EndpointStatus.STOPPED
    port = read_config(str(pid_file.parent)).port
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_lock_alone_identifies_the_daemon_without_proc(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without /proc (no start times) the lock still decides.
    monkeypatch.setattr(commands, "_start_time", lambda pid: None)
    monkeypatch.setattr(commands, "_LOCK_WAIT", 0.1)
    pid_file = _configure("ep")
    endpoint_dir = str(pid_file.parent)
    with commands._pid_file(str(pid_file)):
        assert commands._daemon_pid(endpoint_dir) == os.getpid()
        assert get_status("ep") is EndpointStatus.RUNNING
        with (
            pytest.raises(commands._AlreadyRunningError),
            commands._daemon_lock(endpoint_dir),
        ):
            pass
    assert not pid_file.exists()
    assert commands._daemon_pid(endpoint_dir) is None  # lock file left, not held
    pid_file.write_text(str(os.getpid()))
    assert get_status("ep") is EndpointStatus.HANGING


def test_start_time_of_a_live_and_a_missing_process() -> None:
    if not os.path.isdir("/proc/self"):
        pytest.skip("no /proc on this system")
    assert commands._start_time(os.getpid()) is not None
    assert commands._start_time(2**22 + 12345) is None
