"""Round trips, format tags and the documented failure modes of serialize."""

from __future__ import annotations

import dataclasses
import pickle
import subprocess
import sys
import threading
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from proxystore.serialize import (
    FORMAT_VERSION,
    SerializationError,
    deserialize,
    is_bytes_like,
    serialize,
)
from proxystore.serialize.protocols import Deserializer, Serializer

# Structural conformance, checked by mypy.
_SERIALIZER: Serializer = serialize
_DESERIALIZER: Deserializer = deserialize


class Bytes2(bytes):
    pass


def _local_function() -> Callable[[int], int]:
    def inner(x: int) -> int:
        return x + 1

    return inner


@pytest.mark.parametrize(
    ("obj", "tag"),
    [
        (b"abc", b"BS"),
        (b"", b"BS"),
        ("héllo", b"US"),
        ("", b"US"),
        ("\ud800", b"PK"),  # lone surrogate: utf-8 refuses it, pickle takes over
        ({"a": [1, 2.5, None]}, b"PK"),
        (Bytes2(b"x"), b"PK"),
        (bytearray(b"xyz"), b"PK"),
        (None, b"PK"),
    ],
)
def test_roundtrip_and_tag(obj: object, tag: bytes) -> None:
    data = serialize(obj)
    assert isinstance(data, bytes)
    assert data[0] == FORMAT_VERSION
    assert data[1:3] == tag
    result = deserialize(data)
    assert result == obj
    assert type(result) is type(obj)


def test_cloudpickle_fallback_for_local_functions() -> None:
    fn = _local_function()
    data = serialize(fn)
    assert data[1:3] == b"CP"
    assert deserialize(data)(1) == 2
    assert deserialize(serialize(lambda x: x * 3))(2) == 6


def test_unsupported_without_cloudpickle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cloudpickle", None)
    with pytest.raises(SerializationError, match="is not supported") as info:
        serialize(lambda: None)
    assert info.value.__cause__ is not None


def test_unpicklable_object_is_not_supported() -> None:
    with pytest.raises(SerializationError, match=r"_thread\.lock.* is not supported"):
        serialize(threading.Lock())


def test_serialization_error_is_a_value_error() -> None:
    assert issubclass(SerializationError, ValueError)


def test_is_bytes_like() -> None:
    assert is_bytes_like(b"x")
    assert is_bytes_like(bytearray(b"x"))
    assert is_bytes_like(memoryview(b"x"))
    assert not is_bytes_like("x")
    assert not is_bytes_like(1)


def test_accepts_other_buffer_shapes() -> None:
    data = serialize({"k": 1})
    as_words = memoryview(bytearray(data + bytes(-len(data) % 4))).cast("I")
    assert deserialize(as_words) == {"k": 1}
    as_2d = memoryview(bytearray(data)).cast("B", (1, len(data)))
    assert deserialize(as_2d) == {"k": 1}
    strided = memoryview(bytearray(data * 2))[::2]
    with pytest.raises(SerializationError, match="contiguous"):
        deserialize(strided)


# ------------------------------------------------------------------ corrupt input


def _pickle_payload(buffers: int) -> bytes:
    arrays = [np.arange(10, dtype=np.int64) + i for i in range(buffers)]
    return serialize(arrays)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", r"truncated payload: expected at least 3 bytes, got 0"),
        (b"\x01B", r"truncated payload: expected at least 3 bytes, got 2"),
        (b"\x02BSxx", r"unsupported format version 2"),
        (b"XS\nabc", r"unsupported format version 88"),
        (b"\x01ZZabc", r"unknown format tag b'ZZ'"),
        (b"\x01PK\x00", r"truncated payload: expected at least 7 bytes, got 4"),
        (b"\x01PK\xff\xff\xff\xff", r"header declares 4294967295 buffers"),
        (b"\x01PK\x00\x00\x00\x00garbage", r"using the pickle format"),
        (b"\x01US\xff\xfe", r"using the str format: UnicodeDecodeError"),
        (b"\x01CP\x00\x00\x00\x00", r"using the cloudpickle format: EOFError"),
    ],
)
def test_corrupt_input_raises_serialization_error(data: bytes, message: str) -> None:
    with pytest.raises(SerializationError, match=message):
        deserialize(data)


def test_truncated_buffers_are_reported() -> None:
    data = _pickle_payload(2)
    with pytest.raises(SerializationError, match=r"truncated payload: expected \d+"):
        deserialize(data[:-1])
    with pytest.raises(SerializationError, match=r"corrupt payload: header accounts"):
        deserialize(data + b"\x00")


def test_missing_buffers_are_wrapped() -> None:
    buffers: list[pickle.PickleBuffer] = []
    stream = pickle.dumps([np.arange(3)], protocol=5, buffer_callback=buffers.append)
    assert buffers
    # A header that declares no buffers for a stream that needs one.
    with pytest.raises(SerializationError, match="out-of-band") as info:
        deserialize(b"\x01PK\x00\x00\x00\x00" + stream)
    assert isinstance(info.value.__cause__, pickle.UnpicklingError)


@pytest.mark.parametrize("bad", [1, "text", None, [1, 2]])
def test_non_bytes_like_input(bad: Any) -> None:
    with pytest.raises(SerializationError, match="expected a bytes-like object"):
        deserialize(bad)
    with pytest.raises(ValueError, match="bytes-like"):
        deserialize(bad)


# ------------------------------------------------------------------ lazy imports


