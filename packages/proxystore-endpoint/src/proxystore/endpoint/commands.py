"""The work behind each `proxystore-endpoint` command.

Each function logs what it did (or why it could not) and returns an exit code (0
success, 1 failure) instead of raising, so the CLI stays a thin shell and tests can
call these directly.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import fcntl
import json
import logging
import os
import random
import shutil
import signal
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Literal

from proxystore.endpoint._preflight import (
    check_port,
    endpoint_info,
    new_log_errors,
    probe_relay,
    relay_auth_problem,
)
from proxystore.endpoint.config import (
    ENDPOINT_CONFIG_FILE,
    ENDPOINT_DATABASE_FILE,
    EndpointConfig,
    EndpointRelayAuthConfig,
    EndpointRelayConfig,
    EndpointStorageConfig,
    daemon_umask,
    get_configs,
    get_log_filepath,
    get_pid_filepath,
    read_config,
    write_config,
)
from proxystore.utils.environment import home_dir, hostname

__all__ = [
    "EndpointStatus",
    "configure_endpoint",
    "get_status",
    "list_endpoints",
    "remove_endpoint",
    "start_endpoint",
    "stop_endpoint",
]

logger = logging.getLogger(__name__)

#: Seconds `start --detach` waits for the daemon to accept connections.
_DETACH_READY_TIMEOUT = 30.0
#: Seconds `stop` waits after SIGTERM before sending SIGKILL.
_STOP_GRACE = 10.0
#: Seconds a starting daemon retries its lock (a `list` may hold it shared).
_LOCK_WAIT = 1.0
#: Lock file the daemon holds (`flock`) for its whole life; it names the daemon.
_LOCK_FILE = "daemon.lock"


class EndpointStatus(enum.Enum):
    """State of an endpoint as seen from this host."""

    RUNNING = enum.auto()
    """The endpoint's daemon is alive on this host (it holds the daemon lock)."""
    STOPPED = enum.auto()
    """The endpoint is configured and has no PID file."""
    UNKNOWN = enum.auto()
    """No valid configuration exists for the endpoint."""
    HANGING = enum.auto()
    """A PID file exists but the daemon is not alive here (stale, or runs elsewhere)."""


def _read_pid(pid_file: str) -> int | None:
    try:
        with open(pid_file) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _lock_filepath(endpoint_dir: str) -> str:
    return os.path.join(endpoint_dir, _LOCK_FILE)


def _start_time(pid: int) -> str | None:
    """The start time of process `pid` (field 22 of ``/proc/PID/stat``).

    Returns `None` when it cannot be read: no such process, or no ``/proc``
    (then the daemon lock alone identifies the daemon).
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or ")".
    fields = stat[stat.rindex(b")") + 2 :].split()
    return fields[19].decode() if len(fields) > 19 else None


def _daemon_pid(endpoint_dir: str) -> int | None:
    """The PID of the endpoint's daemon if it is running on this host, else `None`.

    A running daemon holds an exclusive `flock` on the lock file for its whole
    life and has written its PID and start time into it. A lock belongs to
    an open file, so a PID the kernel reused for another process cannot fake it;
    the start time (where ``/proc`` exists) rules out a process that inherited
    the lock from a daemon that has since died. Nothing is ever signalled here.
    """
    try:
        fd = os.open(_lock_filepath(endpoint_dir), os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # held: some process owns it; which one is checked below
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        try:
            identity = json.loads(os.read(fd, 4096))
            pid = int(identity["pid"])
            started = identity.get("start")
        except (OSError, ValueError, KeyError, TypeError):
            return None
    finally:
        os.close(fd)
    if pid <= 1:
        return None
    if started is not None and _start_time(pid) != started:
        return None
    return pid


@contextlib.contextmanager
def _daemon_lock(endpoint_dir: str) -> Iterator[None]:
    """Hold the endpoint's daemon lock, with this process's identity in it.

    Raises:
        _AlreadyRunningError: If another process holds the lock.
    """
    fd = os.open(_lock_filepath(endpoint_dir), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        # A `list` or `stop` elsewhere may hold a shared lock for an instant.
        deadline = time.monotonic() + _LOCK_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    pid = _daemon_pid(endpoint_dir)
                    raise _AlreadyRunningError(
                        "it is already running"
                        + ("" if pid is None else f" (PID {pid})")
                    ) from None
                time.sleep(0.02)
        pid = os.getpid()
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": pid, "start": _start_time(pid)}).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


class _AlreadyRunningError(Exception):
    """Another process holds the endpoint's daemon lock."""


