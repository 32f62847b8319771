"""HMAC payload authentication."""

from __future__ import annotations

import tracemalloc
from typing import Any

import numpy as np
import pytest

from proxystore.serialize import (
    ALGORITHMS,
    SerializationError,
    deserialize,
    serialize,
    serialize_parts,
    serialize_signed,
    sign,
    sign_parts,
    signed_deserializer,
    signed_serializer,
    verify,
    verify_parts,
)
from proxystore.serialize._memory import LARGE
from proxystore.serialize.protocols import Deserializer, Serializer

KEY = b"shared secret"


@pytest.mark.parametrize("size", [10, LARGE + 10])
def test_sign_then_verify_returns_the_payload(size: int) -> None:
    payload = serialize(bytes(range(256)) * (size // 256 + 1))
    signed = sign(payload, KEY)
    assert len(signed) == len(payload) + 35
    assert verify(signed, KEY) == payload


def test_verify_does_not_copy_writable_input() -> None:
    signed = bytearray(sign(b"payload", KEY))
    view = verify(signed, KEY)
    assert not view.readonly
    view[0] = ord("P")
    assert signed.endswith(b"Payload")
    view.release()


@pytest.mark.parametrize("index", [0, 3, 20, 34, 35, -1])
def test_any_flipped_byte_is_rejected(index: int) -> None:
    signed = bytearray(sign(b"some payload", KEY))
    signed[index] ^= 0x01
    with pytest.raises(SerializationError, match=r"not signed|MAC mismatch"):
        verify(bytes(signed), KEY)


def test_wrong_key_and_unsigned_payloads() -> None:
    signed = sign(b"x", KEY)
    with pytest.raises(SerializationError, match="MAC mismatch"):
        verify(signed, b"other key")
    with pytest.raises(SerializationError, match="not signed"):
        verify(serialize(b"x"), KEY)
    with pytest.raises(SerializationError, match="not signed"):
        verify(signed[:30], KEY)


def test_bad_keys() -> None:
    with pytest.raises(ValueError, match="empty"):
        sign(b"x", b"")
    with pytest.raises(TypeError, match="must be bytes"):
        verify(b"x", "text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        signed_serializer(b"")


def test_signed_serializer_pair_roundtrip() -> None:
    ser: Serializer = signed_serializer(KEY)
    de: Deserializer = signed_deserializer(KEY)
    array = np.arange(100.0)
    np.testing.assert_array_equal(de(ser(array)), array)
    assert de(ser({"a": 1})) == {"a": 1}
    tampered = bytearray(ser({"a": 1}))
    tampered[-2] ^= 0xFF
    with pytest.raises(SerializationError, match="MAC mismatch"):
        de(bytes(tampered))
    # Without the signature layer the plain deserializer refuses the header.
    with pytest.raises(SerializationError, match="unknown format tag b'SG'"):
        deserialize(ser(1))


def test_blake3_signatures(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("blake3")
    from proxystore.serialize import PayloadAuthenticationError, _auth

    data = serialize(list(range(10)))
    signed = sign(data, b"key", algorithm="blake3")
    assert signed[1:3] == b"SB"
    assert signed != sign(data, b"key")  # a different MAC from HMAC-SHA256
    assert bytes(verify(signed, b"key")) == data
    with pytest.raises(SerializationError, match="MAC mismatch"):
        verify(signed, b"other key")
    big = bytes(20 << 20)  # hashed with all cores
    assert bytes(verify(sign(big, b"k", algorithm="blake3"), b"k")) == big
    with pytest.raises(ValueError, match="unknown signature algorithm"):
        sign(data, b"key", algorithm="md5")

    def missing() -> None:
        raise PayloadAuthenticationError("needs the 'blake3' package")

    monkeypatch.setattr(_auth, "_blake3", missing)
    with pytest.raises(SerializationError, match="blake3"):
        verify(signed, b"key")


_VALUES: list[Any] = [
    b"small",
    bytes(range(256)) * (LARGE // 256 + 1),
    "text",
    np.arange(LARGE // 8 + 5, dtype="float64"),
    {"a": np.arange(100), "b": [1, 2.5]},
]


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
@pytest.mark.parametrize("value", _VALUES, ids=lambda v: type(v).__name__)
def test_signing_parts_equals_signing_the_joined_payload(
    value: Any, algorithm: str
) -> None:
    expected = sign(serialize(value), KEY, algorithm=algorithm)
    assert serialize_signed(value, KEY, algorithm=algorithm) == expected
    parts = sign_parts(serialize_parts(value), KEY, algorithm=algorithm)
    assert b"".join(parts) == expected
    assert len(parts[0]) == 35  # the header only: the payload parts are untouched
    if algorithm == "hmac-sha256":
        assert signed_serializer(KEY)(value) == expected


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_signing_while_serializing_copies_the_payload_once(algorithm: str) -> None:
    obj = bytes(16 << 20)
    peaks = []
    tracemalloc.start()
    try:
        for sign_it in (
            lambda: serialize(obj),
            lambda: serialize_signed(obj, KEY, algorithm=algorithm),
            lambda: sign_parts(serialize_parts(obj), KEY, algorithm=algorithm),
        ):
            tracemalloc.reset_peak()
            sign_it()
            peaks.append(tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()
    unsigned, signed, parts = peaks
    assert unsigned >= len(obj)  # serialize's one copy is what tracemalloc sees
    assert signed < unsigned + (1 << 20)  # no second copy for the header
    assert parts < 1 << 20  # nothing copied at all


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_verify_parts_returns_the_payload_parts_themselves(algorithm: str) -> None:
    obj = bytes(range(256)) * 64
    parts = sign_parts(serialize_parts(obj), KEY, algorithm=algorithm)
    payload = verify_parts(parts, KEY)
    assert payload[-1] is obj  # checked in place, nothing copied
    assert deserialize(b"".join(payload)) == obj
    # Any other split of the signed payload is joined once and checked.
    joined = b"".join(parts)
    for split in ([joined], [joined[:10], joined[10:]], [joined[:40], joined[40:]]):
        assert bytes(b"".join(verify_parts(split, KEY))) == b"".join(payload)


def test_verify_parts_rejects_tampering_and_unsigned_parts() -> None:
    parts = sign_parts([b"\x01BS", b"payload"], KEY)
    for bad in (
        [parts[0], b"\x01BS", b"paylOad"],  # a payload part changed
        [bytes(parts[0][:-1]) + bytes([parts[0][-1] ^ 1]), *parts[1:]],  # MAC
        [b"\x01BS", b"payload"],  # never signed
        [],
    ):
        with pytest.raises(SerializationError, match=r"MAC mismatch|not signed"):
            verify_parts(bad, KEY)
    with pytest.raises(SerializationError, match="MAC mismatch"):
        verify_parts(parts, b"other key")
