"""Stream events and their wire encoding.

A producer publishes `EventBatch` messages; each batch holds, in order,
`NewObjectEvent` (object sent inline), `NewObjectKeyEvent` (object
stored in a [`Store`][proxystore.store.Store], the event carries its key) and
[`EndOfStreamEvent`][proxystore.stream.events.EndOfStreamEvent] values for one topic.

Wire format (version 1), produced by `event_to_bytes`::

    b"\\x89PSE" | u8 version | u32 n | store-config table (n bytes) | event record

The store-config table lists each distinct store configuration once, so a batch
of key events does not repeat it; key events refer to it by index. Decoders
cache decoded tables by their bytes: a stream from one producer decodes its
store configurations once. Records and
values use the small tagged encoding of `proxystore.stream._wire`.

Safety: `bytes_to_event` never executes code. It does not use pickle and
imports nothing; it checks that key types and custom store (de)serializers are
dotted paths in trusted modules. Classes are imported later, only when needed
and only from trusted modules: key ``NamedTuple`` classes and connector classes
defined in ``proxystore.connectors.*``, (de)serializers in ``proxystore.*``, plus
prefixes added with `trust_modules`. A consumer that has registered a store under
the event's store name uses it without importing anything. Inline objects that
are not plain data arrive as `SerializedObject` and are deserialized with
`proxystore.serialize.deserialize` only when a consumer hands the object to
the user — the same trust the consumer already places in its stores' bytes.
Any malformed input raises `EventDecodeError`.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import importlib
import re
import struct
from collections.abc import Sequence
from typing import Any, Final, NamedTuple, TypeAlias

from proxystore.serialize import RestrictedDeserializer, deserialize, serialize
from proxystore.store.config import ConnectorConfig, StoreConfig
from proxystore.stream._wire import (
    NotPlainDataError,
    Reader,
    encode_blob,
    encode_str,
    encode_value,
)
from proxystore.stream.exceptions import EventDecodeError

__all__ = [
    "PART_MIN_SIZE",
    "WIRE_VERSION",
    "EndOfStreamEvent",
    "Event",
    "EventBatch",
    "NewObjectEvent",
    "NewObjectKeyEvent",
    "SerializedObject",
    "bytes_to_event",
    "check_store_config",
    "dict_to_event",
    "event_to_bytes",
    "event_to_dict",
    "event_to_parts",
    "parts_to_event",
    "single_bytes_message",
    "single_bytes_object",
    "trust_modules",
]

#: Version byte written after the magic; decoders refuse other versions.
WIRE_VERSION: Final = 1
_MAGIC: Final = b"\x89PSE"
_HEADER: Final = _MAGIC + bytes((WIRE_VERSION,))
_U32 = struct.Struct(">I")

_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")
_BARE = re.compile(r"[A-Za-z_]\w*")
_DOTTED_OR_BARE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


class SerializedObject(NamedTuple):
    """An inline object that is not plain data, still in serialized form.

    Decoding an event never deserializes such objects (deserialization may
    unpickle, i.e. run code). A `StreamConsumer` calls
    `load` when it returns the object to the user.
    """

    data: bytes
    """Output of [`proxystore.serialize.serialize`][proxystore.serialize.serialize]."""

    def load(self) -> Any:
        """Deserialize the object.

        Raises:
            proxystore.serialize.SerializationError: If ``data`` is not a valid
                serialized object.
        """
        return deserialize(self.data)


@dataclasses.dataclass(slots=True)
class EndOfStreamEvent:
    """No more objects will be sent on ``topic``."""

    topic: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EndOfStreamEvent:
        """Build from the output of `event_to_dict`."""
        return cls(topic=data["topic"])


@dataclasses.dataclass(slots=True)
class NewObjectEvent:
    """An object sent inline in the event itself (no store)."""

    topic: str
    obj: Any
    metadata: dict[str, Any]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NewObjectEvent:
        """Build from the output of `event_to_dict`."""
        return cls(topic=data["topic"], obj=data["obj"], metadata=data["metadata"])


@dataclasses.dataclass(slots=True)
class NewObjectKeyEvent:
    """An object placed in a store; the event carries the key to fetch it.

    Attributes:
        topic: Stream topic.
        key_type: Dotted path of the key's ``NamedTuple`` class, which must live
            in a ``proxystore.connectors.*`` module.
        raw_key: Field values of the key.
        evict: Whether the consumer evicts the object once it is resolved.
        metadata: User metadata sent with the object.
        store_config: Configuration of the store holding the object.
    """

    topic: str
    key_type: str
    raw_key: list[Any]
    evict: bool
    metadata: dict[str, Any]
    store_config: StoreConfig

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NewObjectKeyEvent:
        """Build from the output of `event_to_dict`."""
        config = data["store_config"]
        if not isinstance(config, StoreConfig):
            config = _config_from_plain(config)
        return cls(
            topic=data["topic"],
            key_type=data["key_type"],
            raw_key=list(data["raw_key"]),
            evict=data["evict"],
            metadata=data["metadata"],
            store_config=config,
        )

    @classmethod
    def from_key(
        cls,
        key: tuple[Any, ...],
        *,
        evict: bool,
        metadata: dict[str, Any],
        store_config: StoreConfig,
        topic: str,
    ) -> NewObjectKeyEvent:
        """Build the event for an object stored at ``key``."""
        key_cls = type(key)
        return cls(
            topic=topic,
            key_type=f"{key_cls.__module__}.{key_cls.__qualname__}",
            raw_key=list(key),
            evict=evict,
            metadata=metadata,
            store_config=store_config,
        )

    def get_key(self, *, connector: object | None = None) -> Any:
        """Rebuild the key ``NamedTuple``.

        Args:
            connector: The connector of the consumer's store for this event. Key
                classes defined in its module are accepted too: a store the
                consumer itself set up vouches for its connector's keys.

        Raises:
            EventDecodeError: If ``key_type`` is not a ``NamedTuple`` class of a
                trusted module (``proxystore.connectors.*``, see
                `trust_modules`, or the module of ``connector``), or ``raw_key``
                does not fit it.
        """
        key_cls = _key_class(self.key_type, _module_of(connector))
        if len(self.raw_key) != len(key_cls._fields):
            raise EventDecodeError(
                f"Key of type {self.key_type} has {len(key_cls._fields)} fields, "
                f"got {len(self.raw_key)} values.",
            )
        return key_cls(*self.raw_key)


Event: TypeAlias = EndOfStreamEvent | NewObjectEvent | NewObjectKeyEvent


@dataclasses.dataclass(slots=True)
class EventBatch:
    """Events of one topic, published as one message (order preserved)."""

    topic: str
    events: list[Event]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EventBatch:
        """Build from the output of `event_to_dict`."""
        events = [dict_to_event(e) for e in data["events"]]
        if any(isinstance(e, EventBatch) for e in events):
            raise ValueError("An EventBatch cannot contain another EventBatch.")
        return cls(topic=data["topic"], events=events)  # type: ignore[arg-type]


class _EventMapping(enum.Enum):
    END_OF_STREAM = EndOfStreamEvent
    EVENT_BATCH = EventBatch
    NEW_OBJECT = NewObjectEvent
    NEW_OBJECT_KEY = NewObjectKeyEvent


_EVENT_NAMES: Final[dict[type, str]] = {m.value: m.name for m in _EventMapping}


# ----------------------------------------------------------------- allow-lists
# Module prefixes from which key types and connector classes (first list) and
# store (de)serializers (second list) may be imported when a consumer rebuilds
# them from an event. Extended with trust_modules().
_TRUSTED_TYPES: list[str] = ["proxystore.connectors."]
_TRUSTED_CALLABLES: list[str] = ["proxystore."]


def trust_modules(*prefixes: str) -> None:
    """Allow events to name key types, connectors and (de)serializers from here.

    By default a consumer rebuilds only key ``NamedTuple`` classes and connector
    classes of ``proxystore.connectors.*`` modules, and custom store
    (de)serializers of ``proxystore.*`` modules, so that a message cannot make it
    import or call anything else. Use this to stream through your own connector
    (when the consumer has not registered the store by name itself) or with your
    own serializer.

    Args:
        prefixes: Module path prefixes such as ``"mypackage.connectors."``.

    Raises:
        ValueError: If a prefix is not a dotted module path ending with ``"."``.
    """
    for prefix in prefixes:
        if not prefix.endswith(".") or not _DOTTED_OR_BARE.fullmatch(prefix[:-1]):
            raise ValueError(f"{prefix!r} is not a module prefix like 'pkg.mod.'.")
        for trusted in (_TRUSTED_TYPES, _TRUSTED_CALLABLES):
            if prefix not in trusted:
                trusted.append(prefix)
    _key_class.cache_clear()
    _check_connector_kind.cache_clear()
    _callable_from_path.cache_clear()


def _check_path(path: str, trusted: list[str], what: str) -> None:
    if not path.startswith(tuple(trusted)):
        raise EventDecodeError(
            f"{what} {path!r} is outside the trusted modules {trusted} "
            "(see proxystore.stream.events.trust_modules).",
        )
    if not _DOTTED.fullmatch(path):
        raise EventDecodeError(f"Corrupt event: {what} {path!r} is not a dotted path.")


def _import_attr(path: str, trusted: list[str], what: str) -> Any:
    _check_path(path, trusted, what)
    module_name, _, attr = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr)
    except (ImportError, AttributeError) as e:
        raise EventDecodeError(f"Cannot import {what} {path!r}: {e}") from e


def _defined_in_trusted(obj: type, trusted: list[str]) -> bool:
    # Guards against re-exported names: `proxystore.connectors.x.os` must not
    # pass because the module it was imported into is trusted.
    return f"{obj.__module__}.".startswith(tuple(trusted))


def _module_of(connector: object | None) -> str | None:
    return None if connector is None else type(connector).__module__


@functools.lru_cache(maxsize=256)
def _key_class(path: str, connector_module: str | None = None) -> type[Any]:
    trusted = _TRUSTED_TYPES
    if connector_module is not None and path.startswith(connector_module + "."):
        # Already imported in this process (the connector exists): no new code runs.
        trusted = [*trusted, connector_module + "."]
    cls = _import_attr(path, trusted, "key type")
    if not (
        isinstance(cls, type)
        and issubclass(cls, tuple)
        and hasattr(cls, "_fields")
        and _defined_in_trusted(cls, trusted)
    ):
        raise EventDecodeError(f"{path!r} is not a connector key NamedTuple.")
    return cls


@functools.lru_cache(maxsize=64)
def _check_connector_kind(kind: str) -> None:
    # Bare names are short aliases ("redis", "file", ...) that the store config
    # resolves to built-in connectors only.
    if _BARE.fullmatch(kind):
        return
    cls = _import_attr(kind, _TRUSTED_TYPES, "connector")
    if not (
        isinstance(cls, type)
        and hasattr(cls, "from_config")
        and _defined_in_trusted(cls, _TRUSTED_TYPES)
    ):
        raise EventDecodeError(f"{kind!r} is not a connector class.")


@functools.lru_cache(maxsize=64)
def _callable_from_path(path: str) -> Any:
    func = _import_attr(path, _TRUSTED_CALLABLES, "(de)serializer")
    if not callable(func):
        raise EventDecodeError(f"{path!r} is not callable.")
    return func


class _ImportOnCall:
    """A store (de)serializer named by an event, imported only when first used.

    Decoding an event never imports it: a consumer that already has the store
    registered by name never does. Importing honours the trusted modules.
    """

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _callable_from_path(self.path)(*args, **kwargs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ImportOnCall) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    def __repr__(self) -> str:
        return f"<{self.path} (imported on first call)>"


# A RestrictedDeserializer travels as this prefix and its allow-list (plain data).
_RESTRICTED: Final = "restricted:"


def _callable_path(func: Any) -> str | None:
    if func is None:
        return None
    if isinstance(func, _ImportOnCall):
        return func.path
    if isinstance(func, RestrictedDeserializer):
        return _RESTRICTED + ",".join(func.allow)
    return f"{func.__module__}.{func.__qualname__}"


def check_store_config(config: StoreConfig) -> None:
    """Check that a store can be built from ``config`` importing only trusted code.

    `StreamConsumer` calls this before creating a store
    from an event's configuration (a store already registered under the same
    name is used as it is, without this check).

    Raises:
        EventDecodeError: If the connector class or a (de)serializer lies outside
            the trusted modules (see `trust_modules`).
    """
    _check_connector_kind(config.connector.kind)
    for func in (config.serializer, config.deserializer):
        if isinstance(func, _ImportOnCall):
            _callable_from_path(func.path)


# ----------------------------------------------------------------- dict forms
def _config_to_plain(config: StoreConfig) -> dict[str, Any]:
    return {
        "name": config.name,
        "connector": {
            "kind": config.connector.kind,
            "options": dict(config.connector.options),
        },
        "serializer": _callable_path(config.serializer),
        "deserializer": _callable_path(config.deserializer),
        "cache_size": config.cache_size,
        "metrics": config.metrics,
        "populate_target": config.populate_target,
        "auto_register": config.auto_register,
        "auth_key_id": config.auth_key_id,
        "auth_algorithm": config.auth_algorithm,
    }


_CONFIG_FIELDS: Final = 9
# A signing store adds its key reference (never the key) and its MAC algorithm.
_SIGNED_CONFIG_FIELDS: Final = 11


def _config_to_wire(config: StoreConfig) -> tuple[Any, ...]:
    # Positional (no field names): it is repeated in every message.
    return (
        config.name,
        config.connector.kind,
        dict(config.connector.options),
        _callable_path(config.serializer),
        _callable_path(config.deserializer),
        config.cache_size,
        config.metrics,
        config.populate_target,
        config.auto_register,
    ) + (
        ()
        if config.auth_key_id is None
        else (config.auth_key_id, config.auth_algorithm)
    )


def _config_from_wire(data: Any) -> StoreConfig:
    fields = _expect(data, tuple, "store config")
    if len(fields) not in (_CONFIG_FIELDS, _SIGNED_CONFIG_FIELDS):
        raise EventDecodeError(f"Corrupt event: store config of {len(fields)} fields.")
    name, kind, options, ser, deser, cache_size, metrics, populate, register = fields[
        :_CONFIG_FIELDS
    ]
    signed = len(fields) == _SIGNED_CONFIG_FIELDS
    auth = fields[_CONFIG_FIELDS] if signed else None
    algorithm = fields[_CONFIG_FIELDS + 1] if signed else "hmac-sha256"
    return _config_from_plain(
        {
            "name": name,
            "connector": {"kind": kind, "options": options},
            "serializer": ser,
            "deserializer": deser,
            "cache_size": cache_size,
            "metrics": metrics,
            "populate_target": populate,
            "auto_register": register,
            "auth_key_id": auth,
            "auth_algorithm": algorithm,
        },
    )


def _expect(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    # bool is an int subclass; never accept it where an int is expected.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise EventDecodeError(f"Corrupt event: {what} has type {type(value)}.")
    return value


def _config_from_plain(data: Any) -> StoreConfig:
    _expect(data, dict, "store config")
    try:
        connector = _expect(data["connector"], dict, "connector config")
        kind = _expect(connector["kind"], str, "connector kind")
        options = _expect(connector["options"], dict, "connector options")
        funcs: dict[str, Any] = {}
        for field in ("serializer", "deserializer"):
            path = data[field]
            restricted = field == "deserializer" and isinstance(path, str)
            if restricted and path.startswith(_RESTRICTED):
                allow = path[len(_RESTRICTED) :]
                funcs[field] = RestrictedDeserializer(allow.split(",") if allow else ())
                continue
            if path is not None:
                _check_path(_expect(path, str, field), _TRUSTED_CALLABLES, field)
            funcs[field] = None if path is None else _ImportOnCall(path)
        return StoreConfig(
            name=_expect(data["name"], str, "store name"),
            connector=ConnectorConfig(kind=kind, options=options),
            serializer=funcs["serializer"],
            deserializer=funcs["deserializer"],
            cache_size=_expect(data["cache_size"], int, "cache_size"),
            metrics=_expect(data["metrics"], bool, "metrics"),
            populate_target=_expect(data["populate_target"], bool, "populate_target"),
            auto_register=_expect(data["auto_register"], bool, "auto_register"),
            auth_key_id=_expect(data.get("auth_key_id"), (str, type(None)), "auth"),
            auth_algorithm=_expect(
                data.get("auth_algorithm", "hmac-sha256"), str, "auth_algorithm"
            ),
        )
    except KeyError as e:
        raise EventDecodeError(f"Corrupt event: store config lacks {e}.") from e
    except (TypeError, ValueError) as e:
        if isinstance(e, EventDecodeError):
            raise
        raise EventDecodeError(f"Corrupt event: invalid store config ({e}).") from e


def event_to_dict(event: Event | EventBatch) -> dict[str, Any]:
    """Return ``event`` as a dict of its fields plus ``'event_type'``.

    Store configurations become plain dicts, so the result of a key event is
    plain data. Batches are converted recursively.
    """
    if isinstance(event, EventBatch):
        data: dict[str, Any] = {
            "topic": event.topic,
            "events": [event_to_dict(e) for e in event.events],
        }
    elif isinstance(event, NewObjectKeyEvent):
        data = {
            "topic": event.topic,
            "key_type": event.key_type,
            "raw_key": list(event.raw_key),
            "evict": event.evict,
            "metadata": event.metadata,
            "store_config": _config_to_plain(event.store_config),
        }
    elif isinstance(event, NewObjectEvent):
        data = {"topic": event.topic, "obj": event.obj, "metadata": event.metadata}
    else:
        data = {"topic": event.topic}
    data["event_type"] = _EVENT_NAMES[type(event)]
    return data


def dict_to_event(data: dict[str, Any]) -> Event | EventBatch:
    """Inverse of [`event_to_dict`][proxystore.stream.events.event_to_dict].

    Raises:
        ValueError: If ``'event_type'`` is missing or unknown.
    """
    data = dict(data)
    name = data.pop("event_type", None)
    try:
        cls: type[Event | EventBatch] = _EventMapping[name].value
    except KeyError:
        raise ValueError(f"Unknown stream event type {name!r}.") from None
    return cls.from_dict(data)


# ----------------------------------------------------------------- bytes forms
_REC_END: Final = 1
_REC_OBJECT: Final = 2
_REC_KEY: Final = 3
_REC_BATCH: Final = 4

_OBJ_PLAIN: Final = 0
_OBJ_SERIALIZED: Final = 1
_OBJ_PART: Final = 2

#: ``bytes`` objects at least this large leave the message head and travel as
#: separate parts when a transport takes multipart messages (no copy).
PART_MIN_SIZE: Final = 64 * 1024

# Scalars and buffers that round-trip exactly; anything else (including
# containers, which could be huge) goes through proxystore.serialize.
_PLAIN_OBJECT_TYPES: Final = frozenset(
    {type(None), bool, int, float, str, bytes},
)


class _Encoder:
    __slots__ = ("configs", "out", "part_min_size", "parts")

    def __init__(self, part_min_size: int | None = None) -> None:
        self.out: list[bytes] = []
        self.part_min_size = part_min_size
        self.parts: list[bytes] = []
        # Configs are compared by identity first (a producer reuses one object
        # per store), then by value.
        self.configs: list[tuple[StoreConfig, tuple[Any, ...]]] = []

    def config_index(self, config: StoreConfig) -> int:
        for i, (seen, _) in enumerate(self.configs):
            if seen is config:
                return i
        wire = _config_to_wire(config)
        for i, (_, seen_wire) in enumerate(self.configs):
            if seen_wire == wire:
                return i
        self.configs.append((config, wire))
        return len(self.configs) - 1

    def record(self, event: Event | EventBatch, *, nested: bool = False) -> None:
        out = self.out
        if isinstance(event, EventBatch):
            if nested:
                raise TypeError("An EventBatch cannot contain another EventBatch.")
            out.append(bytes((_REC_BATCH,)))
            encode_str(event.topic, out)
            encode_value(len(event.events), out)
            for item in event.events:
                self.record(item, nested=True)
        elif isinstance(event, NewObjectKeyEvent):
            out.append(bytes((_REC_KEY,)))
            encode_str(event.topic, out)
            encode_str(event.key_type, out)
            encode_value(tuple(event.raw_key), out)
            encode_value(bool(event.evict), out)
            _encode_metadata(event.metadata, out)
            encode_value(self.config_index(event.store_config), out)
        elif isinstance(event, NewObjectEvent):
            out.append(bytes((_REC_OBJECT,)))
            encode_str(event.topic, out)
            _encode_metadata(event.metadata, out)
            obj = event.obj
            if (
                self.part_min_size is not None
                and type(obj) is bytes
                and len(obj) >= self.part_min_size
            ):
                out.append(bytes((_OBJ_PART,)))
                encode_value(len(self.parts), out)
                self.parts.append(obj)
            elif type(obj) in _PLAIN_OBJECT_TYPES:
                out.append(bytes((_OBJ_PLAIN,)))
                encode_value(obj, out)
            else:
                data = obj.data if type(obj) is SerializedObject else serialize(obj)
                out.append(bytes((_OBJ_SERIALIZED,)))
                encode_blob(data, out)
        elif isinstance(event, EndOfStreamEvent):
            out.append(bytes((_REC_END,)))
            encode_str(event.topic, out)
        else:
            raise TypeError(f"Not a stream event: {type(event).__qualname__}.")


def _encode_metadata(metadata: dict[str, Any], out: list[bytes]) -> None:
    if type(metadata) is not dict:
        raise TypeError(
            f"Event metadata must be a dict, got {type(metadata).__qualname__}.",
        )
    try:
        encode_value(metadata, out)
    except NotPlainDataError as e:
        raise TypeError(f"Event metadata must be plain data: {e}") from None


def event_to_bytes(event: Event | EventBatch) -> bytes:
    """Encode ``event`` in the versioned wire format (see module docstring).

    Inline objects of `NewObjectEvent` that are not ``None``, ``bool``,
    ``int``, ``float``, ``str`` or ``bytes`` are serialized with
    [`proxystore.serialize.serialize`][proxystore.serialize.serialize].

    Raises:
        TypeError: If metadata or a key is not plain data (``None``, ``bool``,
            ``int``, ``float``, ``str``, ``bytes``, ``list``, ``tuple``, ``dict``),
            or if ``event`` is not an event.
        proxystore.serialize.SerializationError: If an inline object cannot be
            serialized.
    """
    return _encode(event, _Encoder())[0]


def event_to_parts(
    event: Event | EventBatch,
    *,
    part_min_size: int = PART_MIN_SIZE,
) -> list[bytes]:
    """Encode ``event`` as a multipart message: a head, then large payloads.

    Inline ``bytes`` objects of at least ``part_min_size`` bytes are not copied
    into the head: they become parts of their own (the very same objects), and
    the head refers to them by index. Decode with `parts_to_event`.
    Transports with native multipart messages (ZeroMQ) send these without
    joining them.

    Raises:
        TypeError: As [`event_to_bytes`][proxystore.stream.events.event_to_bytes].
    """
    head, parts = _encode(event, _Encoder(part_min_size))
    return [head, *parts]


def _encode(event: Event | EventBatch, encoder: _Encoder) -> tuple[bytes, list[bytes]]:
    if type(event) is EventBatch and len(event.events) == 1:
        # The common message (one inline bytes object, no metadata) is a cached
        # prefix and the payload: the same bytes the generic encoder makes.
        item = event.events[0]
        if (
            type(item) is NewObjectEvent
            and type(item.obj) is bytes
            and type(item.metadata) is dict
            and not item.metadata
            and (encoder.part_min_size is None or len(item.obj) < encoder.part_min_size)
        ):
            return single_bytes_message(event.topic, item.topic, item.obj), []
    encoder.record(event)
    if encoder.configs:
        table: list[bytes] = []
        encode_value([wire for _, wire in encoder.configs], table)
        configs = b"".join(table)
        head = [_HEADER, _U32.pack(len(configs)), configs, *encoder.out]
    else:
        head = [_EMPTY_TABLE_HEADER, *encoder.out]
    return b"".join(head), encoder.parts


_AnyBytes: TypeAlias = bytes | bytearray | memoryview

#: What follows the prefix of a single inline bytes object: the plain-object
#: kind, then the tagged bytes value (tag, u64 length; the payload follows).
_PLAIN_BYTES_TAG: Final = struct.Struct(">BBQ")
_PLAIN_BYTES_HEAD: Final = (_OBJ_PLAIN, 0x07)


def single_bytes_message(batch_topic: str, topic: str, obj: bytes) -> bytes:
    """Encode a batch holding one inline ``bytes`` object without metadata.

    The same bytes as `event_to_bytes` (or the head of `event_to_parts`
    for objects under `PART_MIN_SIZE`) gives for that batch, from a cached
    prefix: the producer's per-item path.
    """
    return b"".join(
        (_single_head(batch_topic, topic), _OBJECT_SIZE.pack(len(obj)), obj)
    )


@functools.lru_cache(maxsize=256)
def _single_prefix(batch_topic: str, topic: str) -> bytes:
    """Encoding of a one-object batch up to the object (kind byte excluded)."""
    encoder = _Encoder()
    encoder.record(EventBatch(batch_topic, [NewObjectEvent(topic, b"", {})]))
    head = b"".join([_EMPTY_TABLE_HEADER, *encoder.out])
    return head[: -_PLAIN_BYTES_TAG.size]


@functools.lru_cache(maxsize=256)
def _single_head(batch_topic: str, topic: str) -> bytes:
    """`_single_prefix`, then the object's kind and tag (its size follows)."""
    return _single_prefix(batch_topic, topic) + bytes(_PLAIN_BYTES_HEAD)