def get_status(name: str, proxystore_dir: str | None = None) -> EndpointStatus:
    """Return the status of the endpoint `name`.

    `RUNNING` only when the endpoint's own daemon is alive on this host (it
    holds the daemon lock), never because the PID file names some live
    process; a PID file without that daemon is `HANGING` (stale).

    Args:
        name: Endpoint name.
        proxystore_dir: Proxystore home directory (default: `home_dir()`).
    """
    endpoint_dir = os.path.join(proxystore_dir or home_dir(), name)
    if not os.path.isdir(endpoint_dir):
        return EndpointStatus.UNKNOWN
    try:
        read_config(endpoint_dir)
    except (FileNotFoundError, ValueError) as exc:
        logger.error(str(exc))
        return EndpointStatus.UNKNOWN
    if _daemon_pid(endpoint_dir) is not None:
        return EndpointStatus.RUNNING
    if os.path.isfile(get_pid_filepath(endpoint_dir)):
        return EndpointStatus.HANGING
    return EndpointStatus.STOPPED


def _stale_pid_file(name: str, pid_file: str) -> str:
    """One line about a PID file whose process is not the endpoint's daemon."""
    pid = _read_pid(pid_file)
    named = "no valid PID" if pid is None else f"PID {pid}"
    return (
        f"Endpoint {name} is not running: its PID file {pid_file} is stale "
        f"({named}, which is not the endpoint's daemon; nothing was signalled)"
    )


def configure_endpoint(
    name: str,
    *,
    host: str = "ip",
    peer_channels: int = 1,
    persist_data: bool = False,
    port: int | None,
    proxystore_dir: str | None = None,
    relay_auth: bool = True,
    relay_server: str | None,
) -> int:
    """Write the configuration of a new endpoint.

    Args:
        name: Endpoint name.
        host: `'ip'`, `'fqdn'`, or a static address to listen on.
        peer_channels: Data channels per peer connection.
        persist_data: Keep objects in a SQLite database in the endpoint directory.
        port: Port to listen on (`None`: a random port in 10240..20480).
        proxystore_dir: Proxystore home directory (default: `home_dir()`).
        relay_auth: Authenticate with the relay server through Globus Auth.
        relay_server: Relay server address (`None`: no peering).

    Returns:
        The exit code.
    """
    proxystore_dir = proxystore_dir or home_dir()
    endpoint_dir = os.path.join(proxystore_dir, name)
    host_addr: str | None = None
    host_type: Literal["fqdn", "ip", "static"]
    choice = host.lower().strip()
    if choice in ("fqdn", "ip"):
        host_type = "fqdn" if choice == "fqdn" else "ip"
    else:
        host_addr, host_type = host, "static"
    try:
        cfg = EndpointConfig(
            name=name,
            uuid=str(uuid.uuid4()),
            host=host_addr,
            port=port if port is not None else random.randint(10 * 1024, 20 * 1024),
            host_type=host_type,
            relay=EndpointRelayConfig(
                address=relay_server,
                auth=EndpointRelayAuthConfig(method="globus" if relay_auth else None),
                peer_channels=peer_channels,
            ),
            storage=EndpointStorageConfig(
                database_path=(
                    os.path.join(endpoint_dir, ENDPOINT_DATABASE_FILE)
                    if persist_data
                    else None
                )
            ),
        )
    except ValueError as exc:
        logger.error(str(exc))
        return 1
    if os.path.exists(endpoint_dir):
        logger.error(f"An endpoint named {name} already exists.")
        logger.info("To reconfigure the endpoint, remove it and try again.")
        return 1
    try:
        write_config(cfg, endpoint_dir)
    except OSError as exc:
        logger.error(_directory_problem(name, endpoint_dir, exc))
        return 1
    logger.info(f"Configured endpoint: {cfg.name} <{cfg.uuid}>")
    logger.info(f"Config and log file directory: {endpoint_dir}")
    logger.info("Start the endpoint with:")
    logger.info(f"  $ proxystore-endpoint start {cfg.name}")
    return 0


def _directory_problem(name: str, endpoint_dir: str, exc: OSError) -> str:
    if exc.errno == errno.ENAMETOOLONG:
        return (
            f"Endpoint name is too long for a directory name ({len(name)} "
            "characters): choose a shorter NAME."
        )
    return (
        f"Cannot write the endpoint's directory {endpoint_dir}: "
        f"{exc.strerror or exc}. Check PROXYSTORE_HOME "
        f"({os.path.dirname(endpoint_dir)})."
    )


