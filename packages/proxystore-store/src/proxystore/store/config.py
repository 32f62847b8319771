"""Plain-data configuration of stores and connectors.

A `StoreConfig` is everything needed to rebuild an equivalent
[`Store`][proxystore.store.base.Store] in another process: it travels inside every
proxy's factory, so it is a frozen dataclass of plain values that pickles small.
It can also be written to and read from TOML.
"""

from __future__ import annotations

import dataclasses
import importlib
import pathlib
import tomllib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from proxystore.connectors.protocols import Connector
    from proxystore.store.types import DeserializerT, SerializerT

__all__ = ["ConnectorConfig", "StoreConfig"]

# Short names (matched case-insensitively, with or without a "connector" suffix) of
# the connectors that ship with proxystore. A name missing here still works when
# ``proxystore.connectors.<name>`` defines exactly one ``*Connector`` class.
_ALIASES: dict[str, str] = {
    "local": "proxystore.connectors.local.LocalConnector",
    "file": "proxystore.connectors.file.FileConnector",
    "redis": "proxystore.connectors.redis.RedisConnector",
    "multi": "proxystore.connectors.multi.MultiConnector",
    "endpoint": "proxystore.connectors.endpoint.EndpointConnector",
    "globus": "proxystore.connectors.globus.GlobusConnector",
    "zmq": "proxystore.connectors.dim.zmq.ZeroMQConnector",
    "zeromq": "proxystore.connectors.dim.zmq.ZeroMQConnector",
    "ucx": "proxystore.connectors.dim.ucx.UCXConnector",
    "margo": "proxystore.connectors.dim.margo.MargoConnector",
    "daos": "proxystore.connectors.daos.DAOSConnector",
}
# Reverse map used to shorten a config on the wire (see StoreConfig.__reduce__).
# There (inside pickled proxies) a built-in connector's dotted path travels as
# "=" + its short name; the "=" tells it apart from a short name given by the user,
# so that both come back exactly as they were.
_SHORT_KIND = {path: "=" + alias for alias, path in reversed(_ALIASES.items())}

_connector_types: dict[str, type[Connector[Any]]] = {}


def _alias_key(kind: str) -> str:
    name = kind.lower()
    return name.removesuffix("connector") or name


def _import_path(path: str) -> Any:
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise ImportError(f"{path!r} is not a dotted path 'module.attribute'.")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError as e:
        raise ImportError(f"Module {module_name!r} has no attribute {attr!r}.") from e


def _find_by_module(name: str) -> Any:
    # proxystore.connectors.<name> with exactly one class named *Connector defined
    # there (e.g. a backend added after this table was written).
    module = importlib.import_module(f"proxystore.connectors.{name}")
    found = [
        obj
        for attr, obj in vars(module).items()
        if isinstance(obj, type)
        and attr.endswith("Connector")
        and obj.__module__ == module.__name__
    ]
    if len(found) != 1:
        raise ImportError(f"No single connector class in {module.__name__}.")
    return found[0]


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(message)


def _is_nonempty_str(value: object) -> bool:
    # Typed ``object``: the fields are annotated str, but callers may pass anything.
    return isinstance(value, str) and bool(value)


