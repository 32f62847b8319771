"""Events: dict and bytes forms, allow-lists, and typed decode errors."""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

from proxystore.connectors.local import LocalConnector, LocalKey
from proxystore.store.config import ConnectorConfig, StoreConfig
from proxystore.stream.events import (
    WIRE_VERSION,
    EndOfStreamEvent,
    EventBatch,
    NewObjectEvent,
    NewObjectKeyEvent,
    SerializedObject,
    bytes_to_event,
    check_store_config,
    dict_to_event,
    event_to_bytes,
    event_to_dict,
    event_to_parts,
    parts_to_event,
    trust_modules,
)
from proxystore.stream.exceptions import EventDecodeError

CONFIG = StoreConfig("events-store", ConnectorConfig("local", {}))


class NotAConnectorKey(NamedTuple):
    id: str


def _key_event(**overrides: Any) -> NewObjectKeyEvent:
    event = NewObjectKeyEvent.from_key(
        LocalKey("abc"),
        evict=True,
        metadata={"i": 1, "tags": ["a", "b"], "shape": (2, 3)},
        store_config=CONFIG,
        topic="t",
    )
    for name, value in overrides.items():
        setattr(event, name, value)
    return event


def _batch() -> EventBatch:
    return EventBatch(
        "t",
        [
            _key_event(),
            NewObjectEvent("t", b"raw", {"n": None}),
            NewObjectEvent("t", "text", {}),
            NewObjectEvent("t", 2**100, {"big": -(2**70)}),
            EndOfStreamEvent("t"),
        ],
    )


def test_key_event_rebuilds_named_tuple_key() -> None:
    event = _key_event()
    assert event.key_type == "proxystore.connectors.local.LocalKey"
    assert event.get_key() == LocalKey("abc")
    assert type(event.get_key()) is LocalKey


@pytest.mark.parametrize(
    "event",
    [_batch(), _key_event(), NewObjectEvent("t", 1.5, {}), EndOfStreamEvent("x")],
)
def test_bytes_round_trip(event: Any) -> None:
    data = event_to_bytes(event)
    assert data[:5] == b"\x89PSE" + bytes((WIRE_VERSION,))
    assert bytes_to_event(data) == event


def test_dict_round_trip_is_plain_data() -> None:
    data = event_to_dict(_batch())
    assert data["event_type"] == "EVENT_BATCH"
    key_event = data["events"][0]
    assert key_event["event_type"] == "NEW_OBJECT_KEY"
    assert key_event["store_config"]["connector"]["kind"] == "local"  # as given
    assert dict_to_event(data) == _batch()


def test_dict_to_event_unknown_type() -> None:
    with pytest.raises(ValueError, match="Unknown stream event type"):
        dict_to_event({"event_type": "NOPE", "topic": "t"})


def test_store_config_sent_once_per_batch() -> None:
    one = len(event_to_bytes(EventBatch("t", [_key_event()])))
    two = len(event_to_bytes(EventBatch("t", [_key_event(), _key_event()])))
    config_size = len(CONFIG.name) + len(CONFIG.connector.kind)
    # The second event costs its own fields only, not another copy of the config.
    assert two - one < one - config_size


def test_non_plain_inline_object_stays_serialized_until_loaded() -> None:
    obj = {"nested": [1, 2, {3}]}
    decoded = bytes_to_event(event_to_bytes(NewObjectEvent("t", obj, {})))
    assert isinstance(decoded, NewObjectEvent)
    assert isinstance(decoded.obj, SerializedObject)
    assert decoded.obj.load() == obj
    # Re-encoding a still-serialized object does not serialize it twice.
    again = bytes_to_event(event_to_bytes(decoded))
    assert isinstance(again, NewObjectEvent)
    assert again.obj == decoded.obj


def test_metadata_must_be_plain_data() -> None:
    with pytest.raises(TypeError, match="plain data"):
        event_to_bytes(NewObjectEvent("t", b"", {"x": object()}))
    with pytest.raises(TypeError, match="must be a dict"):
        event_to_bytes(NewObjectEvent("t", b"", [("a", 1)]))  # type: ignore[arg-type]