def list_endpoints(*, proxystore_dir: str | None = None) -> int:
    """Log a table of the configured endpoints with their status.

    Returns:
        The exit code.
    """
    proxystore_dir = proxystore_dir or home_dir()
    configs = sorted(get_configs(proxystore_dir), key=lambda c: c.name)
    if not configs:
        logger.info(f"No valid endpoint configurations in {proxystore_dir}.")
        return 0
    status_width = max(len("STATUS"), *(len(s.name) for s in EndpointStatus))
    name_width = max(18, *(len(c.name) for c in configs))
    logger.info(f"{'NAME':<{name_width}} {'STATUS':<{status_width}} {'UUID':<36} RELAY")
    logger.info("=" * (3 + name_width + status_width + 36 + 24))
    stale = []
    for cfg in configs:
        status = get_status(cfg.name, proxystore_dir)
        relay = _relay_column(cfg, status)
        logger.info(
            f"{cfg.name:<{name_width}} {status.name:<{status_width}} {cfg.uuid} {relay}"
        )
        if status is EndpointStatus.HANGING:
            stale.append(cfg.name)
    for name in stale:
        pid_file = get_pid_filepath(os.path.join(proxystore_dir, name))
        logger.warning(
            f"{_stale_pid_file(name, pid_file)}; `proxystore-endpoint stop {name}` "
            "removes it."
        )
    return 0


def _relay_column(cfg: EndpointConfig, status: EndpointStatus) -> str:
    """The relay state of a listed endpoint, as its daemon reports it."""
    if cfg.relay.address is None:
        return "-"
    if status is not EndpointStatus.RUNNING or cfg.host is None:
        return cfg.relay.address
    info = endpoint_info(cfg.host, cfg.port)
    relay = None if info is None else info.get("relay")
    if not isinstance(relay, dict):
        return f"{cfg.relay.address} (no answer)"
    state = {
        "connected": "registered",
        "connecting": "NOT CONNECTED, retrying",
        "refused": "REFUSED",
    }.get(str(relay.get("status")), str(relay.get("status")))
    return f"{relay.get('address', cfg.relay.address)} ({state})"


def remove_endpoint(name: str, *, proxystore_dir: str | None = None) -> int:
    """Delete a stopped endpoint's directory.

    Returns:
        The exit code.
    """
    proxystore_dir = proxystore_dir or home_dir()
    endpoint_dir = os.path.join(proxystore_dir, name)
    if not os.path.exists(endpoint_dir):
        logger.error(f"An endpoint named {name} does not exist.")
        return 1
    if get_status(name, proxystore_dir) in (
        EndpointStatus.RUNNING,
        EndpointStatus.HANGING,
    ):
        logger.error(
            f"Endpoint {name} must be stopped before removing: "
            f"proxystore-endpoint stop {name}"
        )
        return 1
    shutil.rmtree(endpoint_dir)
    logger.info(f"Removed endpoint named {name}.")
    return 0


def _resolve_host(cfg: EndpointConfig, endpoint_dir: str) -> str | None:
    if cfg.host_type == "fqdn":
        return socket.getfqdn()
    if cfg.host_type == "ip":
        return socket.gethostbyname(hostname())
    if cfg.host is None:
        path = os.path.join(endpoint_dir, ENDPOINT_CONFIG_FILE)
        logger.error(
            f"Missing static host address in config {path}: set `host`, or set "
            '`host_type` to "ip" or "fqdn".'
        )
    return cfg.host


