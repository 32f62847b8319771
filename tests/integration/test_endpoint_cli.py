"""`proxystore-endpoint` and `proxystore-relay` as a newcomer meets them.

Every test drives the installed console scripts in real processes, each with its
own `PROXYSTORE_HOME` and free loopback ports, and the real daemon (`start`
detaches unless told otherwise). What is checked is what the person at the
terminal sees: one line naming the cause and the fix, no traceback, and a
relay's state that is reported rather than hidden in a log file. Every daemon
and relay started here is stopped, also when a test fails.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from proxystore.endpoint.config import get_pid_filepath, read_config, write_config
from tests.integration.harness.endpoint import (
    RelayProcess,
    _accepts,
    _wait,
    script,
    start_relay,
)
from tests.integration.harness.ports import free_port
from tests.integration.harness.secure_redis import make_tls_files

#: Seconds any single CLI call may take (a hang is a failure, not a stuck run).
_CALL_TIMEOUT = 90.0


@dataclass
class Cli:
    """Runs the console scripts with one proxystore home; stops what it started."""

    home: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    relays: list[RelayProcess] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            # No Globus client credentials from the developer's environment.
            if not k.startswith("PROXYSTORE_GLOBUS_")
        }
        return {**env, "PROXYSTORE_HOME": str(self.home), **self.extra_env}

    def run(
        self, program: str, *args: str, timeout: float = _CALL_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: PLW1510 - callers assert the exit code
            [script(program), *args],
            env=self.env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
        )

    def endpoint(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("proxystore-endpoint", *args)

    def configure(self, name: str, *args: str) -> int:
        """Configure `name` on a free loopback port with WebRTC kept on loopback."""
        port = free_port()
        done = self.endpoint(
            "configure", name, "--host", "127.0.0.1", "--port", str(port), *args
        )
        assert done.returncode == 0, done.stdout + done.stderr
        cfg = read_config(str(self.home / name))
        cfg.relay.ice_servers = []
        cfg.relay.ice_addresses = ["127.0.0.1"]
        write_config(cfg, str(self.home / name))
        return port

    def start_peering(self, name: str, relay_address: str) -> None:
        """Configure `name` with a relay (no auth) and start it detached."""
        self.configure(name, "--relay-address", relay_address, "--no-relay-auth")
        done = self.endpoint("start", name)
        assert done.returncode == 0, done.stdout + done.stderr

    def start_relay_with(self, toml: str, port: int) -> None:
        """Start `proxystore-relay -c relay.toml` (extra settings in `toml`)."""
        path = self.home / f"relay-{port}.toml"
        path.write_text(f'host = "127.0.0.1"\nport = {port}\n{toml}')
        relay = RelayProcess(port, self.home)
        with (self.home / f"relay-{port}.out").open("ab") as out:
            relay.proc = subprocess.Popen(
                [script("proxystore-relay"), "-c", str(path)],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.relays.append(relay)
        _wait(lambda: _accepts(port), relay.proc, "relay", timeout=30)

    def cleanup(self) -> None:
        for entry in sorted(self.home.iterdir()):
            pid_file = Path(get_pid_filepath(str(entry)))
            if entry.is_dir() and pid_file.exists():
                self.endpoint("stop", entry.name)
                _kill_pid_file(pid_file)
        for relay in self.relays:
            relay.stop()


def _kill_pid_file(pid_file: Path) -> None:
    # `stop` failed to stop it: make sure no daemon outlives the test.
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _one_line(text: str) -> str:
    """The single line of `text`; fails when there are more, or a traceback."""
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    runner = Cli(tmp_path / "home")
    runner.home.mkdir()
    try:
        yield runner
    finally:
        runner.cleanup()


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[RelayProcess]:
    process = start_relay(tmp_path / "relay")
    try:
        yield process
    finally:
        process.stop()


# ------------------------------------------------ defaults that start (or say why)


def test_default_globus_auth_without_login_fails_in_the_foreground(cli: Cli) -> None:
    # The first step: the default configuration asks the relay for Globus
    # Auth; without a login the daemon used to start an interactive login with no
    # terminal and die with `click.exceptions.Abort` in its log.
    port = cli.configure("my-ep", "--relay-address", f"ws://127.0.0.1:{free_port()}")
    started = time.monotonic()
    done = cli.endpoint("start", "my-ep")
    assert done.returncode == 1
    line = _one_line(done.stderr)
    assert "proxystore-globus-auth login" in line
    assert "--no-relay-auth" in line
    assert time.monotonic() - started < 30
    # Checked before detaching: no daemon was made, so nothing could prompt.
    assert not Path(get_pid_filepath(str(cli.home / "my-ep"))).exists()
    assert not _accepts(port)
    log = cli.home / "my-ep" / "log.txt"
    assert not log.exists() or "Abort" not in log.read_text()


# --------------------------------------------------- a relay that is not there


def test_missing_relay_is_reported_listed_and_fails_peer_requests_fast(
    cli: Cli,
) -> None:
    relay_address = f"ws://127.0.0.1:{free_port()}"
    cli.configure("a", "--relay-address", relay_address, "--no-relay-auth")
    done = cli.endpoint("start", "a")
    assert done.returncode == 0, done.stderr
    assert "is running" in done.stdout
    warning = _one_line(done.stderr)
    assert warning.startswith("WARNING:")
    assert relay_address in warning
    assert "not registered" in warning
    assert "not reachable" in warning

    listed = cli.endpoint("list")
    assert listed.returncode == 0
    row = next(line for line in listed.stdout.splitlines() if line.startswith("a "))
    assert "RUNNING" in row
    assert relay_address in row
    assert "NOT CONNECTED" in row

    # A peer request names the missing relay at once (it used to wait 30 s and
    # blame the peer: "did not answer a info request within 60 s", HTTP 424).
    started = time.monotonic()
    asked = cli.endpoint("test", "--remote", str(uuid.uuid4()), "a", "get", "KEY")
    elapsed = time.monotonic() - started
    assert asked.returncode == 1
    line = _one_line(asked.stderr)
    assert f"not connected to the relay at {relay_address}" in line
    assert "last attempt: ConnectionRefusedError" in line
    assert "HTTP" not in line
    assert elapsed < 10

    stopped = cli.endpoint("stop", "a")
    assert stopped.returncode == 0


def test_start_reports_the_relay_accepting_the_endpoint(
    cli: Cli, relay: RelayProcess
) -> None:
    cli.configure("a", "--relay-address", relay.address, "--no-relay-auth")
    done = cli.endpoint("start", "a")
    assert done.returncode == 0, done.stderr
    assert f"Registered with the relay at {relay.address}" in done.stdout
    assert done.stderr == ""
    listed = cli.endpoint("list").stdout
    row = next(line for line in listed.splitlines() if line.startswith("a "))
    assert f"{relay.address} (registered)" in row


def test_relay_certificate_failure_fails_start_with_the_fix(
    cli: Cli, tmp_path: Path
) -> None:
    # A wss:// relay whose certificate this host does not trust: retrying will
    # never help, so start fails before detaching instead of running silently.
    tls = make_tls_files(tmp_path)
    port = free_port()
    cli.start_relay_with(
        f'certfile = "{tls.server_cert}"\nkeyfile = "{tls.server_key}"\n', port
    )
    ep_port = cli.configure(
        "a", "--relay-address", f"wss://127.0.0.1:{port}", "--no-relay-auth"
    )
    done = cli.endpoint("start", "a")
    assert done.returncode == 1
    line = _one_line(done.stderr)
    assert "certificate" in line
    assert "verify_certificate" in line
    assert not _accepts(ep_port)


# ----------------------------------------- peer requests: the real cause, fast


def test_peer_unknown_to_the_relay_fails_fast_and_says_so(
    cli: Cli, relay: RelayProcess
) -> None:
    cli.start_peering("a", relay.address)
    peer = uuid.uuid4()
    started = time.monotonic()
    asked = cli.endpoint("test", "--remote", str(peer), "a", "get", "KEY")
    assert asked.returncode == 1
    line = _one_line(asked.stderr)
    assert f"{peer} is unknown to the relay" in line
    assert "HTTP error code" not in line
    assert time.monotonic() - started < 15


_SILENT_PEER = """
import asyncio, sys, uuid
from proxystore.p2p.relay.client import RelayClient

