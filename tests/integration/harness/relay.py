"""A relay server (`proxystore-relay`) as a separate process on a loopback port."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .ports import free_port
from .servers import ServerAddress, wait_for_tcp

__all__ = ["RelayProcess", "relay_script"]


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