def start_endpoint(
    name: str,
    *,
    detach: bool = False,
    log_level: str = "INFO",
    proxystore_dir: str | None = None,
) -> int:
    """Run an endpoint in this process, or as a daemon with `detach`.

    With `detach`, this returns once the daemon accepts connections (or has
    died, exit code 1); its output goes to the endpoint's log file.

    Returns:
        The exit code.
    """
    proxystore_dir = proxystore_dir or home_dir()
    status = get_status(name, proxystore_dir)
    if status is EndpointStatus.RUNNING:
        logger.error(f"Endpoint {name} is already running.")
        return 1
    if status is EndpointStatus.UNKNOWN:
        logger.error(
            f"A valid endpoint named {name} does not exist; use `list` to see "
            "available endpoints."
        )
        return 1
    endpoint_dir = os.path.join(proxystore_dir, name)
    cfg = read_config(endpoint_dir)
    host = _resolve_host(cfg, endpoint_dir)
    if host is None:
        return 1
    pid_file = get_pid_filepath(endpoint_dir)
    if status is EndpointStatus.HANGING:
        if cfg.host is not None and cfg.host not in (host, hostname()):
            logger.error(
                f"A PID file exists for endpoint {name}, which may be running on "
                f"{cfg.host}; stop it there or delete {pid_file}."
            )
            return 1
        logger.debug(f"Removing stale PID file {pid_file}")
        os.remove(pid_file)
    cfg.host = host
    problem = check_port(host, cfg.port) or relay_auth_problem(cfg, endpoint_dir)
    if problem is not None:
        logger.error(f"Endpoint {name} not started: {problem}")
        return 1
    relay_cause = ""
    if cfg.relay.address is not None:
        probe = probe_relay(cfg, endpoint_dir)
        if probe.fatal:
            logger.error(f"Endpoint {name} not started: {probe.cause}")
            return 1
        relay_cause = probe.cause
    write_config(cfg, endpoint_dir)
    log_file = get_log_filepath(endpoint_dir)
    if detach:
        code = _start_daemon(cfg, endpoint_dir, pid_file, log_file, log_level)
        if code == 0:
            _report_relay(cfg, relay_cause)
        return code
    if relay_cause:
        logger.warning(_not_registered(cfg, relay_cause))
    from proxystore.endpoint.exceptions import EndpointListenError
    from proxystore.endpoint.serve import serve

    try:
        with _pid_file(pid_file):
            serve(cfg, log_level=log_level, log_file=log_file)
    except (EndpointListenError, _AlreadyRunningError) as exc:
        logger.error(f"Endpoint {name} not started: {exc}")
        return 1
    except Exception:
        # serve() has logged the error (one line here, the traceback in the log).
        return 1
    return 0


@contextlib.contextmanager
def _pid_file(pid_file: str) -> Iterator[None]:
    """Run as the endpoint's daemon: hold its lock, and write the PID file.

    Raises:
        _AlreadyRunningError: If the endpoint's daemon runs already.
    """
    with _daemon_lock(os.path.dirname(pid_file)):
        with open(pid_file, "w") as f:
            f.write(str(os.getpid()))
        try:
            yield
        finally:
            if _read_pid(pid_file) == os.getpid():
                with contextlib.suppress(FileNotFoundError):
                    os.remove(pid_file)


def _start_daemon(
    cfg: EndpointConfig, endpoint_dir: str, pid_file: str, log_file: str, level: str
) -> int:
    logger.info(f"Starting endpoint {cfg.name} as a daemon; log: {log_file}")
    try:
        log_offset = os.path.getsize(log_file)
    except OSError:
        log_offset = 0
    sys.stdout.flush()
    sys.stderr.flush()
    # The daemon holds the write end of this pipe for its whole life: reading
    # end-of-file here means it has exited.
    alive_r, alive_w = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the daemon
        os.close(alive_r)
        _become_daemon(cfg, endpoint_dir, pid_file, log_file, level)
    os.close(alive_w)
    os.set_blocking(alive_r, False)
    os.waitpid(child, 0)
    assert cfg.host is not None
    deadline = time.monotonic() + _DETACH_READY_TIMEOUT
    while time.monotonic() < deadline:
        pid = _read_pid(pid_file)
        if _closed(alive_r):
            break  # the daemon has exited
        if pid is not None and _answers(cfg):
            os.close(alive_r)
            logger.info(f"Endpoint {cfg.name} is running (PID {pid}).")
            return 0
        time.sleep(0.05)
    os.close(alive_r)
    errors = new_log_errors(log_file, log_offset)
    if not errors:
        logger.error(f"Endpoint {cfg.name} did not start; see {log_file}.")
    for line in errors:
        logger.error(f"Endpoint {cfg.name} did not start: {line}")
    if errors:
        logger.info(f"Full log: {log_file}")
    return 1


def _report_relay(cfg: EndpointConfig, cause: str) -> None:
    """Say whether the relay accepted the endpoint that just started.

    Args:
        cfg: The endpoint's configuration.
        cause: Why the relay looked unreachable before the start (empty if not).
    """
    if cfg.relay.address is None:
        return
    assert cfg.host is not None
    info = endpoint_info(cfg.host, cfg.port)
    relay = None if info is None else info.get("relay")
    status = relay.get("status") if isinstance(relay, dict) else None
    if status == "connected":
        logger.info(f"Registered with the relay at {cfg.relay.address}.")
        return
    if not cause and isinstance(relay, dict) and relay.get("error"):
        cause = f"{status}: {relay['error']}"
    if not cause:
        cause = f"relay state: {status or 'not reported'}; its log says why"
    logger.warning(_not_registered(cfg, cause))


