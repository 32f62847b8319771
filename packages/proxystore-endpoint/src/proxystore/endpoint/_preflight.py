"""Checks `proxystore-endpoint start` makes in the foreground, before detaching.

A daemon has no terminal and its errors only reach a log file, so everything that
can be checked from here is checked from here, each failure stated in one line that
names the fix:

* the port is free on the endpoint's host;
* the relay's credentials exist (a Globus login, when the relay asks for Globus
  Auth) without starting an interactive login;
* the relay answers on its address and, for `wss://`, presents a certificate this
  host trusts.

After the daemon answers, `relay_report` reads the relay state the endpoint
reports on `GET /endpoint`, and `new_log_errors` pulls the error lines a failed
daemon wrote to its log.
"""

from __future__ import annotations

import dataclasses
import errno
import importlib
import json
import os
import socket
import ssl
import urllib.parse
from typing import Any

from proxystore.endpoint.config import ENDPOINT_CONFIG_FILE, EndpointConfig

__all__ = [
    "RelayProbe",
    "check_port",
    "endpoint_info",
    "listen_problem",
    "new_log_errors",
    "probe_relay",
    "relay_auth_problem",
]

#: Seconds allowed to open a TCP (and TLS) connection to the relay.
_RELAY_PROBE_TIMEOUT = 5.0
#: Log levels whose lines a failed start repeats.
_ERROR_LEVELS = ("ERROR", "CRITICAL")


def listen_problem(host: str, port: int, exc: OSError) -> str:
    """One line saying why an endpoint cannot listen on `host:port`, and the fix."""
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} on {host} is already in use (by another endpoint? "
            "`proxystore-endpoint list` shows them); set a free `port` in the "
            "endpoint's config.toml."
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"cannot listen on {host}:{port}: {host} is not an address of this "
            "host; set `host` in the endpoint's config.toml (or `host_type` to "
            '"ip" or "fqdn").'
        )
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}."


def check_port(host: str, port: int) -> str | None:
    """Return why the endpoint cannot listen on `host:port`, or `None` if it can.

    Binds the way the endpoint's server binds (`SO_REUSEADDR`), so a port held only
    by connections in TIME_WAIT counts as free.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"cannot resolve the endpoint's host {host!r}: {exc.strerror}."
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            return listen_problem(host, port, exc)
    return None


def _config_path(config: EndpointConfig, endpoint_dir: str) -> str:
    return os.path.join(endpoint_dir, ENDPOINT_CONFIG_FILE)


def relay_auth_problem(config: EndpointConfig, endpoint_dir: str) -> str | None:
    """Return why the relay credentials of `config` are missing, or `None`.

    Only Globus Auth needs a check: the tokens must already be in the token
    storage (or client credentials in the environment). Nothing here prompts.
    """
    if config.relay.address is None or config.relay.auth.method != "globus":
        return None
    no_auth = (
        "or turn relay auth off (for a new endpoint `proxystore-endpoint configure "
        f'NAME --no-relay-auth`; for this one delete `method = "globus"` under '
        f"[relay.auth] in {_config_path(config, endpoint_dir)})"
    )
    try:
        globus_app: Any = importlib.import_module("proxystore.globus.app")
        globus_scopes: Any = importlib.import_module("proxystore.globus.scopes")
    except ImportError:
        return (
            f"endpoint {config.name}'s relay ({config.relay.address}) uses Globus "
            "Auth but the proxystore-globus package is not installed: install it "
            f"and run `proxystore-globus-auth login`, {no_auth}."
        )
    try:
        app = globus_app.get_globus_app(interactive=False)
        app.add_scope_requirements(globus_scopes.get_relay_scopes_by_resource_server())
        needs_login = bool(app.login_required())
    except Exception as exc:  # any failure of the SDK or the token storage
        return (
            f"cannot check the Globus login for endpoint {config.name}'s relay "
            f"({type(exc).__name__}: {exc}); run `proxystore-globus-auth login`, "
            f"{no_auth}."
        )
    if needs_login:
        return (
            f"endpoint {config.name}'s relay ({config.relay.address}) asks for "
            "Globus Auth and there is no Globus login on this host: run "
            f"`proxystore-globus-auth login` first, {no_auth}."
        )
    return None


@dataclasses.dataclass(frozen=True)
class RelayProbe:
    """What opening a connection to the relay's address found.

    Attributes:
        reachable: A TCP connection (and TLS handshake for `wss://`) succeeded.
        fatal: Retrying will not help (a certificate this host does not trust, a
            malformed address): `start` fails instead of warning.
        cause: One line naming what went wrong (empty when reachable).
    """

    reachable: bool
    fatal: bool = False
    cause: str = ""


def probe_relay(config: EndpointConfig, endpoint_dir: str) -> RelayProbe:
    """Open (and close) a TCP/TLS connection to `config`'s relay; never registers."""
    address = config.relay.address
    assert address is not None
    parts = urllib.parse.urlsplit(address)
    secure = parts.scheme == "wss"
    try:
        port = parts.port or (443 if secure else 80)
    except ValueError as exc:
        return RelayProbe(False, fatal=True, cause=f"bad relay address: {exc}.")
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        return RelayProbe(
            False,
            fatal=True,
            cause=(
                f"relay address {address!r} must look like ws://HOST:PORT or "
                f"wss://HOST:PORT; fix `address` under [relay] in "
                f"{_config_path(config, endpoint_dir)}."
            ),
        )
    host = parts.hostname
    try:
        with socket.create_connection(
            (host, port), timeout=_RELAY_PROBE_TIMEOUT
        ) as raw:
            if secure:
                context = ssl.create_default_context()
                if not config.relay.verify_certificate:
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                with context.wrap_socket(raw, server_hostname=host):
                    pass
    except ssl.SSLCertVerificationError as exc:
        return RelayProbe(
            False,
            fatal=True,
            cause=(
                f"the relay at {address} presented a certificate this host does not "
                f"trust ({exc.verify_message}); install its CA certificate, or set "
                "`verify_certificate = false` under [relay] in "
                f"{_config_path(config, endpoint_dir)} (for testing only)."
            ),
        )
    except ssl.SSLError as exc:
        return RelayProbe(
            False,
            fatal=True,
            cause=(
                f"TLS handshake with the relay at {address} failed ({exc.reason}); "
                "is it serving plain ws:// instead of wss://?"
            ),
        )
    except OSError as exc:
        return RelayProbe(False, cause=f"not reachable: {_os_cause(exc)}")
    return RelayProbe(True)