async def main():
    async with RelayClient(sys.argv[1], client_uuid=uuid.UUID(sys.argv[2])):
        print("registered", flush=True)
        await asyncio.sleep(600)

asyncio.run(main())
"""


def test_peer_that_never_answers_fails_with_the_true_duration(
    cli: Cli, relay: RelayProcess
) -> None:
    # A peer registered with the relay that never answers an offer. The request
    # used to give up after 30 s and claim 60 s: the stated time must be the one
    # that elapsed.
    cli.start_peering("a", relay.address)
    peer = uuid.uuid4()
    silent = subprocess.Popen(
        [sys.executable, "-c", _SILENT_PEER, relay.address, str(peer)],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert silent.stdout is not None
        assert silent.stdout.readline().strip() == "registered"
        started = time.monotonic()
        asked = cli.endpoint("test", "--remote", str(peer), "a", "get", "KEY")
        elapsed = time.monotonic() - started
    finally:
        silent.kill()
        silent.wait()
        if silent.stdout is not None:
            silent.stdout.close()
    assert asked.returncode == 1
    line = _one_line(asked.stderr)
    assert str(peer) in line
    stated = [float(n) for n in re.findall(r"within (\d+(?:\.\d+)?) s", line)]
    assert stated, line
    assert abs(stated[-1] - elapsed) < 5, (stated, elapsed, line)


# -------------------------------------------- one line with the fix, no traceback


def test_relay_port_out_of_range_is_one_error(cli: Cli) -> None:
    done = cli.run("proxystore-relay", "--port", "99999", timeout=30)
    assert done.returncode == 2
    assert "Traceback" not in done.stdout + done.stderr
    error = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(error) == 1
    assert "99999" in error[0]
    assert "65535" in error[0]


def test_configure_overlong_name_is_one_line(cli: Cli) -> None:
    done = cli.endpoint("configure", "x" * 300, "--no-relay-server")
    assert done.returncode == 1
    line = _one_line(done.stderr)
    assert "too long" in line
    assert "shorter NAME" in line


def test_detached_start_on_a_taken_port_names_the_port(cli: Cli) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        cli.configure("a", "--no-relay-server")
        cfg = read_config(str(cli.home / "a"))
        cfg.port = port
        write_config(cfg, str(cli.home / "a"))
        done = cli.endpoint("start", "a")
    assert done.returncode == 1
    line = _one_line(done.stderr)
    assert f"port {port}" in line
    assert "already in use" in line
    assert "see " not in line
    assert not Path(get_pid_filepath(str(cli.home / "a"))).exists()


def test_failed_detached_start_prints_the_logs_error(cli: Cli) -> None:
    # The daemon itself fails (the relay refuses an endpoint without its token):
    # start repeats the log's error instead of "see log.txt".
    port = free_port()
    cli.extra_env["RELAY_TOKEN"] = "s3cret-token"
    cli.start_relay_with(
        '[auth]\nmethod = "token"\n[auth.kwargs]\ntoken_env = "RELAY_TOKEN"\n', port
    )
    cli.configure("a", "--relay-address", f"ws://127.0.0.1:{port}", "--no-relay-auth")
    done = cli.endpoint("start", "a")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "refused registration" in done.stderr
    assert "did not start" in done.stderr
    assert "s3cret-token" not in done.stdout + done.stderr
    assert not Path(get_pid_filepath(str(cli.home / "a"))).exists()


def test_help_shows_defaults_and_that_start_detaches(cli: Cli) -> None:
    start = cli.endpoint("start", "--help").stdout
    assert "[default: detach]" in start
    assert "daemon" in start
    configure = " ".join(cli.endpoint("configure", "--help").stdout.split())
    assert "[default: wss://relay.proxystore.dev]" in configure
    assert "[default: relay-auth]" in configure
    relay = " ".join(cli.run("proxystore-relay", "--help").stdout.split())
    assert "[default: 8700]" in relay


def test_endpoint_connector_given_a_name_points_to_list(cli: Cli) -> None:
    done = subprocess.run(  # noqa: PLW1510 - the exit code is asserted
        [
            sys.executable,
            "-c",
            "from proxystore.connectors.endpoint import EndpointConnector\n"
            "EndpointConnector(['site-a'])",
        ],
        env=cli.env,
        capture_output=True,
        text=True,
        timeout=_CALL_TIMEOUT,
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert "takes endpoint UUIDs" in last
    assert "proxystore-endpoint list" in last