def _not_registered(cfg: EndpointConfig, cause: str) -> str:
    return (
        f"Endpoint {cfg.name} is not registered with the relay at "
        f"{cfg.relay.address} ({cause}). It keeps retrying in the background; "
        "its requests to other endpoints fail until it registers "
        "(`proxystore-endpoint list` shows the relay state)."
    )


def _closed(fd: int) -> bool:
    try:
        return os.read(fd, 1) == b""
    except BlockingIOError:
        return False


def _become_daemon(  # pragma: no cover - runs in the daemon
    cfg: EndpointConfig, endpoint_dir: str, pid_file: str, log_file: str, level: str
) -> None:
    code = 0
    try:
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        os.chdir(endpoint_dir)
        os.umask(daemon_umask(cfg))  # the PID file, log and database are private
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
        logging.getLogger().handlers.clear()
        from proxystore.endpoint.serve import serve

        # Never an interactive login without a terminal: a login that went
        # missing since the check in the foreground ends the daemon with one line.
        problem = relay_auth_problem(cfg, endpoint_dir)
        if problem is not None:
            with open(log_file, "a") as log:
                log.write(f"[daemon] ERROR (proxystore.endpoint) :: {problem}\n")
            raise SystemExit(1)

        try:
            with _pid_file(pid_file):
                serve(cfg, log_level=level, log_file=log_file)
        except _AlreadyRunningError as exc:
            with open(log_file, "a") as log:
                log.write(f"[daemon] ERROR (proxystore.endpoint) :: {exc}\n")
            raise
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _answers(cfg: EndpointConfig) -> bool:
    """Whether the endpoint `cfg` describes answers with its own UUID."""
    from proxystore.endpoint import client

    host = "127.0.0.1" if cfg.host in (None, "0.0.0.0", "") else cfg.host
    with client.Session(timeout=1.0) as session:
        try:
            status, _, body = session.request(
                "GET", f"http://{host}:{cfg.port}", "endpoint", {}
            )
            return status == 200 and json.loads(body).get("uuid") == cfg.uuid
        except (client.RequestException, ValueError, AttributeError):
            return False


def stop_endpoint(name: str, *, proxystore_dir: str | None = None) -> int:
    """Stop a running endpoint (SIGTERM, then SIGKILL after a grace period).

    Only the endpoint's own daemon is signalled: the process holding its lock,
    with the start time it recorded there. A PID file naming any other
    process (a stale one, or one whose PID was reused) is removed and reported;
    that process is never signalled.

    Returns:
        The exit code.
    """
    proxystore_dir = proxystore_dir or home_dir()
    status = get_status(name, proxystore_dir)
    if status is EndpointStatus.UNKNOWN:
        logger.error(
            f"A valid endpoint named {name} does not exist; use `list` to see "
            "available endpoints."
        )
        return 1
    if status is EndpointStatus.STOPPED:
        logger.info(f"Endpoint {name} is not running.")
        return 0
    endpoint_dir = os.path.join(proxystore_dir, name)
    pid_file = get_pid_filepath(endpoint_dir)
    if status is EndpointStatus.HANGING:
        cfg = read_config(endpoint_dir)
        if cfg.host is not None and cfg.host not in (
            hostname(),
            socket.gethostbyname(hostname()),
            socket.getfqdn(),
            "127.0.0.1",
            "localhost",
        ):
            logger.error(
                f"A PID file exists for endpoint {name}, which may be running on "
                f"{cfg.host}; stop it there or delete {pid_file}."
            )
            return 1
        logger.warning(f"{_stale_pid_file(name, pid_file)}; removed it.")
        with contextlib.suppress(FileNotFoundError):
            os.remove(pid_file)
        return 0
    pid = _daemon_pid(endpoint_dir)
    if pid is not None:
        _terminate(endpoint_dir, pid)
    with contextlib.suppress(FileNotFoundError):
        os.remove(pid_file)
    logger.info(f"Endpoint {name} has been stopped.")
    return 0


def _terminate(endpoint_dir: str, pid: int) -> None:
    """SIGTERM the daemon `pid`; SIGKILL it if it still holds its lock later."""
    logger.debug(f"Terminating endpoint process (PID {pid})")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_GRACE
    while _daemon_pid(endpoint_dir) == pid and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    # Checked again just before: the lock and start time still name `pid`.
    if _daemon_pid(endpoint_dir) == pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