#: The u64 size that ends the tagged bytes value.
_OBJECT_SIZE: Final = struct.Struct(">Q")


#: Decoded prefixes of one-object batches -> (batch topic, object topic). Filled
#: by the generic decoder, bounded; a hit skips record parsing entirely.
_SEEN_PREFIXES: dict[bytes, tuple[str, str]] = {}
_SEEN_PREFIXES_MAX: Final = 256
_TOPIC_LEN = struct.Struct(">I")


def _single_prefix_length(data: _AnyBytes) -> int:
    """Length the prefix of a one-object batch in ``data`` would have, or 0."""
    start = len(_EMPTY_TABLE_HEADER)
    # header | batch kind, u32 topic length, topic | tagged count (9 bytes) |
    # object kind, u32 topic length, topic | empty dict (5 bytes)
    try:
        if data[start] != _REC_BATCH:
            return 0
        (batch_len,) = _TOPIC_LEN.unpack_from(data, start + 1)
        second: int = start + 1 + 4 + batch_len + 9 + 1
        topic_len: int = _TOPIC_LEN.unpack_from(data, second)[0]
    except (IndexError, struct.error):
        return 0
    return second + 4 + topic_len + 5


def _match_single(data: _AnyBytes) -> tuple[tuple[str, str], int] | None:
    """Topics and payload offset of a one-object batch with a seen prefix."""
    global _LAST_SINGLE  # a one-entry cache of the last match
    last = _LAST_SINGLE
    if last is not None and type(data) is bytes and data.startswith(last[0]):
        # The same prefix, kind and tag as the last match (a stream sends the
        # same topics over and over): the object is what follows its size, if
        # that size runs exactly to the end.
        start = last[1]
        size = len(data) - start
        if (
            size >= 0
            and _OBJECT_SIZE.unpack_from(data, start - _OBJECT_SIZE.size)[0] == size
        ):
            return last[2], start
    end = _single_prefix_length(data)
    if not end:
        return None
    topics = _SEEN_PREFIXES.get(bytes(data[:end]))
    if topics is None:
        return None
    try:
        kind, tag, size = _PLAIN_BYTES_TAG.unpack_from(data, end)
    except struct.error:
        return None
    start = end + _PLAIN_BYTES_TAG.size
    if (kind, tag) != _PLAIN_BYTES_HEAD or start + size != len(data):
        return None
    _LAST_SINGLE = (bytes(data[: start - _OBJECT_SIZE.size]), start, topics)
    return topics, start


