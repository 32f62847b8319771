"""Split messages into chunks small enough for a data channel, and join them again.

A chunk on the wire is an 18-byte big-endian header followed by the payload:

| field     | type | meaning                                   |
|-----------|------|-------------------------------------------|
| dtype     | u16  | `ChunkDType` value (bytes or UTF-8 text)  |
| length    | u32  | header + payload length in bytes          |
| stream_id | u32  | message the chunk belongs to              |
| seq_id    | u32  | position of the chunk in its message      |
| seq_len   | u32  | number of chunks in the message           |

Malformed or truncated chunk bytes, and chunk lists that do not make up one whole
message, raise `ChunkError` (a `ValueError`).
"""

from __future__ import annotations

import enum
import math
import struct
from collections.abc import Generator, Sequence

__all__ = [
    "CHUNK_HEADER_FORMAT",
    "CHUNK_HEADER_LENGTH",
    "Chunk",
    "ChunkDType",
    "ChunkError",
    "chunkify",
    "reconstruct",
]

CHUNK_HEADER_FORMAT = "!HLLLL"
CHUNK_HEADER_LENGTH = struct.calcsize(CHUNK_HEADER_FORMAT)
_HEADER = struct.Struct(CHUNK_HEADER_FORMAT)
_U32_MAX = 2**32 - 1


class ChunkError(ValueError):
    """Raised for malformed chunk bytes or an incomplete or inconsistent stream."""


class ChunkDType(enum.Enum):
    """Type of the payload carried by a chunk."""

    BYTES = 1
    """The payload is bytes."""
    STRING = 2
    """The payload is UTF-8 text."""


