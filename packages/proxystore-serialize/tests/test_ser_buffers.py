"""Out-of-band buffers: copies, memory sharing, writability and alignment."""

from __future__ import annotations

import gc
import pickle
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from proxystore.serialize import _memory, deserialize, serialize

SMALL = 1000
LARGE = _memory.LARGE // 8 + 1000  # float64 elements: takes the large-buffer path


def _array(n: int, dtype: Any = np.float64) -> npt.NDArray[Any]:
    return np.arange(n).astype(dtype)


def _address(buffer: Any) -> int:
    return int(np.frombuffer(buffer, dtype=np.uint8).ctypes.data)


@pytest.mark.parametrize("n", [SMALL, LARGE])
def test_bytes_input_gives_writable_independent_arrays(n: int) -> None:
    array = _array(n)
    data = serialize(array)
    result = deserialize(data)
    np.testing.assert_array_equal(result, array)
    assert result.flags.writeable
    result[0] = -1
    np.testing.assert_array_equal(deserialize(data), array)


@pytest.mark.parametrize("n", [SMALL, LARGE])
def test_read_only_view_of_writable_memory_is_copied(n: int) -> None:
    data = bytearray(serialize(_array(n)))
    view = memoryview(data).toreadonly()
    result = deserialize(view)
    assert result.flags.writeable
    assert not np.shares_memory(result, np.frombuffer(data, dtype=np.uint8))


@pytest.mark.parametrize("n", [SMALL, LARGE])
def test_writable_input_is_shared_without_copy(n: int) -> None:
    array = _array(n)
    data = bytearray(serialize(array))
    result = deserialize(data)
    raw = np.frombuffer(data, dtype=np.uint8)
    assert np.shares_memory(result, raw)
    assert result.flags.writeable
    # Offsets inside the payload are 64-byte aligned.
    assert (result.ctypes.data - _address(data)) % 64 == 0
    np.testing.assert_array_equal(result, array)
    del result, raw  # release the exports before the buffer is freed


def test_many_buffers_of_mixed_dtypes_and_orders() -> None:
    objs = [
        _array(7, np.int8),
        _array(13, np.complex128).reshape(13, 1),
        np.asfortranarray(_array(12, np.float32).reshape(3, 4)),
        _array(0, np.float64),
        _array(20)[::3],  # non-contiguous: pickled in-band
        np.zeros((2, 0, 3), dtype=np.int16),
    ]
    data = bytearray(serialize(objs))
    for payload in (bytes(data), data):
        result = deserialize(payload)
        for got, want in zip(result, objs, strict=True):
            assert got.dtype == want.dtype
            assert got.shape == want.shape
            np.testing.assert_array_equal(got, want)
    base = _address(data)
    shared = deserialize(data)
    for got in shared[:3]:
        assert (got.ctypes.data - base) % 64 == 0


def test_read_only_arrays_stay_read_only() -> None:
    array = _array(SMALL)
    array.flags.writeable = False
    assert not deserialize(bytearray(serialize(array))).flags.writeable


def test_fallback_without_platform_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_memory, "_hooks", False)
    monkeypatch.setattr(_memory, "_MADV_HUGEPAGE", None)
    array = _array(LARGE)
    result = deserialize(serialize(array))
    np.testing.assert_array_equal(result, array)
    assert result.flags.writeable


def test_new_bytes_is_fully_filled_by_the_serializer() -> None:
    # The uninitialised allocation must never leak garbage into padding.
    array = _array(LARGE)
    data = serialize([b"x" * 3, array, array[:5].copy()])
    assert data == serialize([b"x" * 3, array, array[:5].copy()])
    head = _memory.new_bytes(16)
    if head is not None:
        result, view = head
        view[:] = b"0123456789abcdef"
        view.release()
        assert result == b"0123456789abcdef"


def test_large_copies_are_absolutely_aligned() -> None:
    result = deserialize(serialize(_array(LARGE)))
    if _memory._load_hooks():
        assert result.ctypes.data % 64 == 0


def test_new_buffer_is_writable_and_keeps_its_storage_alive() -> None:
    for size in (10, _memory.LARGE):
        buf = _memory.new_buffer(size)
        assert not buf.readonly
        assert buf.nbytes == size
        tail = buf[size - 4 :]
        del buf
        gc.collect()
        tail[:] = b"abcd"  # storage still owned through the slice
        assert tail.tobytes() == b"abcd"
        tail.release()


def test_pickle_buffers_travel_out_of_band() -> None:
    data = serialize(pickle.PickleBuffer(bytearray(b"hello world")))
    assert data[3:7] == b"\x01\x00\x00\x00"  # one out-of-band buffer
    result = deserialize(data)
    assert isinstance(result, memoryview)
    assert result.tobytes() == b"hello world"
    assert not result.readonly
    frozen = deserialize(serialize(pickle.PickleBuffer(b"fixed")))
    assert frozen.readonly