#: Head (seen prefix, kind and tag), payload offset and topics of the last
#: one-object batch `_match_single` matched.
_LAST_SINGLE: tuple[bytes, int, tuple[str, str]] | None = None


def single_bytes_object(data: _AnyBytes) -> bytes | None:
    """Return the object of a one-``bytes``-object message, else ``None``.

    The consumer's per-item path: a message that `single_bytes_message`
    made, whose prefix the decoder has already seen once, gives its object
    without building events; anything else gives ``None`` (decode it with
    `bytes_to_event`).
    """
    found = _match_single(data)
    if found is None:
        return None
    start = found[1]
    return data[start:] if type(data) is bytes else bytes(data[start:])


def _decode_single(data: _AnyBytes) -> EventBatch | None:
    """Decode a one-object batch whose prefix was seen before, else ``None``."""
    found = _match_single(data)
    if found is None:
        return None
    (batch_topic, topic), start = found
    obj = data[start:] if type(data) is bytes else bytes(data[start:])
    return EventBatch(batch_topic, [NewObjectEvent(topic, obj, {})])


def _remember_single(data: _AnyBytes, event: Event | EventBatch) -> None:
    """Record the prefix of ``data`` if it is a plain one-object batch."""
    if (
        len(_SEEN_PREFIXES) < _SEEN_PREFIXES_MAX
        and type(event) is EventBatch
        and len(event.events) == 1
    ):
        item = event.events[0]
        if (
            type(item) is NewObjectEvent
            and type(item.obj) is bytes
            and not item.metadata
        ):
            prefix = _single_prefix(event.topic, item.topic)
            if bytes(data[: len(prefix)]) == prefix:
                _SEEN_PREFIXES[prefix] = (event.topic, item.topic)