def test_nested_batch_rejected() -> None:
    inner = EventBatch("t", [])
    with pytest.raises(TypeError, match="cannot contain"):
        event_to_bytes(EventBatch("t", [inner]))  # type: ignore[list-item]


@pytest.mark.parametrize(
    "key_type",
    [
        "os.system",
        "builtins.tuple",
        f"{__name__}.NotAConnectorKey",
        "proxystore.connectors.local.LocalKey; import os",
    ],
)
def test_untrusted_key_type_refused(key_type: str) -> None:
    event = _key_event(key_type=key_type)
    with pytest.raises(EventDecodeError):
        event.get_key()
    # A store's connector vouches only for key classes of its own module.
    with pytest.raises(EventDecodeError):
        event.get_key(connector=LocalConnector())
    try:
        decoded = bytes_to_event(event_to_bytes(event))
    except EventDecodeError:
        return  # not even a dotted path: refused by the decoder
    assert isinstance(decoded, NewObjectKeyEvent)
    with pytest.raises(EventDecodeError):
        decoded.get_key()


@pytest.mark.parametrize(
    "key_type",
    [
        "proxystore.connectors.local.LocalConnector",
        "proxystore.connectors.local.uuid",
        "proxystore.connectors.local.NamedTuple",
        "proxystore.connectors.nope.Key",
    ],
)
def test_trusted_path_but_not_a_key_refused_by_get_key(key_type: str) -> None:
    decoded = bytes_to_event(event_to_bytes(_key_event(key_type=key_type)))
    assert isinstance(decoded, NewObjectKeyEvent)
    with pytest.raises(EventDecodeError, match=r"key|import"):
        decoded.get_key()


def test_key_arity_checked() -> None:
    event = _key_event(raw_key=["a", "b"])
    with pytest.raises(EventDecodeError, match="fields"):
        event.get_key()


@pytest.mark.parametrize(
    "kind",
    [
        "os.system",
        "subprocess.Popen",
        "proxystore.connectors.local.threading",
        "proxystore.connectors.local.LocalKey",
    ],
)
def test_untrusted_connector_refused_before_store_creation(kind: str) -> None:
    config = StoreConfig("evil", ConnectorConfig(kind, {}))
    decoded = bytes_to_event(event_to_bytes(_key_event(store_config=config)))
    assert isinstance(decoded, NewObjectKeyEvent)
    # Decoding imported nothing; building the store is what gets refused.
    with pytest.raises(EventDecodeError, match=r"trusted|connector"):
        check_store_config(decoded.store_config)


def test_trusted_connector_accepted() -> None:
    check_store_config(CONFIG)
    check_store_config(
        StoreConfig("x", ConnectorConfig("proxystore.connectors.file.FileConnector"))
    )


def _custom_serializer(obj: Any) -> bytes:
    return bytes(obj)


def test_custom_serializer_outside_proxystore_refused() -> None:
    config = StoreConfig(
        "custom", ConnectorConfig("local", {}), serializer=_custom_serializer
    )
    with pytest.raises(EventDecodeError, match="trusted"):
        bytes_to_event(event_to_bytes(_key_event(store_config=config)))


def test_custom_serializer_inside_proxystore_allowed() -> None:
    from proxystore.serialize import deserialize, serialize

    config = StoreConfig(
        "custom",
        ConnectorConfig("local", {}),
        serializer=serialize,
        deserializer=deserialize,
    )
    decoded = bytes_to_event(event_to_bytes(_key_event(store_config=config)))
    assert isinstance(decoded, NewObjectKeyEvent)
    check_store_config(decoded.store_config)
    ser = decoded.store_config.serializer
    deser = decoded.store_config.deserializer
    assert ser is not None
    assert deser is not None
    assert deser(ser([1, 2])) == [1, 2]
    # Re-encoding keeps the path (the callable is not imported to do so).
    again = bytes_to_event(event_to_bytes(decoded))
    assert isinstance(again, NewObjectKeyEvent)
    assert again.store_config == decoded.store_config


