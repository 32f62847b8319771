"""Stream events, their plain-data (dict) forms, and their wire encoding.

A producer publishes `EventBatch` messages; each batch holds, in order,
`NewObjectEvent` (object sent inline), `NewObjectKeyEvent` (object
stored in a [`Store`][proxystore.store.Store], the event carries its key) and
[`EndOfStreamEvent`][proxystore.stream.events.EndOfStreamEvent] values for one topic.

The byte codec (`event_to_bytes`, `bytes_to_event`, multipart forms and the
per-item fast paths with their caches) lives in `proxystore.stream._codec` and
is re-exported here; see that module for the wire format. Decoding never
executes code: it does not use pickle and imports nothing.

What a consumer may do on the word of an event (which modules an event may
name, how store configs from events are sanitised, which deserializer every
object goes through) is decided in `proxystore.stream.trust`. Inline objects
that are not plain data arrive as `SerializedObject` and are deserialized only
when a consumer hands the object to the user, by its trust policy's
deserializer (by default `proxystore.serialize.deserialize`).
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, Final, NamedTuple, TypeAlias

from proxystore.serialize import RestrictedDeserializer, deserialize
from proxystore.store.config import ConnectorConfig, StoreConfig
from proxystore.stream.exceptions import EventDecodeError
from proxystore.stream.trust import (
    _check_callable_path,
    _ImportOnCall,
    _key_class,
    check_store_config,
    trust_modules,
)

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
        module = None if connector is None else type(connector).__module__
        key_cls = _key_class(self.key_type, module)
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
                _check_callable_path(_expect(path, str, field), field)
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


# The byte codec imports the types above, so it is imported last (the package's
# __init__ imports this module first, whichever module a user imports).
from proxystore.stream._codec import (  # noqa: E402
    PART_MIN_SIZE,
    WIRE_VERSION,
    bytes_to_event,
    event_to_bytes,
    event_to_parts,
    parts_to_event,
    single_bytes_message,
    single_bytes_object,
)

# Functions of the codec report this module in reprs and tracebacks (their
# public home).
for _name in __all__:
    _public = globals()[_name]
    if getattr(_public, "__module__", None) == "proxystore.stream._codec":
        _public.__module__ = __name__
del _name, _public
