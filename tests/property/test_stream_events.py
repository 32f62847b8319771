"""Laws of the stream event wire format.

* Any event made of plain data survives ``bytes_to_event(event_to_bytes(e))``.
* The decoder is total over bytes: random or mutated input either decodes to an
  event or raises :class:`EventDecodeError` — never another exception, never
  code execution.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from proxystore.connectors.local import LocalKey
from proxystore.store.config import ConnectorConfig, StoreConfig
from proxystore.stream.events import (
    EndOfStreamEvent,
    Event,
    EventBatch,
    NewObjectEvent,
    NewObjectKeyEvent,
    bytes_to_event,
    event_to_bytes,
    event_to_parts,
    parts_to_event,
)
from proxystore.stream.exceptions import EventDecodeError

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(max_size=64)
)
_plain: st.SearchStrategy[Any] = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=4)
    ),
    max_leaves=12,
)
_metadata = st.dictionaries(st.text(max_size=10), _plain, max_size=4)
_topics = st.text(min_size=1, max_size=12)
_configs = st.builds(
    StoreConfig,
    name=st.text(min_size=1, max_size=10),
    connector=st.builds(
        ConnectorConfig,
        kind=st.sampled_from(["local", "file", "proxystore.connectors.redis.Redis"]),
        options=st.dictionaries(st.text(max_size=6), _scalars, max_size=3),
    ),
    cache_size=st.integers(0, 100),
    metrics=st.booleans(),
)


def _events(topic: str) -> st.SearchStrategy[Event]:
    return st.one_of(
        st.builds(EndOfStreamEvent, st.just(topic)),
        st.builds(NewObjectEvent, st.just(topic), _scalars, _metadata),
        st.builds(
            lambda key, evict, metadata, config: NewObjectKeyEvent.from_key(
                LocalKey(key),
                evict=evict,
                metadata=metadata,
                store_config=config,
                topic=topic,
            ),
            st.text(),
            st.booleans(),
            _metadata,
            _configs,
        ),
    )


@st.composite
def batches(draw: st.DrawFn) -> EventBatch:
    topic = draw(_topics)
    return EventBatch(topic, draw(st.lists(_events(topic), max_size=5)))


@given(batches())
def test_round_trip(batch: EventBatch) -> None:
    assert bytes_to_event(event_to_bytes(batch)) == batch


@given(_events("t"))
def test_round_trip_single_event(event: Event) -> None:
    assert bytes_to_event(event_to_bytes(event)) == event


def _decode_is_total(data: bytes) -> None:
    try:
        event = bytes_to_event(data)
    except EventDecodeError:
        return
    assert isinstance(
        event, (EventBatch, EndOfStreamEvent, NewObjectEvent, NewObjectKeyEvent)
    )


@given(st.binary(max_size=512))
def test_random_bytes_raise_only_decode_error(data: bytes) -> None:
    _decode_is_total(data)


@given(st.binary(max_size=256))
def test_random_bodies_after_valid_header(body: bytes) -> None:
    _decode_is_total(b"\x89PSE\x01" + body)


@given(batches(), st.data())
def test_mutated_encodings_raise_only_decode_error(
    batch: EventBatch, data: st.DataObject
) -> None:
    encoded = bytearray(event_to_bytes(batch))
    kind = data.draw(st.sampled_from(["flip", "truncate", "insert", "splice"]))
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(encoded) - 1))
            encoded[i] = data.draw(st.integers(0, 255))
    elif kind == "truncate":
        del encoded[data.draw(st.integers(0, len(encoded) - 1)) :]
    elif kind == "insert":
        i = data.draw(st.integers(0, len(encoded)))
        encoded[i:i] = data.draw(st.binary(min_size=1, max_size=8))
    else:
        i = data.draw(st.integers(0, len(encoded)))
        j = data.draw(st.integers(i, len(encoded)))
        encoded[i:j] = data.draw(st.binary(max_size=16))
    _decode_is_total(bytes(encoded))


@given(batches(), st.binary(min_size=1, max_size=300), st.data())
def test_multipart_round_trip_and_totality(
    batch: EventBatch, blob: bytes, data: st.DataObject
) -> None:
    batch.events.insert(0, NewObjectEvent(batch.topic, blob, {}))
    parts = event_to_parts(batch, part_min_size=1)
    assert parts_to_event(parts) == batch
    # Dropping, duplicating or corrupting parts only ever raises EventDecodeError.
    mutated = list(parts)
    action = data.draw(st.sampled_from(["drop", "dup", "head"]))
    if action == "drop":
        del mutated[data.draw(st.integers(0, len(mutated) - 1))]
    elif action == "dup":
        mutated.append(mutated[-1])
    else:
        head = bytearray(mutated[0])
        head[data.draw(st.integers(0, len(head) - 1))] ^= 0xFF
        mutated[0] = bytes(head)
    try:
        event = parts_to_event(mutated)
    except EventDecodeError:
        return
    # A corrupted head may still decode (e.g. a flipped metadata byte), but then
    # to an event, and never when a referenced part went missing.
    assert action != "drop" or len(mutated) == len(parts)
    assert isinstance(
        event, (EventBatch, EndOfStreamEvent, NewObjectEvent, NewObjectKeyEvent)
    )


@given(
    batch_topic=st.text(max_size=20),
    topic=st.text(max_size=20),
    payload=st.binary(max_size=2048),
    cut=st.integers(0, 64),
    flip=st.integers(0, 255),
)
def test_single_object_fast_path_matches_generic_codec(
    batch_topic: str, topic: str, payload: bytes, cut: int, flip: int
) -> None:
    # One inline bytes object without metadata has a cached fast path on both
    # sides: it must produce and accept exactly what the generic codec does.
    from proxystore.stream import _codec as codec

    batch = EventBatch(batch_topic, [NewObjectEvent(topic, payload, {})])
    encoder = codec._Encoder()
    encoder.record(batch)
    generic = b"".join([codec._EMPTY_TABLE_HEADER, *encoder.out])
    fast = event_to_bytes(batch)
    assert fast == generic
    assert event_to_parts(batch) == [fast]
    for _ in range(2):  # the second decode takes the fast path
        assert bytes_to_event(fast) == batch
        assert bytes_to_event(bytearray(fast)) == batch
    # Damaged copies decode (or fail) exactly as without the fast path.
    damaged = bytearray(fast[: max(0, len(fast) - 1 - cut)])
    if damaged:
        damaged[len(damaged) // 2] ^= flip
    outcomes: list[Any] = []
    for cached in (True, False):
        saved = dict(codec._SEEN_PREFIXES)
        if not cached:
            codec._SEEN_PREFIXES.clear()
        try:
            outcomes.append(bytes_to_event(bytes(damaged)))
        except EventDecodeError:
            outcomes.append(None)
        finally:
            codec._SEEN_PREFIXES.clear()
            codec._SEEN_PREFIXES.update(saved)
    assert outcomes[0] == outcomes[1]
    # The consumer's per-item path (primed with the intact message, so its
    # last-match cache holds this head) gives an object only when the generic
    # decoder reads the message as exactly that one object.
    assert codec.single_bytes_message(batch_topic, topic, payload) == fast
    assert codec.single_bytes_object(fast) == payload
    for candidate in (bytes(damaged), fast + b"x", fast[:-1]):
        obj = codec.single_bytes_object(candidate)
        if obj is not None:
            decoded = bytes_to_event(candidate)
            assert isinstance(decoded, EventBatch)
            assert decoded.events == [NewObjectEvent(topic, obj, {})]


@given(
    batch_topic=st.text(max_size=12),
    topic=_topics,
    first=st.text(max_size=40),
    second=st.text(max_size=40),
    evict=st.booleans(),
    metadata=_metadata,
    config=_configs,
    cut=st.integers(0, 64),
    flip=st.integers(0, 255),
)
def test_key_event_fast_path_matches_generic_codec(
    batch_topic: str,
    topic: str,
    first: str,
    second: str,
    evict: bool,
    metadata: dict[str, Any],
    config: StoreConfig,
    cut: int,
    flip: int,
) -> None:
    # A batch of one key event is decoded from the shape of the last one seen
    # (only the raw key differs between a producer's messages): it must give
    # exactly what the generic decoder gives, for intact and damaged messages.
    from proxystore.stream import _codec as codec

    def batch(key: str) -> EventBatch:
        event = NewObjectKeyEvent.from_key(
            LocalKey(key),
            evict=evict,
            metadata=metadata,
            store_config=config,
            topic=topic,
        )
        return EventBatch(batch_topic, [event])

    def generic(data: bytes) -> Any:
        saved = codec._LAST_KEY
        codec._LAST_KEY = None
        try:
            return bytes_to_event(data)
        except EventDecodeError:
            return None
        finally:
            codec._LAST_KEY = saved

    one, two = event_to_bytes(batch(first)), event_to_bytes(batch(second))
    assert bytes_to_event(one) == batch(first)  # generic; remembers the shape
    assert bytes_to_event(two) == batch(second)  # from the shape when no metadata
    assert bytes_to_event(one) == batch(first)
    damaged = bytearray(two[: max(0, len(two) - 1 - cut)])
    if damaged:
        damaged[len(damaged) // 2] ^= flip
    for candidate in (bytes(damaged), two + b"x", two[:-1], b"\x00" + two):
        try:
            cached: Any = bytes_to_event(candidate)
        except EventDecodeError:
            cached = None
        assert cached == generic(candidate)


# ------------------------------------------------------------ event store configs
_FILE = "proxystore.connectors.file.FileConnector"
_option_names = st.sampled_from(
    [
        "password_env",
        "token_credential",
        "curve_secret_key_env",
        "clear",
        "hostname",
        "port",
        "nested",
    ]
) | st.text(max_size=8)
_option_values: st.SearchStrategy[Any] = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(_option_names, inner, max_size=3)
    ),
    max_leaves=10,
)


def _names_a_reference(value: Any) -> bool:
    if isinstance(value, dict):
        return any(
            (str(k).endswith(("_env", "_credential")) and v not in (None, ""))
            or _names_a_reference(v)
            for k, v in value.items()
        )
    if isinstance(value, list | tuple):
        return any(_names_a_reference(v) for v in value)
    return False


@given(options=st.dictionaries(_option_names, _option_values, max_size=5))
def test_event_store_configs_never_resolve_references_or_clear(
    options: dict[str, Any],
) -> None:
    # Whatever options an event's store config carries, the store a consumer
    # makes from it names no credential reference and never clears; nothing
    # else is changed.
    from proxystore.stream.exceptions import UntrustedEventError
    from proxystore.stream.trust import TrustPolicy, _ConsumerTrust

    options = {**options, "store_dir": "/nonexistent/ps-law"}
    config = StoreConfig(name="law", connector=ConnectorConfig(_FILE, options))
    for policy in (None, TrustPolicy()):
        try:
            safe = _ConsumerTrust(policy).sanitised(config)
        except UntrustedEventError:
            continue
        assert not _names_a_reference(options)
        assert safe.connector.options == {**options, "clear": False}
        assert safe.connector.kind == _FILE
