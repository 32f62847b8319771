"""Endpoint configuration and its on-disk layout.

Each endpoint owns a directory `<proxystore home>/<name>/` holding `config.toml`,
the log file `log.txt`, the PID file `daemon.pid` while it runs, and `blobs.db`
when it persists data. The TOML tables and keys are those of the reference
release (`name`, `uuid`, `port`, `host`, `host_type`, `[relay]` with `address`,
`ice_servers`, `peer_channels`, `verify_certificate` and `[relay.auth]`, and
`[storage]` with `database_path` and `max_object_size`), so existing endpoint
directories keep working. Two additions are optional and default to the old
behaviour: `[relay] ice_addresses` (which local addresses ICE may offer) and the
`[peering]` table (direct transfers between reachable peers, request timeout).

Configs are plain dataclasses checked when built: a bad value raises `ValueError`
naming the field.
"""

from __future__ import annotations

import dataclasses
import os
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from proxystore.endpoint.constants import (
    MAX_OBJECT_SIZE_DEFAULT,
    PEER_REQUEST_TIMEOUT_DEFAULT,
)
from proxystore.utils.config import dump, load

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
    "get_configs",
    "get_log_filepath",
    "get_pid_filepath",
    "read_config",
    "validate_name",
    "write_config",
]

ENDPOINT_CONFIG_FILE = "config.toml"
ENDPOINT_DATABASE_FILE = "blobs.db"
ENDPOINT_LOG_FILE = "log.txt"
ENDPOINT_PID_FILE = "daemon.pid"

_NAME = re.compile(r"[A-Za-z0-9_\-]+")


@dataclass
class EndpointRelayAuthConfig:
    """How the endpoint authenticates with the relay server.

    Attributes:
        method: `'globus'`, `'token'` (a shared secret sent as a bearer token,
            given as `kwargs.token`), or `None` (no authentication).
        kwargs: Options for the authentication method.
    """

    method: Literal["globus", "token"] | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in (None, "globus", "token"):
            raise ValueError(
                "relay.auth.method must be 'globus', 'token' or unset, got "
                f"{self.method!r}."
            )
        if self.method == "token" and not isinstance(self.kwargs.get("token"), str):
            raise ValueError("relay.auth.method 'token' needs relay.auth.kwargs.token.")

    def __repr__(self) -> str:
        # kwargs may hold a secret: never print it.
        return f"EndpointRelayAuthConfig(method={self.method!r}, kwargs=<hidden>)"


@dataclass
class EndpointRelayICEServerConfig:
    """A STUN or TURN server used to gather ICE candidates.

    Attributes:
        urls: URL or URLs of the server (e.g. `stun:stun.example.org:3478`).
        username: Username for a TURN server.
        credential: Credential for a TURN server.
    """

    urls: str | list[str]
    username: str | None = None
    credential: str | None = None


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
    """

    database_path: str | None = None
    max_object_size: int = MAX_OBJECT_SIZE_DEFAULT

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
            address (learned over the peer connection) answers; otherwise, and
            when `False`, use the WebRTC data channel.
        request_timeout: Seconds a forwarded request may take before it fails.
    """

    direct: bool = True
    request_timeout: float = PEER_REQUEST_TIMEOUT_DEFAULT

    def __post_init__(self) -> None:
        if self.request_timeout <= 0:
            raise ValueError(
                f"peering.request_timeout must be positive, got {self.request_timeout}."
            )


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
            return load(EndpointConfig, f)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"Unable to parse ({path}): {exc}") from None


def validate_name(name: str) -> bool:
    """Return whether `name` is a valid endpoint name."""
    return _NAME.fullmatch(name) is not None


def write_config(cfg: EndpointConfig, endpoint_dir: str) -> None:
    """Write `cfg` to `endpoint_dir` (created when missing)."""
    os.makedirs(endpoint_dir, exist_ok=True)
    path = os.path.join(endpoint_dir, ENDPOINT_CONFIG_FILE)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        dump(cfg, f)
    os.replace(tmp, path)
