"""Start, kill, restart and stop one server, as a container or as a process.

Every server started here is recorded in a per-process registry until it is stopped,
and every container carries a label naming this process's session, so that the
session-finish hook can prove nothing survived (:func:`reap`) even when a fixture's
teardown never ran.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from .images import Program, ensure_image
from .mode import BackendUnavailableError, Mode, docker_client, select_mode
from .ports import free_port

__all__ = [
    "SESSION_LABEL",
    "Server",
    "ServerAddress",
    "reap",
    "start_server",
    "wait_for_tcp",
]

#: Label put on every container of this process, valued with a per-process id.
SESSION_LABEL = "org.proxystore.test.session"
_SESSION_ID = uuid.uuid4().hex

_live: set[Server] = set()
_live_lock = threading.Lock()


class ServerAddress(NamedTuple):
    """Where a server listens."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def wait_for_tcp(address: ServerAddress, timeout: float = 0.2) -> bool:
    """Return whether ``address`` accepts a TCP connection now."""
    try:
        with socket.create_connection(address, timeout=timeout):
            return True
    except OSError:
        return False


class Server:
    """One running server: a container or a child process, same handle either way."""

    def __init__(
        self,
        program: Program,
        args: Sequence[str],
        address: ServerAddress,
        mode: Mode,
        workdir: Path,
        mounts: Sequence[Path] = (),
    ) -> None:
        self.program = program
        #: Host directories a container sees at the same path (read-only), e.g.
        #: TLS certificates named in ``args``; plain processes see them anyway.
        self.mounts = tuple(mounts)
        self.args = tuple(args)
        self.address = address
        self.mode = mode
        self.workdir = workdir
        self._process: subprocess.Popen[bytes] | None = None
        self._container: Any = None  # testcontainers DockerContainer
        self._log = workdir / f"{program.name}-{address.port}.log"

    def __repr__(self) -> str:
        return f"<{self.program.name} {self.mode.kind} at {self.address}>"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the server (again, after :meth:`kill`, with the same arguments)."""
        with _live_lock:
            _live.add(self)
        if self.mode.kind == "process":
            self._start_process()
        elif self._container is None:
            self._start_container()
        else:
            # Restart the same (killed) container: same command, same port.
            self._container.get_wrapped_container().start()

    def _start_process(self) -> None:
        binary = self.program.host_binary()
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                [str(binary), *self.args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                # Own process group: a Ctrl-C to pytest does not race our teardown.
                start_new_session=True,
            )

    def _start_container(self) -> None:
        from testcontainers.core.config import testcontainers_config
        from testcontainers.core.container import DockerContainer

        testcontainers_config.ryuk_disabled = True
        if self.mode.images == "official":
            image, argv = self.program.official_image, self.program.official_argv
        else:
            image, argv = ensure_image(self.program), self.program.local_argv()
        container = (
            DockerContainer(image)
            .with_command([*argv, *self.args])
            .with_kwargs(
                network_mode="host",
                labels={SESSION_LABEL: _SESSION_ID},
            )
        )
        for mount in self.mounts:
            container = container.with_volume_mapping(str(mount), str(mount), "ro")
        self._container = container
        container.start()

    def alive(self) -> bool:
        """Return whether the server process or container is still running."""
        if self._process is not None:
            return self._process.poll() is None
        if self._container is not None:
            try:
                wrapped = self._container.get_wrapped_container()
                wrapped.reload()
                return bool(wrapped.status == "running")
            except Exception:  # removed or engine gone: not running
                return False
        return False

    def kill(self) -> None:
        """SIGKILL the server (it can be started again with :meth:`start`)."""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.send_signal(signal.SIGKILL)
            self._process.wait()
        elif self._container is not None:
            self._container.get_wrapped_container().kill(signal="SIGKILL")
            self._container.get_wrapped_container().wait()

    def stop(self) -> None:
        """Stop and remove the server; safe to call twice."""
        try:
            if self._process is not None:
                if self._process.poll() is None:
                    self._process.terminate()
                    try:
                        self._process.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        self._process.kill()
                        self._process.wait()
                self._process = None
            if self._container is not None:
                container, self._container = self._container, None
                container.stop(force=True)
        finally:
            with _live_lock:
                _live.discard(self)

    def logs(self) -> str:
        """Return the last lines the server printed (for error messages)."""
        try:
            if self._container is not None:
                out, err = self._container.get_logs()
                text = (out + err).decode(errors="replace")
            else:
                text = self._log.read_text(errors="replace")
        except Exception as exc:  # logs are best effort
            return f"<no logs: {exc}>"
        return "\n".join(text.splitlines()[-15:])

    def wait_ready(
        self, ready: Callable[[ServerAddress], bool], timeout: float
    ) -> None:
        """Block until ``ready(address)`` is true.

        Raises:
            BackendUnavailableError: When the server exits or ``timeout`` passes.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready(self.address):
                return
            if not self.alive():
                raise BackendUnavailableError(
                    f"{self!r} exited during start-up:\n{self.logs()}"
                )
            time.sleep(0.05)
        raise BackendUnavailableError(
            f"{self!r} not ready after {timeout:.0f}s:\n{self.logs()}"
        )