@dataclasses.dataclass(frozen=True, slots=True)
class ConnectorConfig:
    """Which connector class to build, and the options to build it with.

    Args:
        kind: Dotted path of the connector class
            (``"proxystore.connectors.file.FileConnector"``) or a short name
            (``"file"``, ``"local"``, ``"redis"``, ``"multi"``, ``"zmq"``, ...;
            case-insensitive). Kept as given (like the reference); short names are
            resolved when the connector type is looked up.
        options: The connector's ``config()``; passed to its ``from_config()``.

    Raises:
        ValueError: if ``kind`` is not a non-empty string or ``options`` is not a
            dict with string keys.
    """

    kind: str
    options: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(
            _is_nonempty_str(self.kind),
            f"ConnectorConfig.kind must be a non-empty string, got {self.kind!r}.",
        )
        options: object = self.options
        _check(
            isinstance(options, dict) and all(isinstance(k, str) for k in options),
            "ConnectorConfig.options must be a dict with string keys, "
            f"got {self.options!r}.",
        )

    def get_connector_type(self) -> type[Connector[Any]]:
        """Import and return the connector class named by `kind`.

        Raises:
            ValueError: if ``kind`` names no importable connector class (the message
                names ``kind``; the import error is chained).
        """
        kind = self.kind
        cls = _connector_types.get(kind)
        if cls is not None:
            return cls
        try:
            if "." in kind:
                found = _import_path(kind)
            elif (path := _ALIASES.get(_alias_key(kind))) is not None:
                found = _import_path(path)
            else:
                found = _find_by_module(_alias_key(kind))
        except ImportError as e:
            known = ", ".join(sorted(set(_ALIASES)))
            raise ValueError(
                f"Unknown connector type {kind!r}: give a dotted class path "
                f"(module.Class) or one of: {known}."
            ) from e
        if not isinstance(found, type):
            raise ValueError(f"Connector type {kind!r} is not a class: {found!r}.")
        _connector_types[kind] = found
        return found

    def get_connector(self) -> Connector[Any]:
        """Build a new connector: ``get_connector_type().from_config(options)``.

        Raises:
            ValueError: if `kind` is unknown (see `get_connector_type`).
            Exception: whatever the connector raises for bad options.
        """
        return self.get_connector_type().from_config(self.options)


_STORE_FIELDS = (
    "name",
    "connector",
    "serializer",
    "deserializer",
    "cache_size",
    "metrics",
    "populate_target",
    "auto_register",
    "auth_key_id",
    "auth_algorithm",
)
# Defaults of the optional fields, in field order; the wire form drops trailing ones.
_STORE_DEFAULTS: tuple[Any, ...] = (
    None,
    None,
    16,
    False,
    True,
    False,
    None,
    "hmac-sha256",
)