def test_trust_modules_validates_prefix() -> None:
    with pytest.raises(ValueError, match="module prefix"):
        trust_modules("no-trailing-dot")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "magic"),
        (b"hello world", "magic"),
        (b"\x89PSE", "Truncated"),
        (b"\x89PSE\x02", "version 2"),
        (event_to_bytes(EndOfStreamEvent("t")) + b"\x00", "trailing"),
        (event_to_bytes(EndOfStreamEvent("t"))[:-1], "Truncated"),
    ],
)
def test_decode_errors_are_typed(data: bytes, match: str) -> None:
    with pytest.raises(EventDecodeError, match=match):
        bytes_to_event(data)


def test_decode_error_is_value_error() -> None:
    assert issubclass(EventDecodeError, ValueError)
    with pytest.raises(EventDecodeError, match="bytes-like"):
        bytes_to_event("not bytes")  # type: ignore[arg-type]


def test_huge_count_rejected_without_allocating() -> None:
    # A batch announcing 2**32-1 events in a tiny message.
    good = event_to_bytes(EventBatch("t", []))
    bad = good[:-9] + b"\x03" + (2**32 - 1).to_bytes(8, "big", signed=True)
    with pytest.raises(EventDecodeError, match="batch of"):
        bytes_to_event(bad)


def test_deep_nesting_rejected() -> None:
    deep: Any = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(ValueError, match="nested deeper"):
        event_to_bytes(NewObjectEvent("t", b"", {"deep": deep}))
    # A hand-made message nesting 100 lists is refused by the decoder as well.
    head = event_to_bytes(NewObjectEvent("t", b"", {}))
    prefix = head[: head.index(b"\x0a\x00\x00\x00\x00")]
    body = b"\x0a\x00\x00\x00\x01\x06\x00\x00\x00\x01k" + b"\x08\x00\x00\x00\x01" * 100
    with pytest.raises(EventDecodeError):
        bytes_to_event(prefix + body + b"\x00" * 8)


def test_parts_keep_large_bytes_out_of_the_head() -> None:
    big = bytes(range(256)) * 400
    batch = EventBatch(
        "t",
        [
            NewObjectEvent("t", big, {"i": 0}),
            NewObjectEvent("t", b"small", {}),
            _key_event(),
        ],
    )
    parts = event_to_parts(batch, part_min_size=1000)
    assert len(parts) == 2
    assert parts[1] is big  # not copied
    assert len(parts[0]) < 1000
    decoded = parts_to_event(parts)
    assert decoded == batch
    assert isinstance(decoded, EventBatch)
    first = decoded.events[0]
    assert isinstance(first, NewObjectEvent)
    assert first.obj is big  # bytes parts are used as they are
    assert parts_to_event([bytearray(parts[0]), memoryview(big)]) == batch
    # Without large objects there is a single part, decodable by bytes_to_event.
    (only,) = event_to_parts(EndOfStreamEvent("t"))
    assert bytes_to_event(only) == EndOfStreamEvent("t")


@pytest.mark.parametrize("mutate", ["drop", "extra", "none"])
def test_parts_must_match_references(mutate: str) -> None:
    head, big = event_to_parts(NewObjectEvent("t", bytes(100), {}), part_min_size=10)
    parts = {"drop": [head], "extra": [head, big, big], "none": []}[mutate]
    with pytest.raises(EventDecodeError):
        parts_to_event(parts)
    if mutate == "drop":
        with pytest.raises(EventDecodeError, match="part"):
            bytes_to_event(head)


def test_every_truncation_of_every_value_type_is_a_decode_error() -> None:
    metadata = {
        "i": -5,
        "big": 2**70,
        "f": 1.5,
        "s": "ü",
        "b": b"xy",
        "l": [None, True, False],
        "t": (1, 2),
    }
    event = EventBatch("topic", [NewObjectEvent("topic", b"obj", metadata)])
    data = event_to_bytes(event)
    decoded = bytes_to_event(data)
    assert isinstance(decoded, EventBatch)
    assert decoded.events == event.events
    for end in range(len(data)):
        with pytest.raises(EventDecodeError):
            bytes_to_event(data[:end])
