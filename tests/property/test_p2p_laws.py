"""Laws of the peer-to-peer wire formats.

* `reconstruct(chunkify(m, size, sid))` is `m` for any bytes or text, any chunk size,
  in any arrival order, also after each chunk went through its wire form.
* Any strict subset of a message's chunks is rejected with `ChunkError`.
* `Chunk.from_bytes` is total over bytes: it returns a chunk or raises `ChunkError`.
* `decode_relay_message(encode_relay_message(m)) == m` for every relay message, and
  the decoder is total over text: a message or `RelayMessageDecodeError`, also for
  text nested to any depth.
"""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxystore.p2p.chunks import Chunk, ChunkError, chunkify, reconstruct
from proxystore.p2p.relay.messages import (
    PeerConnectionRequest,
    RelayMessage,
    RelayMessageDecodeError,
    RelayRegistrationRequest,
    RelayResponse,
    decode_relay_message,
    encode_relay_message,
)

messages = st.one_of(st.binary(max_size=4096), st.text(max_size=1024))
sizes = st.integers(min_value=1, max_value=512)
stream_ids = st.integers(min_value=0, max_value=2**32 - 1)


@given(messages, sizes, stream_ids, st.randoms(use_true_random=False))
def test_chunks_reassemble_in_any_order(
    message: bytes | str, size: int, stream_id: int, rng: object
) -> None:
    chunks = [Chunk.from_bytes(bytes(c)) for c in chunkify(message, size, stream_id)]
    assert all(c.stream_id == stream_id for c in chunks)
    assert all(len(c.data) <= size for c in chunks)
    rng.shuffle(chunks)  # type: ignore[attr-defined]
    assert reconstruct(chunks) == message


@given(st.binary(min_size=2, max_size=2048), sizes, st.data())
def test_any_missing_chunk_is_a_typed_error(
    message: bytes, size: int, data: st.DataObject
) -> None:
    chunks = list(chunkify(message, size, 0))
    if len(chunks) < 2:
        return
    keep = data.draw(
        st.lists(
            st.sampled_from(range(len(chunks))),
            min_size=1,
            max_size=len(chunks) - 1,
            unique=True,
        )
    )
    with pytest.raises(ChunkError, match="incomplete"):
        reconstruct([chunks[i] for i in keep])


@given(st.binary(max_size=64))
def test_chunk_decoder_is_total(raw: bytes) -> None:
    try:
        chunk = Chunk.from_bytes(raw)
    except ChunkError:
        return
    assert chunk.seq_id < chunk.seq_len


uuids = st.uuids()
relay_messages: st.SearchStrategy[RelayMessage] = st.one_of(
    st.builds(RelayRegistrationRequest, st.text(), uuids),
    st.builds(RelayResponse, st.booleans(), st.none() | st.text(), st.booleans()),
    st.builds(
        PeerConnectionRequest,
        uuids,
        st.text(),
        uuids,
        st.sampled_from(["offer", "answer"]),
        st.text(),
        st.none() | st.text(),
    ),
)


@given(relay_messages)
def test_relay_messages_round_trip(message: RelayMessage) -> None:
    assert decode_relay_message(encode_relay_message(message)) == message


@given(
    st.one_of(
        st.text(),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(),
            lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        ).map(str),
        st.fixed_dictionaries(
            {"message_type": st.sampled_from(["relay_response", "peer_connection"])},
            optional={
                "success": st.integers(),
                "peer_uuid": st.text(),
                "description_type": st.text(),
            },
        ).map(json.dumps),
    )
)
def test_relay_decoder_is_total(text: str) -> None:
    try:
        message = decode_relay_message(text)
    except RelayMessageDecodeError:
        return
    assert isinstance(message, RelayMessage)
    if isinstance(message, PeerConnectionRequest):
        assert isinstance(message.peer_uuid, uuid.UUID)


@given(
    st.integers(min_value=1, max_value=200_000),
    st.sampled_from(["[", '{"a":', '{"message_type": "RelayResponse", "message": [']),
    st.sampled_from(["", "]", "1", '"x"']),
    st.booleans(),
)
def test_relay_decoder_is_total_at_any_depth(
    depth: int, opener: str, tail: str, wrap: bool
) -> None:
    # Nesting deep enough to exhaust the JSON parser's stack is a decode error,
    # never a RecursionError escaping into the relay's handler.
    text = opener + "[" * depth + tail
    if wrap:
        text = '{"message_type": "RelayResponse", "message": ' + text
    with pytest.raises(RelayMessageDecodeError):
        decode_relay_message(text)
