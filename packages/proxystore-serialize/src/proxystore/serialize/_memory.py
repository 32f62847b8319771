"""Fresh large buffers that are cheap to fill.

Filling newly allocated memory is dominated by page faults, not by ``memcpy``: on a
Linux host with transparent huge pages in ``madvise`` mode, a 100 MB ``bytes`` or
``bytearray`` takes ~25,000 4 KiB faults while a region advised with
``MADV_HUGEPAGE`` takes ~50 (numpy advises its own allocations the same way, which is
why ``numpy.copy`` is several times faster than ``bytes(array)``). These helpers give
the serializer the same treatment:

* `new_bytes` returns an uninitialised ``bytes`` object plus a writable view of
  its storage, advised for huge pages, to be filled exactly once before the object is
  published (the same thing CPython does internally when it builds a ``bytes``);
* `new_buffer` returns writable memory of the same kind, for the
  deserializer's one copy of read-only input.

Both fall back to ordinary allocations wherever the platform trick is unavailable.
"""

from __future__ import annotations

import mmap
import sys
from typing import Any, Final

__all__ = ["LARGE", "new_buffer", "new_bytes"]

#: Below this size ordinary allocations are served from already-faulted heap memory
#: and the tricks here would only add overhead.
LARGE: Final = 1 << 20
_HUGE_PAGE: Final = 2 << 20
_MADV_HUGEPAGE: int | None = getattr(mmap, "MADV_HUGEPAGE", None)

# Lazily initialised ctypes hooks (importing ctypes costs milliseconds, so only
# payloads that benefit pay for it). ``False`` means "unavailable, use fallbacks".
_hooks: Any = None


def _load_hooks() -> Any:
    global _hooks
    if _hooks is not None:
        return _hooks
    _hooks = False
    if sys.implementation.name != "cpython" or _MADV_HUGEPAGE is None:
        return _hooks
    try:
        import ctypes

        new = ctypes.pythonapi.PyBytes_FromStringAndSize
        new.restype = ctypes.py_object
        new.argtypes = (ctypes.c_void_p, ctypes.c_ssize_t)
        libc = ctypes.CDLL(None, use_errno=True)
        madvise = libc.madvise
        madvise.restype = ctypes.c_int
        madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        # In CPython a bytes object's data follows its fixed-size header; the
        # trailing NUL is counted in __basicsize__. Verify that layout once.
        offset = bytes.__basicsize__ - 1
        probe = new(None, 8)
        (ctypes.c_char * 8).from_address(id(probe) + offset).value = b"layout!!"
        if probe != b"layout!!":
            return _hooks
        _hooks = (ctypes, new, madvise, offset)
    except Exception:  # exotic platforms: fall back to plain allocations
        _hooks = False
    return _hooks


def _advise_huge(madvise: Any, address: int, size: int) -> None:
    start = -address % _HUGE_PAGE + address
    end = (address + size) // _HUGE_PAGE * _HUGE_PAGE
    if end > start:
        # Best effort: a failure only means ordinary pages.
        madvise(start, end - start, _MADV_HUGEPAGE)


def new_bytes(size: int) -> tuple[bytes, memoryview] | None:
    """Return ``(result, view)``: an uninitialised ``bytes`` and its writable storage.

    The caller must fill every byte through ``view``, then release ``view`` before
    handing ``result`` to anyone (``bytes`` are immutable once published). Returns
    ``None`` when the platform does not allow this; callers then build the bytes
    normally.
    """
    fresh = _allocate(size)
    return None if fresh is None else fresh[:2]


def _allocate(size: int) -> tuple[bytes, memoryview, int] | None:
    hooks = _load_hooks()
    if not hooks:
        return None
    ctypes, new, madvise, offset = hooks
    result: bytes = new(None, size)
    address = id(result) + offset
    _advise_huge(madvise, address, size)
    storage = (ctypes.c_char * size).from_address(address)
    # The ctypes array does not own its memory: pin the bytes object to it, so any
    # view derived from it keeps the memory alive.
    storage.owner = result
    return result, memoryview(storage).cast("B"), address


def new_buffer(size: int, align: int = 64) -> memoryview:
    """Return a writable buffer of ``size`` bytes with unspecified contents.

    The caller fills it completely. Large sizes use the huge-page-advised storage
    of `new_bytes` (never published as ``bytes``), starting at an address
    that is a multiple of ``align``; the returned view, and every slice of it,
    keeps that private storage alive.
    """
    fresh = _allocate(size + align) if size >= LARGE else None
    if fresh is None:
        return memoryview(bytearray(size))
    _, view, address = fresh
    start = -address % align
    return view[start : start + size]
