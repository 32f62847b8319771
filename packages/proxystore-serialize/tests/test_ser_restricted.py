"""RestrictedDeserializer: allow-listed globals only, nothing else imported."""

from __future__ import annotations

import collections
import datetime
import pickle
import struct
import sys

import pytest

from proxystore.serialize import (
    DisallowedTypeError,
    RestrictedDeserializer,
    SerializationError,
    deserialize,
    serialize,
)


def _pickle_payload(stream: bytes) -> bytes:
    # Version 1, tag PK, no out-of-band buffers, then the pickle stream.
    return b"\x01PK" + struct.pack("<I", 0) + stream


def test_plain_data_loads_like_deserialize() -> None:
    restricted = RestrictedDeserializer()
    for obj in (
        b"raw",
        "text",
        {"a": [1, 2.5, None, True, (1, 2), {3}, frozenset({4})]},
        collections.OrderedDict(a=1),
        datetime.datetime(2024, 1, 2, tzinfo=datetime.UTC),
        complex(1, 2),
    ):
        assert restricted(serialize(obj)) == obj == deserialize(serialize(obj))


def test_global_outside_the_list_is_refused_without_import() -> None:
    assert "antigravity" not in sys.modules
    stream = b"cantigravity\ngeohash\n."  # protocol 0 GLOBAL opcode
    with pytest.raises(DisallowedTypeError, match=r"antigravity\.geohash") as info:
        RestrictedDeserializer(["numpy"])(_pickle_payload(stream))
    assert info.value.path == "antigravity.geohash"
    assert "antigravity" not in sys.modules
    # eval is a builtin, and still refused.
    evil = pickle.dumps(eval, protocol=5)
    with pytest.raises(DisallowedTypeError, match=r"builtins\.eval"):
        RestrictedDeserializer(["os"])(_pickle_payload(evil))


def test_prefixes_match_on_dotted_boundaries() -> None:
    restricted = RestrictedDeserializer(["collections", "json.decoder.JSONDecoder"])
    assert restricted.allows("collections.Counter")
    assert restricted.allows("collections.abc.Mapping")
    assert restricted.allows("json.decoder.JSONDecoder")
    assert not restricted.allows("collectionsx.Counter")
    assert not restricted.allows("json.decoder.JSONObject")
    assert not restricted.allows("builtins.getattr")
    assert restricted(serialize(collections.Counter("ab"))) == collections.Counter("ab")
    with pytest.raises(DisallowedTypeError, match=r"collections\.Counter"):
        RestrictedDeserializer()(serialize(collections.Counter("ab")))


def test_numpy_out_of_band_buffers_when_allowed() -> None:
    numpy = pytest.importorskip("numpy")
    array = numpy.arange(100_000, dtype="float64")
    payload = serialize(array)
    assert (RestrictedDeserializer(["numpy"])(payload) == array).all()
    with pytest.raises(DisallowedTypeError, match="numpy"):
        RestrictedDeserializer()(payload)


def test_legacy_formats_and_bad_input() -> None:
    restricted = RestrictedDeserializer()
    assert restricted(b"BS\nabc") == b"abc"
    assert restricted(b"PK\n" + pickle.dumps([1, 2])) == [1, 2]
    with pytest.raises(DisallowedTypeError, match="numpy"):
        restricted(b"NP\n\x93NUMPY")
    with pytest.raises(SerializationError, match="unknown format tag"):
        restricted(b"\x01ZZ....")
    with pytest.raises(SerializationError, match="truncated"):
        restricted(b"\x01PK\x00")
    for bad in ("", "a..b", "1x", 3):
        with pytest.raises(ValueError, match="dotted names"):
            RestrictedDeserializer([bad])  # type: ignore[list-item]


def test_pickles_as_its_allow_list() -> None:
    restricted = RestrictedDeserializer(["b", "a", "a"])
    assert restricted.allow == ("a", "b")
    clone = pickle.loads(pickle.dumps(restricted))
    assert clone == restricted
    assert hash(clone) == hash(restricted)
    assert repr(clone) == "RestrictedDeserializer(allow=['a', 'b'])"
    assert RestrictedDeserializer("x").allow == ("x",)
