"""The files an endpoint daemon writes are its user's alone unless asked otherwise.

A real `proxystore-endpoint start` daemon (forked, detached) in a temporary home,
started from a shell whose umask lets the group write (the daemon used to set such
a umask itself). Its config, log, PID file and SQLite database (with its journals)
must come out 0600 in a 0700 directory, or 0644 with `private_files = false`.
"""

from __future__ import annotations

import os
import stat
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxystore.endpoint.config import read_config, write_config
from tests.integration.harness.endpoint import script
from tests.integration.harness.ports import free_port

pytestmark = pytest.mark.integration


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [script("proxystore-endpoint"), *args],
        env={**os.environ, "PROXYSTORE_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=lambda: os.umask(0o002),
    )


@pytest.fixture
def daemon_home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    done = _cli(
        home,
        "configure",
        "ep",
        "--host",
        "127.0.0.1",
        "--port",
        str(free_port()),
        "--no-relay-server",
        "--persist",
    )
    assert done.returncode == 0, done.stderr
    try:
        yield home
    finally:
        _cli(home, "stop", "ep")


def _start_and_store(home: Path) -> None:
    done = _cli(home, "start", "ep")
    assert done.returncode == 0, done.stdout + done.stderr
    cfg = read_config(str(home / "ep"))
    request = urllib.request.Request(
        f"http://127.0.0.1:{cfg.port}/set?key=k",
        data=b"x" * 100_000,
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def _modes(directory: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()}


def test_daemon_files_are_private(daemon_home: Path) -> None:
    endpoint_dir = daemon_home / "ep"
    _start_and_store(daemon_home)
    modes = _modes(endpoint_dir)
    for name in ("config.toml", "log.txt", "daemon.pid", "blobs.db"):
        assert modes.get(name) == 0o600, (name, modes)
    assert set(modes.values()) == {0o600}, modes
    assert stat.S_IMODE(endpoint_dir.stat().st_mode) == 0o700


def test_private_files_false_opens_them_read_only(daemon_home: Path) -> None:
    endpoint_dir = daemon_home / "ep"
    cfg = read_config(str(endpoint_dir))
    cfg.private_files = False
    write_config(cfg, str(endpoint_dir))
    _start_and_store(daemon_home)
    modes = _modes(endpoint_dir)
    for name in ("config.toml", "log.txt", "daemon.pid", "blobs.db"):
        assert modes.get(name) == 0o644, (name, modes)


def test_relay_log_is_private(tmp_path: Path) -> None:
    # The relay's log names every endpoint that connects and its address.
    log_dir = tmp_path / "relay-logs"
    port = free_port()
    relay = subprocess.Popen(
        [
            script("proxystore-relay"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-dir",
            str(log_dir),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        umask=0o002,
    )
    try:
        log = log_dir / "server.log"
        deadline = time.monotonic() + 30
        while not (log.exists() and log.stat().st_size) and relay.poll() is None:
            assert time.monotonic() < deadline, "the relay wrote no log in 30 s"
            time.sleep(0.1)
        assert relay.poll() is None, "the relay exited"
        assert stat.S_IMODE(log.stat().st_mode) == 0o600
        assert stat.S_IMODE(log_dir.stat().st_mode) == 0o700
    finally:
        relay.terminate()
        try:
            relay.wait(timeout=10)
        except subprocess.TimeoutExpired:
            relay.kill()
            relay.wait()