def test_import_is_cheap() -> None:
    code = (
        "import sys, proxystore.serialize as s; "
        "s.deserialize(s.serialize({'a': 1})); s.deserialize(s.serialize(b'x')); "
        "print(sorted(m for m in ('numpy', 'pandas', 'polars', 'cloudpickle', "
        "'ctypes') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    )
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------ dataframes


def _fake_library(name: str, monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType(name)

    @dataclasses.dataclass
    class DataFrame:
        rows: list[int]

        def write_ipc(self, fp: Any) -> None:
            fp.write(bytes(self.rows))

    DataFrame.__module__ = name
    DataFrame.__qualname__ = "DataFrame"

    def read_ipc(fp: Any) -> DataFrame:
        return DataFrame(list(fp.read()))

    module.DataFrame = DataFrame  # type: ignore[attr-defined]
    module.read_ipc = read_ipc  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, name, module)
    return module


def test_polars_dataframes_use_ipc(monkeypatch: pytest.MonkeyPatch) -> None:
    polars = _fake_library("polars", monkeypatch)
    frame = polars.DataFrame([1, 2, 3])
    data = serialize(frame)
    assert data == b"\x01PL\x01\x02\x03"
    assert deserialize(data) == frame


def test_pandas_dataframes_use_the_pickle_layout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pandas = _fake_library("pandas", monkeypatch)
    frame = pandas.DataFrame([4, 5])
    data = serialize(frame)
    assert data[1:3] == b"PD"
    assert deserialize(data) == frame


def test_dataframe_check_needs_the_library_type(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fake_library("polars", monkeypatch)

    class NotAFrame:
        pass

    NotAFrame.__module__ = "polars.other"
    # Not the library's DataFrame (and not importable by name): cloudpickle by value.
    assert serialize(NotAFrame())[1:3] == b"CP"


def test_pickle_protocol_is_five() -> None:
    data = serialize({"x": 1})
    assert data[7:9] == pickle.PROTO + bytes([5])


def _float_array() -> npt.NDArray[np.float64]:
    return np.linspace(0, 1, 10)


def test_numpy_scalars_and_arrays_roundtrip() -> None:
    value = np.float32(3.5)
    assert deserialize(serialize(value)) == value
    array = _float_array()
    np.testing.assert_array_equal(deserialize(serialize(array)), array)


# ------------------------------------------------------------------ reference payloads

# Bytes produced by the reference release's serialize() (proxystore 1.1.0).
REFERENCE_PK = (
    b"PK\n\x80\x05\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94]\x94"
    b"(K\x01K\x02es."
)
REFERENCE_NP = (
    b"NP\n\x93NUMPY\x01\x00v\x00{'descr': '<i2', 'fortran_order': False, "
    b"'shape': (3,), }" + b" " * 60 + b"\n\x00\x00\x01\x00\x02\x00"
)


def test_reads_reference_payloads() -> None:
    assert deserialize(b"BS\nraw") == b"raw"
    assert deserialize(memoryview(b"US\ntext")) == "text"
    assert deserialize(REFERENCE_PK) == {"a": [1, 2]}
    assert deserialize(b"CP\n" + pickle.dumps([1])) == [1]
    array = deserialize(REFERENCE_NP)
    assert array.dtype == np.int16
    np.testing.assert_array_equal(array, [0, 1, 2])


def test_corrupt_reference_payload() -> None:
    with pytest.raises(SerializationError, match="reference pickle format"):
        deserialize(b"PK\n\x80\x05garbage")
    with pytest.raises(SerializationError, match="unsupported format version 90"):
        deserialize(b"ZZ\nabc")


def test_plain_arrays_use_the_array_format() -> None:
    import numpy as np

    from proxystore.serialize import serialize_parts

    for array in (
        np.arange(12, dtype=">i4").reshape(3, 4),
        np.asfortranarray(np.ones((2, 3), dtype=np.complex64)),
        np.array(["ab", "c"]),
        np.zeros((0, 5)),
        np.array(3.5),
    ):
        data = serialize(array)
        assert data[1:3] == b"NA"
        assert b"".join(serialize_parts(array)) == data
        back = deserialize(bytearray(data))
        assert back.dtype == array.dtype
        assert back.shape == array.shape
        assert np.array_equal(back, array)
        assert back.flags.f_contiguous == array.flags.f_contiguous
    # Object, structured and strided arrays keep going through pickle.
    for other in (
        np.array([object()]),
        np.zeros(2, dtype=[("a", "<i4")]),
        np.arange(10)[::2],
    ):
        assert serialize(other)[1:3] == b"PK"


def test_corrupt_array_payloads_raise() -> None:
    import numpy as np

    data = serialize(np.arange(10, dtype=np.int64))
    for bad in (data[:40], data[:-8], data + b"\0" * 8):
        with pytest.raises(SerializationError):
            deserialize(bad)


def test_deserialize_parts_shares_immutable_bytes() -> None:
    from proxystore.serialize import deserialize_parts, serialize_parts

    data = bytes(range(256)) * 10
    parts = serialize_parts(data)
    assert deserialize_parts(parts) is data  # immutable: shared, not copied
    # Anything else is decoded from the joined parts.
    assert deserialize_parts([b"".join(parts)]) == data
    assert deserialize_parts(serialize_parts([1, "a"])) == [1, "a"]
    with pytest.raises(SerializationError, match="unknown format tag"):
        deserialize_parts([b"\x01Z", b"Zjunk"])
