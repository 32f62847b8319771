"""A relay server (`proxystore-relay`) and p2p peers as separate loopback processes."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from .ports import free_port
from .servers import ServerAddress, wait_for_tcp

__all__ = ["PeerProcess", "RelayProcess", "peers", "relay_script", "running_relay"]

_ROOT = Path(__file__).resolve().parents[3]


def relay_script() -> str:
    """Return the path of the `proxystore-relay` console script of this environment.

    Raises:
        FileNotFoundError: If the script is not installed next to the interpreter.
    """
    found = shutil.which("proxystore-relay", path=str(Path(sys.executable).parent))
    if found is None:
        raise FileNotFoundError("proxystore-relay is not installed in this venv")
    return found


class RelayProcess:
    """`proxystore-relay --host 127.0.0.1 --port P`, startable again after `kill()`."""

    def __init__(self, workdir: Path, *args: str) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.args = args
        self.log = workdir / f"relay-{self.port}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        """Start the relay and wait until it accepts connections.

        Raises:
            RuntimeError: If it exits or does not listen within `timeout`.
        """
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    relay_script(),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--log-level",
                    "INFO",
                    *self.args,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"relay exited with {self._process.returncode}: "
                    + self.log.read_text(errors="replace")[-2000:]
                )
            if wait_for_tcp(ServerAddress("127.0.0.1", self.port)):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"relay did not listen on {self.port} within {timeout} s")

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def kill(self) -> None:
        """SIGKILL the relay (no goodbye to its clients)."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait()

    def stop(self) -> None:
        """SIGTERM the relay, SIGKILL it if it has not exited after 10 s."""
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()


class PeerProcess:
    """`python -m tests.integration.harness.p2p_peer RELAY UUID [extra...]`.

    Args:
        relay: Relay address.
        log: File the peer's stderr is appended to.
        extra: More arguments for the peer program (e.g. `--send PEER NBYTES`).
        peer_uuid: UUID to register with; a random one when `None`.
    """

    def __init__(
        self, relay: str, log: Path, *extra: str, peer_uuid: uuid.UUID | None = None
    ) -> None:
        self.uuid = uuid.uuid4() if peer_uuid is None else peer_uuid
        self.log = log
        with log.open("ab") as stderr:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.integration.harness.p2p_peer",
                    relay,
                    str(self.uuid),
                    *extra,
                ],
                cwd=_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                start_new_session=True,
            )

    def wait_for(self, line: str, timeout: float = 60) -> None:
        """Wait until the peer prints `line`.

        Raises:
            RuntimeError: If the peer exits first.
            TimeoutError: If it does not print `line` within `timeout` seconds.
        """
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.process.stdout.readline().decode().strip()
            if got == line:
                return
            if not got and self.process.poll() is not None:
                raise RuntimeError(f"peer exited with {self.process.returncode}")
        raise TimeoutError(f"peer did not print {line} within {timeout} s")

    def signal(self, signum: int) -> None:
        """Send `signum` to the peer if it is still running."""
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL the peer (resuming it first if stopped) and reap it."""
        self.signal(signal.SIGKILL)
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


@contextlib.contextmanager
def running_relay(workdir: Path, *args: str) -> Iterator[RelayProcess]:
    """A started `RelayProcess`, stopped (and reaped) on exit."""
    process = RelayProcess(workdir, *args)
    process.start()
    try:
        yield process
    finally:
        process.stop()
        process.kill()
        assert not process.alive()


@contextlib.contextmanager
def peers(relay: RelayProcess) -> Iterator[Callable[..., PeerProcess]]:
    """A function starting ready peers of `relay`; all are killed on exit.

    The function takes the peer program's extra arguments, `wait` (the line to
    wait for, `READY` by default) and `peer_uuid`.
    """
    started: list[PeerProcess] = []

    def start(
        *extra: str, wait: str = "READY", peer_uuid: uuid.UUID | None = None
    ) -> PeerProcess:
        log = relay.workdir / f"peer-{len(started)}.log"
        peer = PeerProcess(relay.address, log, *extra, peer_uuid=peer_uuid)
        started.append(peer)
        peer.wait_for(wait)
        return peer

    try:
        yield start
    finally:
        for peer in started:
            peer.kill()
        assert all(p.process.poll() is not None for p in started)
