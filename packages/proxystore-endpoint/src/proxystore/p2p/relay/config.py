"""Configuration of the relay server, read from TOML.

```toml
host = "0.0.0.0"
port = 8700
certfile = "/path/to/cert.pem"   # optional: serve wss://
keyfile = "/path/to/key.pem"

[auth]
method = "token"    # omit: no authentication; "globus": needs the Globus member
[auth.kwargs]
token_env = "RELAY_TOKEN"           # or token_credential = "relay-token"

[logging]
log_dir = "/path/to/logs"
default_level = "INFO"
```

Secrets are given by reference, as in connector configs: `token_env` names an
environment variable and `token_credential` an entry of the 0600 credentials file
(`proxystore.utils.credentials`); the same goes for Globus's `client_secret`. A
secret written in the file itself still works but is logged as a warning.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
import tomllib
from typing import Any, Literal, Self

import tomli_w

from proxystore.utils.config import loads

__all__ = [
    "HEARTBEAT_SECONDS",
    "MAX_MESSAGE_BYTES",
    "MAX_REGISTRATIONS",
    "PROBE_SECONDS",
    "RelayAuthConfig",
    "RelayLoggingConfig",
    "RelayServingConfig",
]

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10.0
"""Seconds between websocket pings; a peer silent for half as long is dropped."""
PROBE_SECONDS = 1.5
"""Seconds the holder of a UUID has to answer a ping when another connection asks
for that UUID."""
MAX_MESSAGE_BYTES = 1024 * 1024
"""Default limit on one client message (session descriptions are a few KiB)."""
MAX_REGISTRATIONS = 1
"""Default number of UUIDs one connection may hold (every known client uses one)."""


@dataclasses.dataclass
class RelayAuthConfig:
    """How the relay authenticates clients.

    Attributes:
        method: `None` (no authentication), `'token'` (a shared bearer token) or
            `'globus'` (Globus Auth; needs the Globus member).
        kwargs: Keyword arguments for the authenticator. Left out of `repr()`
            because they usually hold secrets.
    """

    method: Literal["globus", "token"] | None = None
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)


@dataclasses.dataclass
class RelayLoggingConfig:
    """Logging of the relay server.

    Attributes:
        log_dir: Directory for the rotating `server.log`; `None` logs to stdout only.
        default_level: Level of the root logger.
        websockets_level: Level of the websocket library loggers (they are chatty).
        current_client_interval: Seconds between logs of the connected client count;
            `None` disables them.
        current_client_limit: Up to this many connected clients are listed by name in
            those logs; `None` lists none.
    """

    log_dir: str | None = None
    default_level: int | str = logging.INFO
    websockets_level: int | str = logging.WARNING
    current_client_interval: int | None = 60
    current_client_limit: int | None = 32


@dataclasses.dataclass
class RelayServingConfig:
    """Everything needed to serve a relay.

    Attributes:
        host: Interface to bind; `None` binds every interface.
        port: Port to bind.
        certfile: PEM certificate; when set the relay serves TLS (`wss://`).
        keyfile: Private key; taken from `certfile` when `None`.
        auth: Authentication.
        logging: Logging.
        max_message_bytes: Clients sending a larger message are disconnected (close
            code 4003); `None` for no limit beyond the transport's 4 MiB.
        heartbeat_seconds: Seconds between pings on each connection; one silent
            for half of that is dropped with its registrations.
        probe_seconds: Seconds the holder of a UUID has to answer a ping when
            another connection registers the same UUID.
        max_registrations: UUIDs one connection may register.
    """

    host: str | None = None
    port: int = 8700
    certfile: str | None = None
    keyfile: str | None = None
    auth: RelayAuthConfig = dataclasses.field(default_factory=RelayAuthConfig)
    logging: RelayLoggingConfig = dataclasses.field(default_factory=RelayLoggingConfig)
    max_message_bytes: int | None = MAX_MESSAGE_BYTES
    heartbeat_seconds: float = HEARTBEAT_SECONDS
    probe_seconds: float = PROBE_SECONDS
    max_registrations: int = MAX_REGISTRATIONS

    @classmethod
    def from_toml(cls, filepath: str | pathlib.Path) -> Self:
        """Read a TOML configuration file.

        Missing keys take their defaults. Unknown keys at the top level and in
        `[logging]` are ignored with a warning (older relay configs carry a few);
        unknown keys in `[auth]` are an error because they usually mean a typo in a
        security setting.

        Raises:
            FileNotFoundError: If the file does not exist.
            ValueError: If the file is not valid TOML or a value is not allowed.
            TypeError: If a value has the wrong type.
        """
        path = pathlib.Path(filepath)
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"Relay config {path} is not valid TOML: {exc}") from exc
        table = _drop_unknown(table, cls, str(path))
        logging_table = table.get("logging")
        if isinstance(logging_table, dict):
            table["logging"] = _drop_unknown(
                logging_table, RelayLoggingConfig, f"{path} [logging]"
            )
        return loads(cls, tomli_w.dumps(table))


def _drop_unknown(
    table: dict[str, Any], model: type[Any], where: str
) -> dict[str, Any]:
    known = {field.name for field in dataclasses.fields(model)}
    unknown = sorted(set(table) - known)
    if unknown:
        logger.warning("Ignoring unknown relay config key(s) in %s: %s", where, unknown)
    return {key: value for key, value in table.items() if key in known}
