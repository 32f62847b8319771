"""Endpoint configuration and its on-disk layout.

Each endpoint owns a directory `<proxystore home>/<name>/` holding `config.toml`,
the log file `log.txt`, the PID file `daemon.pid` while it runs, and `blobs.db`
when it persists data. The TOML tables and keys are those of the reference
release (`name`, `uuid`, `port`, `host`, `host_type`, `[relay]` with `address`,
`ice_servers`, `peer_channels`, `verify_certificate` and `[relay.auth]`, and
`[storage]` with `database_path` and `max_object_size`), so existing endpoint
directories keep working. The additions are optional: `[relay] ice_addresses`
(which local addresses ICE may offer), the `[peering]` table (direct transfers to
peers on this machine or on listed networks, request timeout), the reference
spellings of secrets (below), and `private_files` (file modes, below).

Configs are plain dataclasses checked when built: a bad value raises `ValueError`
naming the field.

Secrets stay out of `config.toml`. The relay token is given by reference, as in
connector configs: `[relay.auth.kwargs] token_env = "VAR"` (an environment variable)
or `token_credential = "entry"` (an entry of the 0600 credentials file, see
`proxystore.utils.credentials`). A token written in the file as `token = "..."` (older
configs) is still read, with a warning, and `write_config` moves it into the
credentials file as `endpoint-<name>-relay-token` and writes the reference instead.

Files are private by default: `config.toml` is written 0600, a new endpoint directory
is 0700, and the endpoint's log, PID file and database are 0600 (`file_mode`). Set
`private_files = false` to make them readable (never writable) by others: 0644 files
in a 0755 directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import logging
import os
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

import tomli_w

from proxystore.endpoint.constants import (
    MAX_OBJECT_SIZE_DEFAULT,
    PEER_REQUEST_TIMEOUT_DEFAULT,
)
from proxystore.utils.config import dump, load
from proxystore.utils.credentials import (
    CREDENTIAL_SUFFIX,
    ENV_SUFFIX,
    _load_credentials,
    credentials_path,
)

__all__ = [
    "ENDPOINT_CONFIG_FILE",
    "ENDPOINT_DATABASE_FILE",
    "ENDPOINT_LOG_FILE",
    "ENDPOINT_PID_FILE",
    "EndpointConfig",
    "EndpointPeeringConfig",
    "EndpointRelayAuthConfig",
    "EndpointRelayConfig",
    "EndpointRelayICEServerConfig",
    "EndpointStorageConfig",
    "daemon_umask",
    "file_mode",
    "get_configs",
    "get_log_filepath",
    "get_pid_filepath",
    "read_config",
    "relay_token_credential",
    "secure_file",
    "validate_name",
    "write_config",
]

logger = logging.getLogger(__name__)

ENDPOINT_CONFIG_FILE = "config.toml"
ENDPOINT_DATABASE_FILE = "blobs.db"
ENDPOINT_LOG_FILE = "log.txt"
ENDPOINT_PID_FILE = "daemon.pid"

_NAME = re.compile(r"[A-Za-z0-9_\-]+")
_TOKEN = "token"
_TOKEN_REFERENCES = (_TOKEN + ENV_SUFFIX, _TOKEN + CREDENTIAL_SUFFIX)


@dataclass
class EndpointRelayAuthConfig:
    """How the endpoint authenticates with the relay server.

    Attributes:
        method: `'globus'`, `'token'` (a shared secret sent as a bearer token),
            or `None` (no authentication).
        kwargs: Options for the authentication method. For `'token'`:
            `token_env` (environment variable) or `token_credential`
            (credentials-file entry) naming the token; `token` (the token
            itself) is accepted from older configs and never written back.
    """

    method: Literal["globus", "token"] | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in (None, "globus", "token"):
            raise ValueError(
                "relay.auth.method must be 'globus', 'token' or unset, got "
                f"{self.method!r}."
            )
        if self.method == "token" and not any(
            isinstance(self.kwargs.get(key), str) and self.kwargs[key]
            for key in (_TOKEN, *_TOKEN_REFERENCES)
        ):
            raise ValueError(
                "relay.auth.method 'token' needs relay.auth.kwargs.token_env or "
                "relay.auth.kwargs.token_credential (the token is not written "
                "in the config)."
            )

    def __repr__(self) -> str:
        # kwargs may hold a secret: never print it.
        return f"EndpointRelayAuthConfig(method={self.method!r}, kwargs=<hidden>)"


@dataclass
class EndpointRelayICEServerConfig:
    """A STUN or TURN server used to gather ICE candidates.

    Attributes:
        urls: URL or URLs of the server (e.g. `stun:stun.example.org:3478`).
        username: Username for a TURN server.
        credential: Credential for a TURN server written in the config (read
            with a warning; prefer a reference).
        credential_env: Environment variable holding the TURN credential.
        credential_credential: Credentials-file entry holding the TURN
            credential.
    """

    urls: str | list[str]
    username: str | None = None
    credential: str | None = field(default=None, repr=False)
    credential_env: str | None = None
    credential_credential: str | None = None


@dataclass
class EndpointRelayConfig:
    """Relay server and WebRTC settings.

    Attributes:
        address: Relay server address (`ws://` or `wss://`); `None` runs the
            endpoint alone (no peering).
        auth: Relay authentication.
        ice_servers: STUN/TURN servers for ICE; `None` uses public defaults and
            an empty list gathers host candidates only.
        ice_addresses: Local addresses ICE may offer as host candidates; `None`
            lets the WebRTC stack pick (every non-loopback interface address).
            Multi-homed hosts and loopback-only tests set this.
        peer_channels: Data channels per peer connection.
        verify_certificate: Check the relay server's TLS certificate.
    """

    address: str | None = None
    auth: EndpointRelayAuthConfig = field(default_factory=EndpointRelayAuthConfig)
    ice_servers: list[EndpointRelayICEServerConfig] | None = None
    ice_addresses: list[str] | None = None
    peer_channels: int = 1
    verify_certificate: bool = True

    def __post_init__(self) -> None:
        if self.address is not None and not self.address.startswith(
            ("ws://", "wss://")
        ):
            raise ValueError(
                f"relay.address must start with ws:// or wss://, got {self.address!r}."
            )
        if self.peer_channels < 1:
            raise ValueError(
                f"relay.peer_channels must be at least 1, got {self.peer_channels}."
            )


@dataclass
class EndpointStorageConfig:
    """Where objects are kept.

    Attributes:
        database_path: SQLite database file persisting the objects; `None` keeps
            them in memory only.
        max_object_size: Largest object accepted, in bytes.
        memory_budget: Bytes of objects kept in memory (digits, or ``"N%"`` of
            the RAM); beyond it the least recently used objects spill to
            `spill_directory` and come back when read
            (`proxystore.endpoint.spill.BudgetedStorage`). `None`: no budget.
            Ignored with a `database_path`.
        spill_directory: Where spilled objects go (default: a private
            directory per endpoint in the temporary directory).
        spill_compress: ``"zstd"`` to compress spilled objects, or `None`.
    """

    database_path: str | None = None
    max_object_size: int = MAX_OBJECT_SIZE_DEFAULT
    memory_budget: str | None = None
    spill_directory: str | None = None
    spill_compress: str | None = None

    def __post_init__(self) -> None:
        if self.max_object_size < 1:
            raise ValueError(
                "storage.max_object_size must be greater than zero, got "
                f"{self.max_object_size}."
            )


@dataclass
class EndpointPeeringConfig:
    """How requests for other endpoints' objects travel.

    Attributes:
        direct: Fetch from a peer over a direct HTTP connection when the peer's
            address (learned over the peer connection) is on this machine (or
            in `direct_networks`) and answers with the peer's UUID; otherwise,
            and when `False`, use the WebRTC data channel.
        request_timeout: Seconds a forwarded request may take before it fails.
        direct_networks: CIDR networks (e.g. `["10.0.0.0/8"]`) whose addresses
            the direct path may also use; by default only this machine's own
            addresses are, whatever address a peer advertises.
    """

    direct: bool = True
    request_timeout: float = PEER_REQUEST_TIMEOUT_DEFAULT
    direct_networks: list[str] | None = None

    def __post_init__(self) -> None:
        if self.request_timeout <= 0:
            raise ValueError(
                f"peering.request_timeout must be positive, got {self.request_timeout}."
            )
        for network in self.direct_networks or ():
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(
                    "peering.direct_networks entries must be CIDR networks such as "
                    f"'10.0.0.0/8', got {network!r}."
                ) from None


@dataclass
class EndpointConfig:
    """Configuration of one endpoint.

    Attributes:
        name: Endpoint name (letters, digits, `-` and `_`).
        uuid: Endpoint UUID (version 4, as a string).
        port: Port the endpoint listens on.
        host: Address the endpoint listens on (set when it starts).
        host_type: How `host` is found at start: `'ip'`, `'fqdn'`, or `'static'`
            (use `host` as written).
        relay: Relay server and WebRTC settings.
        storage: Storage settings.
        peering: Forwarding settings.
        private_files: Write the endpoint's files (config, log, PID file,
            database) for this user only (0600); `False` lets others read them
            (0644).

    Raises:
        ValueError: If the name, UUID, port or host type is not valid.
    """

    name: str
    uuid: str
    port: int
    host: str | None = None
    host_type: Literal["fqdn", "ip", "static"] = "ip"
    relay: EndpointRelayConfig = field(default_factory=EndpointRelayConfig)
    storage: EndpointStorageConfig = field(default_factory=EndpointStorageConfig)
    peering: EndpointPeeringConfig = field(default_factory=EndpointPeeringConfig)
    private_files: bool = True

    def __post_init__(self) -> None:
        if not validate_name(self.name):
            raise ValueError(
                "Endpoint name must contain only letters, digits, dashes and "
                f"underscores, got {self.name!r}."
            )
        try:
            uuid.UUID(self.uuid, version=4)
        except (ValueError, TypeError, AttributeError):
            raise ValueError(f"{self.uuid!r} is not a valid UUID4 string.") from None
        if isinstance(self.port, bool) or not 1 <= self.port <= 65535:
            raise ValueError(f"Port must be in [1, 65535], got {self.port!r}.")
        if self.host_type not in ("fqdn", "ip", "static"):
            raise ValueError(
                f"host_type must be 'fqdn', 'ip' or 'static', got {self.host_type!r}."
            )

    def model_dump(self) -> dict[str, Any]:
        """Return the configuration as a plain dictionary."""
        return dataclasses.asdict(self)


def get_configs(proxystore_dir: str) -> list[EndpointConfig]:
    """Return the valid endpoint configurations found under `proxystore_dir`.

    Directories without a readable configuration are skipped.
    """
    configs: list[EndpointConfig] = []
    if not os.path.isdir(proxystore_dir):
        return configs
    for dirpath, _, _ in os.walk(proxystore_dir):
        if os.path.samefile(proxystore_dir, dirpath):
            continue
        try:
            configs.append(read_config(dirpath))
        except (FileNotFoundError, ValueError):
            continue
    return configs


def get_log_filepath(endpoint_dir: str) -> str:
    """Return the path of the endpoint's log file."""
    return os.path.join(endpoint_dir, ENDPOINT_LOG_FILE)