def _os_cause(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve its host: {exc.strerror}"
    if isinstance(exc, TimeoutError):
        return f"no answer within {_RELAY_PROBE_TIMEOUT:g} s"
    return exc.strerror or type(exc).__name__


def endpoint_info(host: str, port: int, timeout: float = 1.0) -> dict[str, Any] | None:
    """Return the JSON of the endpoint's `GET /endpoint`, or `None` without answer."""
    from proxystore.endpoint import client

    host = "127.0.0.1" if host in ("", "0.0.0.0") else host
    with client.Session(timeout=timeout) as session:
        try:
            status, _, body = session.request(
                "GET", f"http://{host}:{port}", "endpoint", {}
            )
            info = json.loads(body) if status == 200 else None
        except (client.RequestException, ValueError):
            return None
    return info if isinstance(info, dict) else None


def new_log_errors(log_file: str, offset: int, limit: int = 5) -> list[str]:
    """Return the messages of the error lines written to `log_file` after `offset`.

    Log lines look like `[time] LEVEL (logger) :: message`; a traceback's last
    line (the exception) is kept too when no error line precedes it. At most
    `limit` lines are returned, the last ones.
    """
    try:
        with open(log_file, encoding="utf-8", errors="replace") as f:
            f.seek(offset)
            text = f.read()
    except OSError:
        return []
    found: list[str] = []
    last_plain = ""
    for line in text.splitlines():
        head, sep, message = line.partition(" :: ")
        if sep and line.startswith("["):
            level = head.split("] ", 1)[-1].split(" ", 1)[0]
            if level in _ERROR_LEVELS and message.strip() not in found:
                found.append(message.strip())
        elif line.strip() and not line.startswith((" ", "Traceback")):
            last_plain = line.strip()
    # A traceback's last line, `module.Error: message`, unless an error line
    # already said the message.
    said = last_plain.partition(": ")[2] or last_plain
    if last_plain and not any(said in line for line in found):
        found.append(last_plain)
    return found[-limit:]
