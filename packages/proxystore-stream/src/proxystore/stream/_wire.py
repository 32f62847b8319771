"""A small, non-executable binary encoding for plain data.

Stream events travel through brokers that anyone on the network may write to,
so decoding must never run code (no pickle). This codec covers exactly the plain
data events carry: ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``,
``list``, ``tuple`` and ``dict``. Each value is a one-byte tag followed by a
fixed-size scalar or a length-prefixed body, big-endian.

Decoding is defensive: every length is checked against the bytes left before
anything is allocated, nesting depth is capped, and any malformed input raises
[`EventDecodeError`][proxystore.stream.exceptions.EventDecodeError].
"""

from __future__ import annotations

import struct
from typing import Any, Final

from proxystore.stream.exceptions import EventDecodeError

_NONE: Final = 0x00
_FALSE: Final = 0x01
_TRUE: Final = 0x02
_INT: Final = 0x03
_BIGINT: Final = 0x04
_FLOAT: Final = 0x05
_STR: Final = 0x06
_BYTES: Final = 0x07
_LIST: Final = 0x08
_TUPLE: Final = 0x09
_DICT: Final = 0x0A

#: Deeper nesting is refused so that hostile input cannot exhaust the stack.
MAX_DEPTH: Final = 64

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")
_F64 = struct.Struct(">d")
_TAG_U32 = struct.Struct(">BI")
_TAG_U64 = struct.Struct(">BQ")
_TAG_I64 = struct.Struct(">Bq")
_TAG_F64 = struct.Struct(">Bd")

_I64_MIN: Final = -(2**63)
_I64_MAX: Final = 2**63 - 1


class NotPlainDataError(TypeError):
    """Raised by the encoder for a value outside the supported plain types."""

    def __init__(self, value: object) -> None:
        super().__init__(
            f"Values of type {type(value).__qualname__} are not plain data "
            "(expected None, bool, int, float, str, bytes, list, tuple or dict).",
        )


def encode_value(value: Any, out: list[bytes], depth: int = 0) -> None:
    """Append the encoding of ``value`` to ``out``.

    Named tuples are encoded as plain tuples.

    Raises:
        NotPlainDataError: If ``value`` (or anything inside it) is not plain data.
        ValueError: If nesting is deeper than `MAX_DEPTH`.
    """
    if depth > MAX_DEPTH:
        raise ValueError(f"Plain data is nested deeper than {MAX_DEPTH} levels.")
    cls = type(value)
    # Exact type checks: subclasses (IntEnum, str subclasses, ...) would not
    # round-trip to the same type, so they are not plain data.
    if value is None:
        out.append(b"\x00")
    elif cls is bool:
        out.append(b"\x02" if value else b"\x01")
    elif cls is int:
        if _I64_MIN <= value <= _I64_MAX:
            out.append(_TAG_I64.pack(_INT, value))
        else:
            size = (value.bit_length() + 8) // 8
            out.append(_TAG_U32.pack(_BIGINT, size))
            out.append(value.to_bytes(size, "big", signed=True))
    elif cls is float:
        out.append(_TAG_F64.pack(_FLOAT, value))
    elif cls is str:
        data = value.encode("utf-8", "surrogatepass")
        out.append(_TAG_U32.pack(_STR, len(data)))
        out.append(data)
    elif cls is bytes:
        out.append(_TAG_U64.pack(_BYTES, len(value)))
        out.append(value)
    elif cls is list:
        out.append(_TAG_U32.pack(_LIST, len(value)))
        for item in value:
            encode_value(item, out, depth + 1)
    elif cls is tuple or (isinstance(value, tuple) and hasattr(value, "_fields")):
        out.append(_TAG_U32.pack(_TUPLE, len(value)))
        for item in value:
            encode_value(item, out, depth + 1)
    elif cls is dict:
        out.append(_TAG_U32.pack(_DICT, len(value)))
        for key, item in value.items():
            encode_value(key, out, depth + 1)
            encode_value(item, out, depth + 1)
    else:
        raise NotPlainDataError(value)


def encode_str(value: str, out: list[bytes]) -> None:
    """Append a bare length-prefixed UTF-8 string (no tag) to ``out``."""
    data = value.encode("utf-8", "surrogatepass")
    out.append(_U32.pack(len(data)))
    out.append(data)


def encode_blob(value: bytes | bytearray | memoryview, out: list[bytes]) -> None:
    """Append a bare length-prefixed byte string (no tag) to ``out``."""
    out.append(_U64.pack(len(value)))
    out.append(bytes(value) if not isinstance(value, bytes) else value)


