"""Wire encoding of stream events: the byte codec and its per-item caches.

Wire format (version 1), produced by `event_to_bytes`::

    b"\\x89PSE" | u8 version | u32 n | store-config table (n bytes) | event record

The store-config table lists each distinct store configuration once, so a batch
of key events does not repeat it; key events refer to it by index. Decoders
cache decoded tables by their bytes: a stream from one producer decodes its
store configurations once. Records and values use the small tagged encoding of
`proxystore.stream._wire`.

Two fast paths skip record parsing for the messages a stream sends over and
over, each proved equal to the generic decoder by property laws: a batch of one
inline ``bytes`` object without metadata (`single_bytes_message`,
`single_bytes_object`, a cache of seen prefixes), and a batch of one key event
without metadata (decoded from the shape of the last one seen).

Decoding never executes code: it does not use pickle and imports nothing. Key
types and store (de)serializers are only checked for their form here; what a
consumer may import or build is decided in `proxystore.stream.trust`. Any
malformed input raises `EventDecodeError`.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence
from typing import Any, Final, NamedTuple, TypeAlias

from proxystore.serialize import serialize
from proxystore.store.config import StoreConfig
from proxystore.stream._wire import (
    NotPlainDataError,
    Reader,
    encode_blob,
    encode_str,
    encode_value,
)
from proxystore.stream.events import (
    EndOfStreamEvent,
    Event,
    EventBatch,
    NewObjectEvent,
    NewObjectKeyEvent,
    SerializedObject,
    _callable_path,
    _config_from_plain,
    _expect,
)
from proxystore.stream.exceptions import EventDecodeError
from proxystore.stream.trust import _DOTTED

__all__ = [
    "PART_MIN_SIZE",
    "WIRE_VERSION",
    "bytes_to_event",
    "event_to_bytes",
    "event_to_parts",
    "parts_to_event",
    "single_bytes_message",
    "single_bytes_object",
]

#: Version byte written after the magic; decoders refuse other versions.
WIRE_VERSION: Final = 1
_MAGIC: Final = b"\x89PSE"
_HEADER: Final = _MAGIC + bytes((WIRE_VERSION,))
_U32 = struct.Struct(">I")


# ------------------------------------------------------- store configs on the wire
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