def _empty_table_header() -> bytes:
    # Header of every message without store configs (all-inline batches).
    table: list[bytes] = []
    encode_value([], table)
    configs = b"".join(table)
    return b"".join([_HEADER, _U32.pack(len(configs)), configs])


_EMPTY_TABLE_HEADER: Final = _empty_table_header()


class _Decoder:
    __slots__ = ("configs", "parts", "reader", "used")

    def __init__(
        self, reader: Reader, configs: list[StoreConfig], parts: Sequence[_AnyBytes]
    ) -> None:
        self.reader = reader
        self.configs = configs
        self.parts = parts
        self.used = 0

    def part(self) -> bytes:
        index = _expect(self.reader.value(), int, "part index")
        # Parts are referenced in order, each once: anything else is corrupt.
        if index != self.used or index >= len(self.parts):
            raise EventDecodeError(
                f"Corrupt event: reference to part #{index} "
                f"({len(self.parts)} parts, {self.used} used).",
            )
        self.used += 1
        part = self.parts[index]
        return part if type(part) is bytes else bytes(part)

    def metadata(self) -> dict[str, Any]:
        return _expect(self.reader.value(), dict, "metadata")  # type: ignore[no-any-return]

    def record(self, *, nested: bool = False) -> Event | EventBatch:
        r = self.reader
        kind = r.u8()
        if kind == _REC_END:
            return EndOfStreamEvent(r.text())
        if kind == _REC_OBJECT:
            topic = r.text()
            metadata = self.metadata()
            obj_kind = r.u8()
            if obj_kind == _OBJ_PLAIN:
                obj = r.value()
                if type(obj) not in _PLAIN_OBJECT_TYPES:
                    raise EventDecodeError("Corrupt event: inline object not plain.")
            elif obj_kind == _OBJ_SERIALIZED:
                obj = SerializedObject(r.blob())
            elif obj_kind == _OBJ_PART:
                obj = self.part()
            else:
                raise EventDecodeError(f"Corrupt event: object kind {obj_kind}.")
            return NewObjectEvent(topic, obj, metadata)
        if kind == _REC_KEY:
            topic = r.text()
            key_type = r.text()
            raw_key = _expect(r.value(), tuple, "raw key")
            # Only the form is checked here; get_key() checks the allow-list
            # (which the consumer's own store may extend) and imports the class.
            if not _DOTTED.fullmatch(key_type):
                raise EventDecodeError(
                    f"Corrupt event: key type {key_type!r} is not a dotted path."
                )
            evict = _expect(r.value(), bool, "evict flag")
            metadata = self.metadata()
            index = _expect(r.value(), int, "store config index")
            if not 0 <= index < len(self.configs):
                raise EventDecodeError(f"Corrupt event: store config #{index}.")
            return NewObjectKeyEvent(
                topic, key_type, list(raw_key), evict, metadata, self.configs[index]
            )
        if kind == _REC_BATCH and not nested:
            topic = r.text()
            count = _expect(r.value(), int, "event count")
            if not 0 <= count <= r.remaining:
                raise EventDecodeError(f"Corrupt event: batch of {count} events.")
            events: list[Event] = [
                self.record(nested=True)  # type: ignore[misc]
                for _ in range(count)
            ]
            return EventBatch(topic, events)
        raise EventDecodeError(f"Corrupt event: unknown record kind {kind}.")