def get_pid_filepath(endpoint_dir: str) -> str:
    """Return the path of the endpoint's PID file."""
    return os.path.join(endpoint_dir, ENDPOINT_PID_FILE)


def file_mode(cfg: EndpointConfig) -> int:
    """Permission bits of the files the endpoint `cfg` writes (0600 or 0644)."""
    return 0o600 if cfg.private_files else 0o644


def daemon_umask(cfg: EndpointConfig) -> int:
    """Umask of the endpoint process `cfg` describes (0o077, or 0o022 if shared)."""
    return 0o077 if cfg.private_files else 0o022


def secure_file(path: str, mode: int) -> None:
    """Create `path` with `mode`, or give the existing file exactly `mode`.

    A symbolic link at `path` is refused, so a link planted in the directory
    cannot redirect the endpoint's writes.

    Raises:
        OSError: If the file cannot be created or its mode changed (`ELOOP` for a
            symbolic link).
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def relay_token_credential(name: str) -> str:
    """Name of the credentials-file entry holding endpoint `name`'s relay token."""
    return f"endpoint-{name}-relay-token"


def read_config(endpoint_dir: str) -> EndpointConfig:
    """Read the configuration in `endpoint_dir`.

    Raises:
        FileNotFoundError: If the directory has no configuration file.
        ValueError: If the file cannot be parsed or holds an invalid value.
    """
    path = os.path.join(endpoint_dir, ENDPOINT_CONFIG_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"Endpoint directory {endpoint_dir} does not contain a valid configuration."
        )
    with open(path, "rb") as f:
        try:
            cfg = load(EndpointConfig, f)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"Unable to parse ({path}): {exc}") from None
    if any(s.credential is not None for s in cfg.relay.ice_servers or ()):
        logger.warning(
            "%s holds a TURN credential in plain text; name it with "
            "credential_env or credential_credential instead.",
            path,
        )
    if _TOKEN in cfg.relay.auth.kwargs:
        logger.warning(
            "%s holds the relay token in plain text; it moves to the credentials "
            "file %s (entry %r) the next time the configuration is written, e.g. "
            "when the endpoint starts.",
            path,
            credentials_path(),
            relay_token_credential(cfg.name),
        )
    return cfg