class Chunk:
    """One piece of a chunked message.

    Args:
        stream_id: Identifier of the message the chunk belongs to.
        seq_id: Position of this chunk in its message (from 0).
        seq_len: Number of chunks in the message.
        data: Payload of this chunk.
        dtype: Payload type; inferred from `data` when `None`.

    Raises:
        ValueError: If `seq_id` is not less than `seq_len`, or a number does not fit
            in an unsigned 32-bit field.
    """

    __slots__ = ("data", "dtype", "seq_id", "seq_len", "stream_id")

    def __init__(
        self,
        stream_id: int,
        seq_id: int,
        seq_len: int,
        data: bytes | str,
        dtype: ChunkDType | None = None,
    ) -> None:
        if seq_len <= seq_id:
            raise ValueError(
                f"seq_id ({seq_id}) must be less than seq_len ({seq_len})."
            )
        for name, value in (
            ("stream_id", stream_id),
            ("seq_id", seq_id),
            ("seq_len", seq_len),
        ):
            if not 0 <= value <= _U32_MAX:
                raise ValueError(f"{name} ({value}) must fit in 32 unsigned bits.")
        self.stream_id = stream_id
        self.seq_id = seq_id
        self.seq_len = seq_len
        self.data = data
        if dtype is None:
            dtype = ChunkDType.STRING if isinstance(data, str) else ChunkDType.BYTES
        self.dtype = dtype

    def __repr__(self) -> str:
        unit = "chars" if isinstance(self.data, str) else "bytes"
        return (
            f"Chunk(stream_id={self.stream_id}, seq_id={self.seq_id}, "
            f"seq_len={self.seq_len}, dtype={self.dtype.name}, "
            f"data=<{len(self.data)} {unit}>)"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Chunk):
            return NotImplemented
        return (
            self.stream_id == other.stream_id
            and self.seq_id == other.seq_id
            and self.seq_len == other.seq_len
            and self.dtype is other.dtype
            and self.data == other.data
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __bytes__(self) -> bytes:
        """Return the wire form of the chunk (header then payload)."""
        payload = self.data.encode("utf-8") if isinstance(self.data, str) else self.data
        header = _HEADER.pack(
            self.dtype.value,
            CHUNK_HEADER_LENGTH + len(payload),
            self.stream_id,
            self.seq_id,
            self.seq_len,
        )
        return header + payload

    @classmethod
    def from_bytes(cls, chunk: bytes | bytearray | memoryview) -> Chunk:
        """Decode the wire form of a chunk.

        Raises:
            ChunkError: If the bytes are shorter than the header or than the length
                the header declares, the dtype is unknown, the sequence numbers are
                inconsistent, or a text payload is not UTF-8.
        """
        view = memoryview(chunk)
        if len(view) < CHUNK_HEADER_LENGTH:
            raise ChunkError(
                f"Chunk of {len(view)} bytes is shorter than the "
                f"{CHUNK_HEADER_LENGTH}-byte header."
            )
        dtype_value, length, stream_id, seq_id, seq_len = _HEADER.unpack_from(view)
        if length < CHUNK_HEADER_LENGTH or length > len(view):
            raise ChunkError(
                f"Chunk declares {length} bytes but {len(view)} bytes were received "
                "(truncated or corrupt chunk)."
            )
        try:
            dtype = ChunkDType(dtype_value)
        except ValueError as exc:
            raise ChunkError(f"Unknown chunk dtype {dtype_value}.") from exc
        if seq_id >= seq_len:
            raise ChunkError(
                f"Chunk seq_id ({seq_id}) is not below seq_len ({seq_len})."
            )
        payload = bytes(view[CHUNK_HEADER_LENGTH:length])
        data: bytes | str
        if dtype is ChunkDType.STRING:
            try:
                data = payload.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ChunkError(f"Text chunk is not valid UTF-8: {exc}") from exc
        else:
            data = payload
        return cls(stream_id, seq_id, seq_len, data, dtype)


def chunkify(
    data: bytes | str,
    size: int,
    stream_id: int,
) -> Generator[Chunk, None, None]:
    """Yield the chunks of `data`, each holding at most `size` bytes or characters.

    Empty data yields one empty chunk, so that an empty message still arrives.

    Args:
        data: Message to split.
        size: Maximum payload length of a chunk (bytes, or characters for text).
        stream_id: Identifier stamped on every chunk of this message.

    Yields:
        The chunks, in order.

    Raises:
        ValueError: If `size` is not positive.
    """
    if size <= 0:
        raise ValueError(f"Chunk size must be positive, got {size}.")
    seq_len = max(1, math.ceil(len(data) / size))
    view: bytes | str | memoryview = data if isinstance(data, str) else memoryview(data)
    for seq_id in range(seq_len):
        piece = view[seq_id * size : (seq_id + 1) * size]
        payload = piece if isinstance(piece, str) else bytes(piece)
        yield Chunk(stream_id, seq_id, seq_len, payload)


def reconstruct(chunks: Sequence[Chunk]) -> bytes | str:
    """Join the chunks of one message (in any order) back into the message.

    Args:
        chunks: Every chunk of one message.

    Returns:
        The message: bytes, or text for text chunks.

    Raises:
        ChunkError: If `chunks` is empty, chunks are missing (a truncated stream) or
            duplicated, or the chunks disagree on stream, length or dtype.
    """
    if len(chunks) == 0:
        raise ChunkError("Cannot reconstruct a message from no chunks.")
    first = chunks[0]
    for chunk in chunks:
        if (chunk.stream_id, chunk.seq_len, chunk.dtype) != (
            first.stream_id,
            first.seq_len,
            first.dtype,
        ):
            raise ChunkError(
                "Chunks disagree on stream id, length or dtype: "
                f"{first!r} and {chunk!r}."
            )
    if len(chunks) != first.seq_len:
        raise ChunkError(
            f"Stream {first.stream_id} is incomplete: got {len(chunks)} of "
            f"{first.seq_len} chunks."
        )
    ordered: list[Chunk | None] = [None] * first.seq_len
    for chunk in chunks:
        if ordered[chunk.seq_id] is not None:
            raise ChunkError(
                f"Stream {first.stream_id} has chunk {chunk.seq_id} twice."
            )
        ordered[chunk.seq_id] = chunk
    parts = [c.data for c in ordered if c is not None]
    if first.dtype is ChunkDType.STRING:
        return "".join(p if isinstance(p, str) else p.decode("utf-8") for p in parts)
    return b"".join(p.encode("utf-8") if isinstance(p, str) else p for p in parts)