def start_server(
    program: Program,
    make_args: Callable[[int], Sequence[str]],
    ready: Callable[[ServerAddress], bool],
    *,
    workdir: Path | None = None,
    companions: Sequence[int] = (),
    timeout: float = 30.0,
    attempts: int = 3,
    mounts: Sequence[Path] = (),
) -> Server:
    """Start ``program`` on a free loopback port and wait until it is ready.

    ``make_args(port)`` gives the command-line arguments. A server that dies at
    start-up (typically a port lost to another process between probe and bind) is
    retried on a new port, up to ``attempts`` times. ``mounts`` are host
    directories a container must see (at the same path).

    Raises:
        BackendUnavailableError: When the program is missing or never gets ready.
    """
    mode = select_mode()
    if mode.kind == "process" or mode.images == "local":
        program.host_binary()  # fail early with the install hint
    workdir = workdir or Path(tempfile.mkdtemp(prefix=f"ps-{program.name}-"))
    error: BackendUnavailableError | None = None
    for _ in range(attempts):
        port = free_port(companions=companions)
        server = Server(
            program,
            make_args(port),
            ServerAddress("127.0.0.1", port),
            mode,
            workdir,
            mounts,
        )
        try:
            server.start()
            server.wait_ready(ready, timeout)
        except BaseException as exc:
            server.stop()
            if isinstance(exc, BackendUnavailableError):
                error = exc
                continue
            raise
        return server
    assert error is not None
    raise error


def reap() -> list[str]:
    """Stop whatever this process started and did not stop; describe each one.

    Also removes containers that carry this process's session label even if their
    handle was lost. Returns descriptions of the survivors (empty when clean).
    """
    survivors: list[str] = []
    with _live_lock:
        leftover = list(_live)
    for server in leftover:
        survivors.append(repr(server))
        try:
            server.stop()
        except Exception as exc:  # keep reaping the others
            survivors.append(f"{server!r}: stop failed: {exc}")
    if select_mode.cache_info().currsize and select_mode().kind == "testcontainers":
        survivors.extend(_reap_labelled_containers())
    return survivors


def _reap_labelled_containers() -> list[str]:
    try:
        client = docker_client(timeout=30)
    except BackendUnavailableError:
        return []
    try:
        found = client.containers.list(
            all=True, filters={"label": f"{SESSION_LABEL}={_SESSION_ID}"}
        )
        for container in found:
            container.remove(force=True)
        return [f"container {c.short_id} ({c.image.tags})" for c in found]
    except Exception as exc:
        return [f"could not list containers: {exc}"]
    finally:
        client.close()