def validate_name(name: str) -> bool:
    """Return whether `name` is a valid endpoint name."""
    return _NAME.fullmatch(name) is not None


def write_config(cfg: EndpointConfig, endpoint_dir: str) -> None:
    """Write `cfg` to `endpoint_dir` (created when missing).

    The file gets `file_mode(cfg)` and a new directory 0700 (0755 when the files
    are not private). A relay token held in `cfg` itself is stored in the
    credentials file and only its reference is written; `cfg` is not changed.

    Raises:
        CredentialError: If the token cannot be stored (e.g. the credentials file
            is readable by others or is not valid TOML).
        OSError: If the directory or file cannot be written.
    """
    os.makedirs(endpoint_dir, mode=0o700 if cfg.private_files else 0o755, exist_ok=True)
    path = os.path.join(endpoint_dir, ENDPOINT_CONFIG_FILE)
    tmp = f"{path}.tmp"
    stored = _without_plain_token(cfg)
    mode = file_mode(cfg)
    with contextlib.suppress(FileNotFoundError):
        os.remove(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    os.fchmod(fd, mode)
    with os.fdopen(fd, "wb") as f:
        dump(stored, f)
    os.replace(tmp, path)


def _without_plain_token(cfg: EndpointConfig) -> EndpointConfig:
    """`cfg` with a plain relay token swapped for a credentials-file reference."""
    kwargs = cfg.relay.auth.kwargs
    token = kwargs.get(_TOKEN)
    if cfg.relay.auth.method != "token" or not isinstance(token, str) or not token:
        return cfg
    entry = relay_token_credential(cfg.name)
    _store_credential(entry, token)
    logger.info(
        "Stored the relay token of endpoint %s in %s (entry %r)",
        cfg.name,
        credentials_path(),
        entry,
    )
    others = {k: v for k, v in kwargs.items() if k not in (_TOKEN, *_TOKEN_REFERENCES)}
    auth = EndpointRelayAuthConfig(
        method="token",
        kwargs={**others, _TOKEN + CREDENTIAL_SUFFIX: entry},
    )
    return dataclasses.replace(cfg, relay=dataclasses.replace(cfg.relay, auth=auth))


def _store_credential(entry: str, value: str) -> None:
    """Set `entry` of the credentials file to `value` (the file stays 0600).

    A new entry is appended, so the file's comments survive; a changed one
    rewrites the file.
    """
    path = credentials_path()
    # The reader's own checks (mode, TOML); a copy, as its result is cached.
    current = dict(_load_credentials(path))
    if current.get(entry) == value:
        return
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    if entry not in current:
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600
        )
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write("\n" + tomli_w.dumps({entry: value}))
        return
    current[entry] = value
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(tomli_w.dumps(current))
    os.replace(tmp, path)
