"""Laws of payload signing and restricted deserialization."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxystore.serialize import (
    ALGORITHMS,
    PayloadAuthenticationError,
    RestrictedDeserializer,
    SerializationError,
    deserialize,
    serialize,
    sign,
    verify,
)
from tests.property.strategies import assert_same, picklable_values

keys = st.binary(min_size=1, max_size=64)
# BLAKE3 is an optional extra; the dev environment installs it.
algorithms = st.sampled_from(sorted(ALGORITHMS))


@given(st.binary(max_size=4096), keys, algorithms)
def test_verify_inverts_sign(data: bytes, key: bytes, algorithm: str) -> None:
    assert bytes(verify(sign(data, key, algorithm=algorithm), key)) == data


@given(st.binary(max_size=512), keys, algorithms, st.data())
def test_any_single_bit_flip_is_rejected(
    data: bytes, key: bytes, algorithm: str, draw: st.DataObject
) -> None:
    signed = bytearray(sign(data, key, algorithm=algorithm))
    bit = draw.draw(st.integers(0, len(signed) * 8 - 1))
    signed[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(PayloadAuthenticationError):
        verify(signed, key)


@given(st.binary(max_size=512), keys, keys, algorithms)
def test_another_key_is_rejected(
    data: bytes, key: bytes, other: bytes, algorithm: str
) -> None:
    signed = sign(data, key, algorithm=algorithm)
    if other == key:
        assert bytes(verify(signed, other)) == data
    else:
        with pytest.raises(PayloadAuthenticationError):
            verify(signed, other)


@given(picklable_values())
def test_restricted_reads_plain_data_like_deserialize_or_refuses(value: Any) -> None:
    payload = serialize(value)
    try:
        restricted = RestrictedDeserializer()(payload)
    except SerializationError:
        return  # refused (a global outside the list): allowed, never anything else
    assert_same(restricted, deserialize(payload))
