"""Relay servers and endpoints as child processes, started through their CLIs.

Each endpoint lives in its own proxystore home directory (`<home>/<name>/`), is
configured with `proxystore-endpoint configure` and started with
`proxystore-endpoint start NAME --no-detach`, so the test talks to exactly what
a user would run. WebRTC stays on loopback: no ICE servers, and ICE may offer
only 127.0.0.1. Every process is stopped (SIGTERM, then SIGKILL) by `stop()`,
and `stop()` checks that its port is free again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from proxystore.endpoint.config import (
    EndpointConfig,
    read_config,
    write_config,
)
from tests.integration.harness.ports import free_port

__all__ = ["EndpointProcess", "RelayProcess", "script", "start_endpoint", "start_relay"]


def script(name: str) -> str:
    """Path of a console script installed next to this interpreter."""
    path = shutil.which(name, path=os.path.dirname(sys.executable))
    if path is None:
        raise RuntimeError(f"console script {name} is not installed")
    return path


def _port_free(port: int) -> bool:
    # Nothing listens any more (TIME_WAIT leftovers of closed connections are
    # fine: servers bind with SO_REUSEADDR).
    return not _accepts(port)


def _terminate(proc: subprocess.Popen[bytes], port: int) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 10
    while not _port_free(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    if not _port_free(port):
        raise AssertionError(f"port {port} still listens after its process ended")


@dataclass
class RelayProcess:
    """A `proxystore-relay` child process."""

    port: int
    log_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    #: The `proxystore-relay` console script (another install's, e.g. the
    #: reference release in a benchmark).
    program: str | None = None

    @property
    def address(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start (or restart) the relay on its port and wait until it listens."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / "relay.out").open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    self.program or script("proxystore-relay"),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--log-dir",
                    str(self.log_dir),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait(lambda: _accepts(self.port), self.proc, "relay", timeout=30)

    def kill(self) -> None:
        """SIGKILL the relay (a crash)."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None:
            _terminate(self.proc, self.port)


@dataclass
class EndpointProcess:
    """A `proxystore-endpoint start NAME --no-detach` child process."""

    name: str
    home: Path
    config: EndpointConfig
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)
    #: The `proxystore-endpoint` console script (default: this install's).
    program: str | None = None

    @property
    def uuid(self) -> str:
        return self.config.uuid

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.config.port}"

    @property
    def log(self) -> str:
        path = self.home / self.name / "log.txt"
        return path.read_text() if path.exists() else ""

    def start(self) -> None:
        """Start the endpoint and wait until it answers with its UUID."""
        with (self.home / f"{self.name}.out").open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    self.program or script("proxystore-endpoint"),
                    "start",
                    self.name,
                    "--no-detach",
                ],
                env={**os.environ, "PROXYSTORE_HOME": str(self.home), **self.env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait(self._answers, self.proc, f"endpoint {self.name}", timeout=60)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.address}/endpoint", timeout=1) as r:
                return bool(json.loads(r.read())["uuid"] == self.uuid)
        except (OSError, ValueError):
            return False

    def kill(self) -> None:
        """SIGKILL the endpoint (a crash)."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None:
            _terminate(self.proc, self.config.port)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait(
    ready: object, proc: subprocess.Popen[bytes], what: str, timeout: float
) -> None:
    assert callable(ready)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}")
        if ready():
            return
        time.sleep(0.05)
    with contextlib.suppress(Exception):
        proc.kill()
        proc.wait()
    raise RuntimeError(f"{what} did not become ready within {timeout} s")


def start_relay(log_dir: Path, program: str | None = None) -> RelayProcess:
    """Start a relay on a free loopback port."""
    relay = RelayProcess(free_port(), log_dir, program=program)
    relay.start()
    return relay


def start_endpoint(
    home: Path,
    name: str,
    relay: RelayProcess | None,
    *,
    direct: bool = True,
    request_timeout: float = 60.0,
    max_object_size: int = 200_000_000,
    persist: bool = False,
    program: str | None = None,
) -> EndpointProcess:
    """Configure `name` in `home` with the CLI, adjust its config, and start it.

    `program` runs another install's `proxystore-endpoint` (the reference
    release reads the extra keys written here and ignores them).
    """
    port = free_port()
    args = [
        program or script("proxystore-endpoint"),
        "configure",
        name,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-relay-auth",
    ]
    if relay is None:
        args.append("--no-relay-server")
    else:
        args += ["--relay-address", relay.address]
    if persist:
        args.append("--persist")
    subprocess.run(
        args,
        env={**os.environ, "PROXYSTORE_HOME": str(home)},
        check=True,
        capture_output=True,
    )
    cfg = read_config(str(home / name))
    cfg.relay.ice_servers = []
    cfg.relay.ice_addresses = ["127.0.0.1"]
    cfg.storage.max_object_size = max_object_size
    cfg.peering.direct = direct
    cfg.peering.request_timeout = request_timeout
    write_config(cfg, str(home / name))
    for attempt in range(3):
        endpoint = EndpointProcess(
            name, home, read_config(str(home / name)), program=program
        )
        try:
            endpoint.start()
        except RuntimeError:
            # Probing cannot reserve a port: another process may have taken it
            # before the endpoint bound it. Retry on a new port.
            if attempt == 2:
                raise
            cfg = read_config(str(home / name))
            cfg.port = free_port()
            write_config(cfg, str(home / name))
        else:
            return endpoint
    raise AssertionError("unreachable")