def _config_table(data: bytes) -> list[StoreConfig]:
    # Cached by content: every message of a producer repeats the same table.
    # StoreConfig is frozen, so sharing one decoded instance is safe. Unusually
    # large tables are not cached, so the cache stays small whatever arrives.
    if len(data) <= _CACHED_TABLE_SIZE:
        return _cached_config_table(data)
    return _decode_config_table(data)


_CACHED_TABLE_SIZE: Final = 4096


def _decode_config_table(data: bytes) -> list[StoreConfig]:
    reader = Reader(data)
    wire_configs = _expect(reader.value(), list, "store config table")
    if reader.remaining:
        raise EventDecodeError("Corrupt event: trailing bytes in the config table.")
    return [_config_from_wire(c) for c in wire_configs]


_cached_config_table = functools.lru_cache(maxsize=128)(_decode_config_table)


def bytes_to_event(s: _AnyBytes) -> Event | EventBatch:
    """Decode a message made by `event_to_bytes`; never executes code.

    The parameter is named ``s`` like the reference release's, so keyword calls
    keep working.

    Raises:
        EventDecodeError: If ``s`` is not a complete, valid version-1 event,
            or names a key type or (de)serializer outside the trusted modules.
    """
    return _decode(s, ())


def parts_to_event(parts: Sequence[_AnyBytes]) -> Event | EventBatch:
    """Decode a multipart message made by `event_to_parts`.

    ``bytes`` parts become the decoded objects without a copy.

    Raises:
        EventDecodeError: As `bytes_to_event`, or if the parts do not match
            the head's references.
    """
    if not parts:
        raise EventDecodeError("Empty multipart message.")
    return _decode(parts[0], parts[1:])