class Reader:
    """Cursor over an encoded message; every read is bounds-checked."""

    __slots__ = ("_buf", "_end", "_pos")

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._buf = memoryview(data).cast("B")
        self._end = len(self._buf)
        self._pos = 0

    @property
    def remaining(self) -> int:
        """Number of unread bytes."""
        return self._end - self._pos

    def _truncated(self, size: int) -> EventDecodeError:
        return EventDecodeError(
            f"Truncated event: needs {size} bytes at offset {self._pos}, "
            f"{self._end - self._pos} left.",
        )

    def take(self, size: int) -> memoryview:
        """Return the next ``size`` bytes (a view) and advance past them."""
        start = self._pos
        end = start + size
        if size < 0 or end > self._end:
            raise self._truncated(size)
        self._pos = end
        return self._buf[start:end]

    def u8(self) -> int:
        """Read an unsigned byte."""
        pos = self._pos
        if pos >= self._end:
            raise EventDecodeError(f"Truncated event at offset {pos}.")
        self._pos = pos + 1
        return self._buf[pos]

    # Fixed-size reads unpack in place (no intermediate view); struct reports a
    # read past the end, which becomes the same error as take()'s.
    def _unpack(self, fmt: struct.Struct) -> Any:
        pos = self._pos
        try:
            value = fmt.unpack_from(self._buf, pos)[0]
        except struct.error:
            raise self._truncated(fmt.size) from None
        self._pos = pos + fmt.size
        return value

    def u32(self) -> int:
        """Read a big-endian unsigned 32-bit integer."""
        return int(self._unpack(_U32))

    def u64(self) -> int:
        """Read a big-endian unsigned 64-bit integer."""
        return int(self._unpack(_U64))

    def _sized(self, prefix: struct.Struct) -> memoryview:
        # A length prefix and the bytes it announces, in one call (the hot
        # path of topics, strings and payloads).
        pos = self._pos
        try:
            size = prefix.unpack_from(self._buf, pos)[0]
        except struct.error:
            raise self._truncated(prefix.size) from None
        start = pos + prefix.size
        end = start + size
        if end > self._end:
            self._pos = start
            raise self._truncated(size)
        self._pos = end
        return self._buf[start:end]

    def text(self) -> str:
        """Read a bare length-prefixed UTF-8 string."""
        return self._utf8(self._sized(_U32))

    def blob(self) -> bytes:
        """Read a bare length-prefixed byte string."""
        return bytes(self._sized(_U64))

    def count(self) -> int:
        """Read an item count; each item needs at least one byte, so cap it."""
        n: int = self._unpack(_U32)
        if n > self._end - self._pos:
            raise EventDecodeError(
                f"Corrupt event: {n} items announced but only "
                f"{self.remaining} bytes left.",
            )
        return n

    def value(self, depth: int = 0) -> Any:
        """Read one tagged plain value."""
        if depth > MAX_DEPTH:
            raise EventDecodeError(f"Event nested deeper than {MAX_DEPTH} levels.")
        pos = self._pos
        if pos >= self._end:
            raise EventDecodeError(f"Truncated event at offset {pos}.")
        self._pos = pos + 1
        tag = self._buf[pos]
        # Most frequent tags first (metadata dicts, keys, topics, payloads).
        if tag == _DICT:
            result: dict[Any, Any] = {}
            for _ in range(self.count()):
                key = self.value(depth + 1)
                try:
                    result[key] = self.value(depth + 1)
                except TypeError as e:
                    raise EventDecodeError(
                        f"Corrupt event: unhashable dict key of type "
                        f"{type(key).__qualname__}.",
                    ) from e
            return result
        if tag == _INT:
            return self._unpack(_I64)
        if tag == _STR:
            return self._utf8(self._sized(_U32))
        if tag == _BYTES:
            return bytes(self._sized(_U64))
        if tag == _TUPLE:
            return tuple(self.value(depth + 1) for _ in range(self.count()))
        if tag == _NONE:
            return None
        if tag == _TRUE:
            return True
        if tag == _FALSE:
            return False
        if tag == _LIST:
            return [self.value(depth + 1) for _ in range(self.count())]
        if tag == _FLOAT:
            return self._unpack(_F64)
        if tag == _BIGINT:
            return int.from_bytes(self.take(self.u32()), "big", signed=True)
        raise EventDecodeError(
            f"Corrupt event: unknown value tag 0x{tag:02x} at offset {self._pos - 1}."
        )

    def _utf8(self, data: memoryview) -> str:
        try:
            return str(data, "utf-8", "surrogatepass")
        except UnicodeDecodeError as e:
            raise EventDecodeError(f"Corrupt event: invalid UTF-8 ({e}).") from e
