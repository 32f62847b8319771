"""Stream events and their wire encoding.

A producer publishes :class:`EventBatch` messages; each batch holds, in order,
:class:`NewObjectEvent` (object sent inline), :class:`NewObjectKeyEvent` (object
stored in a :class:`~proxystore.store.Store`, the event carries its key) and
:class:`EndOfStreamEvent` values for one topic.

Wire format (version 1), produced by :func:`event_to_bytes`::

    b"\\x89PSE" | u8 version | store-config table | event record

The store-config table lists each distinct store configuration once, so a batch
of key events does not repeat it; key events refer to it by index. Records and
values use the small tagged encoding of :mod:`proxystore.stream._wire`.

Safety: :func:`bytes_to_event` never executes code. It does not use pickle, it
imports key types and connector classes only from ``proxystore.connectors.*``
(and custom store (de)serializers only from ``proxystore.*``), and it does not
deserialize inline objects that are not plain data: those arrive as
:class:`SerializedObject` and are deserialized with
:func:`proxystore.serialize.deserialize` only when a consumer hands the object to
the user, which is the same trust the consumer already places in its stores.
Any malformed input raises :class:`~proxystore.stream.exceptions.EventDecodeError`.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import importlib
import re
from typing import Any, Final, NamedTuple, TypeAlias

from proxystore.serialize import deserialize, serialize
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
    "WIRE_VERSION",
    "EndOfStreamEvent",
    "Event",
    "EventBatch",
    "NewObjectEvent",
    "NewObjectKeyEvent",
    "SerializedObject",
    "bytes_to_event",
    "dict_to_event",
    "event_to_bytes",
    "event_to_dict",
]

#: Version byte written after the magic; decoders refuse other versions.
WIRE_VERSION: Final = 1
_MAGIC: Final = b"\x89PSE"
_HEADER: Final = _MAGIC + bytes((WIRE_VERSION,))

_KEY_MODULE_PREFIX: Final = "proxystore.connectors."
_CALLABLE_MODULE_PREFIX: Final = "proxystore."
_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")
_BARE = re.compile(r"[A-Za-z_]\w*")


class SerializedObject(NamedTuple):
    """An inline object that is not plain data, still in serialized form.

    Decoding an event never deserializes such objects (deserialization may
    unpickle, i.e. run code). A :class:`~proxystore.stream.StreamConsumer` calls
    :meth:`load` when it returns the object to the user.
    """

    data: bytes
    """Output of :func:`proxystore.serialize.serialize`."""

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
        """Build from the output of :func:`event_to_dict`."""
        return cls(topic=data["topic"])


@dataclasses.dataclass(slots=True)
class NewObjectEvent:
    """An object sent inline in the event itself (no store)."""

    topic: str
    obj: Any
    metadata: dict[str, Any]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NewObjectEvent:
        """Build from the output of :func:`event_to_dict`."""
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
        """Build from the output of :func:`event_to_dict`."""
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

    def get_key(self) -> Any:
        """Rebuild the key ``NamedTuple``.

        Raises:
            EventDecodeError: If ``key_type`` is not a ``NamedTuple`` class of a
                ``proxystore.connectors.*`` module, or ``raw_key`` does not fit it.
        """
        key_cls = _key_class(self.key_type)
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
        """Build from the output of :func:`event_to_dict`."""
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
def _import_attr(path: str, prefix: str) -> Any:
    if not _DOTTED.fullmatch(path) or not path.startswith(prefix):
        raise EventDecodeError(f"{path!r} is not an allowed {prefix}* path.")
    module_name, _, attr = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr)
    except (ImportError, AttributeError) as e:
        raise EventDecodeError(f"Cannot import {path!r}: {e}") from e


@functools.lru_cache(maxsize=256)
def _key_class(path: str) -> type[Any]:
    cls = _import_attr(path, _KEY_MODULE_PREFIX)
    if not (
        isinstance(cls, type)
        and issubclass(cls, tuple)
        and hasattr(cls, "_fields")
        and cls.__module__.startswith(_KEY_MODULE_PREFIX)
    ):
        raise EventDecodeError(f"{path!r} is not a connector key NamedTuple.")
    return cls


@functools.lru_cache(maxsize=64)
def _check_connector_kind(kind: str) -> None:
    # Bare names are short aliases ("redis", "file", ...) that the store config
    # maps to built-in connectors without importing anything named by the sender.
    if _BARE.fullmatch(kind):
        return
    cls = _import_attr(kind, _KEY_MODULE_PREFIX)
    if not (
        isinstance(cls, type)
        and cls.__module__.startswith(_KEY_MODULE_PREFIX)
        and hasattr(cls, "from_config")
    ):
        raise EventDecodeError(f"{kind!r} is not a connector class.")


@functools.lru_cache(maxsize=64)
def _callable_from_path(path: str) -> Any:
    func = _import_attr(path, _CALLABLE_MODULE_PREFIX)
    if not callable(func):
        raise EventDecodeError(f"{path!r} is not callable.")
    return func


def _callable_path(func: Any) -> str | None:
    if func is None:
        return None
    return f"{func.__module__}.{func.__qualname__}"


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
    }


_CONFIG_FIELDS: Final = 9


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
    )


def _config_from_wire(data: Any) -> StoreConfig:
    fields = _expect(data, tuple, "store config")
    if len(fields) != _CONFIG_FIELDS:
        raise EventDecodeError(f"Corrupt event: store config of {len(fields)} fields.")
    name, kind, options, ser, deser, cache_size, metrics, populate, register = fields
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
        _check_connector_kind(kind)
        funcs = {}
        for field in ("serializer", "deserializer"):
            path = data[field]
            funcs[field] = (
                None if path is None else _callable_from_path(_expect(path, str, field))
            )
        return StoreConfig(
            name=_expect(data["name"], str, "store name"),
            connector=ConnectorConfig(kind=kind, options=options),
            serializer=funcs["serializer"],
            deserializer=funcs["deserializer"],
            cache_size=_expect(data["cache_size"], int, "cache_size"),
            metrics=_expect(data["metrics"], bool, "metrics"),
            populate_target=_expect(data["populate_target"], bool, "populate_target"),
            auto_register=_expect(data["auto_register"], bool, "auto_register"),
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
    """Inverse of :func:`event_to_dict`.

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