@dataclasses.dataclass(frozen=True, slots=True)
class StoreConfig:
    """Everything `Store.from_config` needs to rebuild a store.

    Args:
        name: Name of the store (the key of the process-wide registry).
        connector: The connector's config.
        serializer: Custom serializer, or ``None`` for the default.
        deserializer: Custom deserializer, or ``None`` for the default.
        cache_size: Size of the store's LRU cache of deserialized objects.
        metrics: Whether the store records metrics.
        populate_target: Whether proxies are returned already resolved.
        auto_register: Whether the store registers itself on creation.
        auth_key_id: Reference (never the key itself) to the HMAC key with which
            the store signs and verifies payloads, or ``None`` for no signing.
        auth_algorithm: MAC the store signs with (``"hmac-sha256"`` or
            ``"blake3"``).

    Raises:
        ValueError: if a field has the wrong type or value (the message names it).
    """

    name: str
    connector: ConnectorConfig
    serializer: SerializerT | None = None
    deserializer: DeserializerT | None = None
    cache_size: int = 16
    metrics: bool = False
    populate_target: bool = True
    auto_register: bool = False
    auth_key_id: str | None = None
    auth_algorithm: str = "hmac-sha256"

    def __post_init__(self) -> None:
        _check(
            _is_nonempty_str(self.name),
            f"StoreConfig.name must be a non-empty string, got {self.name!r}.",
        )
        _check(
            isinstance(self.connector, ConnectorConfig),
            "StoreConfig.connector must be a ConnectorConfig, "
            f"got {type(self.connector).__name__}.",
        )
        for field in ("serializer", "deserializer"):
            value = getattr(self, field)
            _check(
                value is None or callable(value),
                f"StoreConfig.{field} must be callable or None, got {value!r}.",
            )
        _check(
            type(self.cache_size) is int and self.cache_size >= 0,
            f"StoreConfig.cache_size must be an int >= 0, got {self.cache_size!r}.",
        )
        for field in ("metrics", "populate_target", "auto_register"):
            value = getattr(self, field)
            _check(
                isinstance(value, bool),
                f"StoreConfig.{field} must be a bool, got {value!r}.",
            )
        _check(
            self.auth_key_id is None or _is_nonempty_str(self.auth_key_id),
            "StoreConfig.auth_key_id must be a non-empty string or None, "
            f"got {self.auth_key_id!r}.",
        )
        _check(
            _is_nonempty_str(self.auth_algorithm),
            "StoreConfig.auth_algorithm must be a non-empty string, "
            f"got {self.auth_algorithm!r}.",
        )

    # ------------------------------------------------------------- plain data
    def as_dict(self) -> dict[str, Any]:
        """Return the config as nested plain dicts (callables kept as they are)."""
        out = {field: getattr(self, field) for field in _STORE_FIELDS}
        out["connector"] = {
            "kind": self.connector.kind,
            "options": dict(self.connector.options),
        }
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build a config from `as_dict` output (or parsed TOML).

        Raises:
            ValueError: on a missing or unknown field, or a field of the wrong type.
        """
        unknown = set(data) - set(_STORE_FIELDS)
        _check(not unknown, f"Unknown StoreConfig field(s): {sorted(unknown)}.")
        _check("name" in data, "StoreConfig requires a 'name'.")
        _check("connector" in data, "StoreConfig requires a 'connector'.")
        connector = data["connector"]
        if isinstance(connector, Mapping):
            extra = set(connector) - {"kind", "options"}
            _check(not extra, f"Unknown ConnectorConfig field(s): {sorted(extra)}.")
            _check("kind" in connector, "ConnectorConfig requires a 'kind'.")
            connector = ConnectorConfig(
                connector["kind"], dict(connector.get("options", {}))
            )
        return cls(**{**data, "connector": connector})

    # ------------------------------------------------------------------ TOML
    @classmethod
    def from_toml(cls, filepath: str | pathlib.Path) -> Self:
        """Read a config written by `write_toml`.

        Raises:
            OSError: if the file cannot be read.
            ValueError: if it is not valid TOML or not a valid config.
        """
        with open(filepath, "rb") as f:
            try:
                data = tomllib.load(f)
            except tomllib.TOMLDecodeError as e:
                raise ValueError(f"{filepath}: invalid TOML ({e}).") from e
        return cls.from_dict(data)

    def write_toml(self, filepath: str | pathlib.Path) -> None:
        """Write the config as TOML, creating parent directories.

        ``None`` fields are left out (TOML has no null); so are connector options
        whose value is ``None``.

        Raises:
            ValueError: if the config holds a custom serializer or deserializer, or
                connector options that TOML cannot represent.
        """
        import tomli_w

        if self.serializer is not None or self.deserializer is not None:
            raise ValueError(
                f"StoreConfig {self.name!r} has a custom (de)serializer, which "
                "cannot be written to TOML."
            )
        data = {k: v for k, v in self.as_dict().items() if v is not None}
        options = {k: v for k, v in self.connector.options.items() if v is not None}
        data["connector"] = {"kind": self.connector.kind, "options": options}
        try:
            text = tomli_w.dumps(data)
        except TypeError as e:
            raise ValueError(
                f"StoreConfig {self.name!r} cannot be written to TOML: {e}"
            ) from e
        path = pathlib.Path(filepath)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    # ------------------------------------------------------------------ wire
    def _to_wire(self) -> tuple[Any, ...]:
        """Compact positional form: what a proxy carries (see ``_from_wire``)."""
        kind = self.connector.kind
        head = (self.name, _SHORT_KIND.get(kind, kind), self.connector.options)
        rest = (
            self.serializer,
            self.deserializer,
            self.cache_size,
            self.metrics,
            self.populate_target,
            self.auto_register,
            self.auth_key_id,
            self.auth_algorithm,
        )
        n = len(rest)
        # Trailing fields equal to their defaults are implied by absence.
        while n and rest[n - 1] == _STORE_DEFAULTS[n - 1]:
            n -= 1
        return head + rest[:n]

    def __reduce__(self) -> tuple[Callable[..., StoreConfig], tuple[Any, ...]]:
        return (_config_from_wire, self._to_wire())


def _config_from_wire(
    name: str, kind: str, options: dict[str, Any], *rest: Any
) -> StoreConfig:
    if kind.startswith("="):
        kind = _ALIASES[kind[1:]]
    return StoreConfig(name, ConnectorConfig(kind, options), *rest)