def _decode(data: _AnyBytes, parts: Sequence[_AnyBytes]) -> Event | EventBatch:
    if not parts and type(data) in (bytes, bytearray, memoryview):
        single = _decode_single(data)
        if single is not None:
            return single
        if type(data) is bytes and _LAST_KEY is not None:
            keyed = _decode_key(data, _LAST_KEY)
            if keyed is not None:
                return keyed
    try:
        reader = Reader(data)
    except (TypeError, ValueError) as e:
        raise EventDecodeError(f"Events must be bytes-like, not {type(data)}.") from e
    if bytes(reader.take(min(len(_MAGIC), reader.remaining))) != _MAGIC:
        raise EventDecodeError("Not a proxystore stream event (bad magic bytes).")
    version = reader.u8()
    if version != WIRE_VERSION:
        raise EventDecodeError(
            f"Unsupported stream event version {version} "
            f"(this decoder reads version {WIRE_VERSION}).",
        )
    decoder = _Decoder(reader, _config_table(bytes(reader.take(reader.u32()))), parts)
    event = decoder.record()
    if reader.remaining:
        raise EventDecodeError(
            f"Corrupt event: {reader.remaining} trailing bytes after the event.",
        )
    if decoder.used != len(parts):
        raise EventDecodeError(
            f"Corrupt event: {len(parts) - decoder.used} unreferenced parts.",
        )
    if not parts:
        _remember_single(data, event)
        _remember_key(data, event)
    return event


