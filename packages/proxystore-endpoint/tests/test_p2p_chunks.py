"""Chunking: wire form, reassembly, and typed errors for truncated or bad streams."""

from __future__ import annotations

import random

import pytest

from proxystore.p2p.chunks import (
    CHUNK_HEADER_LENGTH,
    Chunk,
    ChunkDType,
    ChunkError,
    chunkify,
    reconstruct,
)


def test_chunkify_splits_into_ordered_pieces() -> None:
    chunks = list(chunkify(b"abcdefgh", 3, stream_id=9))
    assert [c.data for c in chunks] == [b"abc", b"def", b"gh"]
    assert [(c.stream_id, c.seq_id, c.seq_len) for c in chunks] == [
        (9, 0, 3),
        (9, 1, 3),
        (9, 2, 3),
    ]
    assert all(c.dtype is ChunkDType.BYTES for c in chunks)


def test_text_chunks_keep_their_type() -> None:
    chunks = list(chunkify("héllo wörld", 4, stream_id=1))
    assert all(c.dtype is ChunkDType.STRING for c in chunks)
    random.Random(0).shuffle(chunks)
    assert reconstruct(chunks) == "héllo wörld"


def test_empty_message_is_one_empty_chunk() -> None:
    chunks = list(chunkify(b"", 10, stream_id=0))
    assert len(chunks) == 1
    assert reconstruct([Chunk.from_bytes(bytes(c)) for c in chunks]) == b""


def test_chunk_bytes_round_trip() -> None:
    chunk = Chunk(1, 2, 3, "ünïcode")
    raw = bytes(chunk)
    assert len(raw) == CHUNK_HEADER_LENGTH + len("ünïcode".encode())
    assert Chunk.from_bytes(raw) == chunk
    assert Chunk.from_bytes(memoryview(raw)) == chunk
    assert "seq_id=2" in repr(chunk)


def test_chunk_validates_sequence_numbers() -> None:
    with pytest.raises(ValueError, match="seq_id"):
        Chunk(0, 3, 3, b"")
    with pytest.raises(ValueError, match="32 unsigned bits"):
        Chunk(2**32, 0, 1, b"")
    with pytest.raises(ValueError, match="positive"):
        list(chunkify(b"x", 0, 0))


def test_from_bytes_rejects_short_and_truncated_chunks() -> None:
    raw = bytes(Chunk(0, 0, 1, b"payload"))
    with pytest.raises(ChunkError, match="shorter than"):
        Chunk.from_bytes(raw[:5])
    with pytest.raises(ChunkError, match="truncated"):
        Chunk.from_bytes(raw[:-1])


def test_from_bytes_rejects_bad_header_fields() -> None:
    raw = bytearray(bytes(Chunk(0, 0, 1, b"x")))
    raw[1] = 9  # dtype
    with pytest.raises(ChunkError, match="dtype"):
        Chunk.from_bytes(bytes(raw))
    raw = bytearray(bytes(Chunk(0, 0, 1, b"x")))
    raw[14:18] = (0).to_bytes(4, "big")  # seq_len 0 < seq_id
    with pytest.raises(ChunkError, match="seq_len"):
        Chunk.from_bytes(bytes(raw))
    text = bytearray(bytes(Chunk(0, 0, 1, "ab")))
    text[-1] = 0xFF
    with pytest.raises(ChunkError, match="UTF-8"):
        Chunk.from_bytes(bytes(text))


def test_truncated_stream_is_a_typed_error() -> None:
    chunks = list(chunkify(b"0123456789", 3, stream_id=4))
    with pytest.raises(ChunkError, match="incomplete: got 3 of 4"):
        reconstruct(chunks[:-1])
    with pytest.raises(ChunkError, match="no chunks"):
        reconstruct([])
    with pytest.raises(ChunkError, match="twice"):
        reconstruct([*chunks[:-1], chunks[0]])
    other = Chunk(5, 3, 4, b"9")
    with pytest.raises(ChunkError, match="disagree"):
        reconstruct([*chunks[:-1], other])
    assert isinstance(ChunkError("x"), ValueError)