# Scalars and buffers that round-trip exactly; anything else (including
# containers, which could be huge) goes through proxystore.serialize.
_PLAIN_OBJECT_TYPES: Final = frozenset(
    {type(None), bool, int, float, str, bytes},
)


class _Encoder:
    __slots__ = ("configs", "out")

    def __init__(self) -> None:
        self.out: list[bytes] = []
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
            if type(obj) in _PLAIN_OBJECT_TYPES:
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

    Inline objects of :class:`NewObjectEvent` that are not ``None``, ``bool``,
    ``int``, ``float``, ``str`` or ``bytes`` are serialized with
    :func:`proxystore.serialize.serialize`.

    Raises:
        TypeError: If metadata or a key is not plain data (``None``, ``bool``,
            ``int``, ``float``, ``str``, ``bytes``, ``list``, ``tuple``, ``dict``),
            or if ``event`` is not an event.
        proxystore.serialize.SerializationError: If an inline object cannot be
            serialized.
    """
    encoder = _Encoder()
    encoder.record(event)
    table: list[bytes] = [_HEADER]
    encode_value([wire for _, wire in encoder.configs], table)
    table.extend(encoder.out)
    return b"".join(table)


class _Decoder:
    __slots__ = ("configs", "reader")

    def __init__(self, reader: Reader, configs: list[StoreConfig]) -> None:
        self.reader = reader
        self.configs = configs

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
            else:
                raise EventDecodeError(f"Corrupt event: object kind {obj_kind}.")
            return NewObjectEvent(topic, obj, metadata)
        if kind == _REC_KEY:
            topic = r.text()
            key_type = r.text()
            raw_key = _expect(r.value(), tuple, "raw key")
            key_cls = _key_class(key_type)
            if len(raw_key) != len(key_cls._fields):
                raise EventDecodeError(
                    f"Corrupt event: {key_type} key with {len(raw_key)} values.",
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


def bytes_to_event(data: bytes | bytearray | memoryview) -> Event | EventBatch:
    """Decode a message made by :func:`event_to_bytes`; never executes code.

    Raises:
        EventDecodeError: If ``data`` is not a complete, valid version-1 event,
            or names a key type or connector outside ``proxystore.connectors``.
    """
    try:
        reader = Reader(data)
    except TypeError as e:
        raise EventDecodeError(f"Events must be bytes-like, not {type(data)}.") from e
    if bytes(reader.take(min(len(_MAGIC), reader.remaining))) != _MAGIC:
        raise EventDecodeError("Not a proxystore stream event (bad magic bytes).")
    version = reader.u8()
    if version != WIRE_VERSION:
        raise EventDecodeError(
            f"Unsupported stream event version {version} "
            f"(this decoder reads version {WIRE_VERSION}).",
        )
    wire_configs = _expect(reader.value(), list, "store config table")
    decoder = _Decoder(reader, [_config_from_wire(c) for c in wire_configs])
    event = decoder.record()
    if reader.remaining:
        raise EventDecodeError(
            f"Corrupt event: {reader.remaining} trailing bytes after the event.",
        )
    return event