class _KeyShape(NamedTuple):
    """A one-key-event batch's bytes around its key, and what they decode to."""

    head: bytes  # everything before the raw key
    tail: bytes  # evict flag, empty metadata and config index
    batch_topic: str
    topic: str
    key_type: str
    evict: bool
    config: StoreConfig


#: The last one-key-event batch without metadata that the generic decoder read.
#: A producer sends the same topic, key type and store over and over, so only
#: the raw key (e.g. a fresh object id) differs between messages.
_LAST_KEY: _KeyShape | None = None


def _remember_key(data: _AnyBytes, event: Event | EventBatch) -> None:
    global _LAST_KEY  # a one-entry cache of the last shape seen
    if type(event) is not EventBatch or len(event.events) != 1:
        return
    item = event.events[0]
    if type(item) is not NewObjectKeyEvent or item.metadata:
        return
    middle: list[bytes] = []
    encode_value(tuple(item.raw_key), middle)
    tail: list[bytes] = []
    encode_value(bool(item.evict), tail)
    encode_value({}, tail)
    encode_value(0, tail)  # the only config of a one-event batch is #0
    key_bytes, tail_bytes = b"".join(middle), b"".join(tail)
    data = bytes(data)
    if not data.endswith(key_bytes + tail_bytes):
        return
    _LAST_KEY = _KeyShape(
        data[: len(data) - len(key_bytes) - len(tail_bytes)],
        tail_bytes,
        event.topic,
        item.topic,
        item.key_type,
        bool(item.evict),
        item.store_config,
    )


def _decode_key(data: bytes, shape: _KeyShape) -> EventBatch | None:
    """Decode a one-key-event batch of the ``shape`` seen last, else ``None``."""
    if not (data.startswith(shape.head) and data.endswith(shape.tail)):
        return None
    start, end = len(shape.head), len(data) - len(shape.tail)
    if end <= start:
        return None
    reader = Reader(data[start:end])
    try:
        raw_key = reader.value()
    except EventDecodeError:
        return None
    if reader.remaining or type(raw_key) is not tuple:
        return None
    key = NewObjectKeyEvent(
        shape.topic, shape.key_type, list(raw_key), shape.evict, {}, shape.config
    )
    return EventBatch(shape.batch_topic, [key])
