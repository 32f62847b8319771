"""Laws of proxystore.serialize: round trips, robustness, zero-copy semantics."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import numpy.typing as npt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxystore.serialize import SerializationError, deserialize, serialize
from tests.property.strategies import assert_same, numpy_arrays, picklable_values


@given(picklable_values())
def test_roundtrip(value: Any) -> None:
    assert_same(deserialize(serialize(value)), value)


@given(picklable_values())
def test_roundtrip_from_every_buffer_kind(value: Any) -> None:
    data = serialize(value)
    for payload in (bytearray(data), memoryview(data), memoryview(bytearray(data))):
        assert_same(deserialize(payload), value)


def _decode_or_reject(data: bytes | bytearray) -> None:
    with contextlib.suppress(SerializationError):  # the only exception allowed
        deserialize(data)


@given(st.binary(max_size=256))
def test_random_bytes_only_raise_serialization_error(data: bytes) -> None:
    _decode_or_reject(data)


_PREFIXES = [b"\x01BS", b"\x01US", b"\x01PK", b"\x01CP", b"\x01PD", b"\x01PL"]
# Reference-release headers are read too.
_PREFIXES += [b"BS\n", b"US\n", b"PK\n", b"CP\n", b"NP\n", b"PD\n"]


@given(st.sampled_from(_PREFIXES), st.binary())
def test_random_payloads_after_valid_tags(prefix: bytes, body: bytes) -> None:
    _decode_or_reject(prefix + body)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(picklable_values(), st.data())
def test_mutated_payloads_only_raise_serialization_error(
    value: Any, data: st.DataObject
) -> None:
    payload = bytearray(serialize(value))
    kind = data.draw(st.sampled_from(["truncate", "flip", "insert", "append"]))
    index = data.draw(st.integers(0, len(payload) - 1))
    if kind == "truncate":
        del payload[index:]
    elif kind == "flip":
        payload[index] ^= data.draw(st.integers(1, 255))
    elif kind == "insert":
        payload[index:index] = data.draw(st.binary(min_size=1, max_size=8))
    else:
        payload += data.draw(st.binary(min_size=1, max_size=8))
    _decode_or_reject(bytes(payload))


def _flat(array: npt.NDArray[Any]) -> bool:
    """Whether numpy pickles ``array`` with an out-of-band buffer."""
    contiguous = array.flags.c_contiguous or array.flags.f_contiguous
    # numpy pickles datetime/timedelta and object arrays in-band.
    return bool(contiguous and array.dtype.kind not in "OVmM" and array.size > 0)


@given(numpy_arrays())
def test_writable_input_shares_memory(array: npt.NDArray[Any]) -> None:
    data = bytearray(serialize(array))
    result = deserialize(data)
    assert_same(result, array)
    if _flat(array):
        assert np.shares_memory(result, np.frombuffer(data, dtype=np.uint8))
        assert result.flags.writeable == array.flags.writeable


@given(numpy_arrays())
def test_read_only_input_gives_independent_writable_arrays(
    array: npt.NDArray[Any],
) -> None:
    data = serialize(array)
    result = deserialize(memoryview(bytearray(data)).toreadonly())
    assert_same(result, array)
    assert not np.shares_memory(result, np.frombuffer(data, dtype=np.uint8))
    if array.flags.writeable:
        assert result.flags.writeable


@given(picklable_values())
def test_parts_roundtrip(value: Any) -> None:
    from proxystore.serialize import deserialize_parts, serialize_parts

    parts = serialize_parts(value)
    assert b"".join(parts) == serialize(value)
    assert_same(deserialize_parts(parts), value)
    # Parts kept as immutable bytes (as LocalConnector keeps them) decode the same.
    assert_same(deserialize_parts([bytes(p) for p in parts]), value)
