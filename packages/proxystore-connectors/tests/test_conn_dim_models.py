"""Unit tests of the DIM wire format (proxystore.connectors.dim.models)."""

from __future__ import annotations

import pickle
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxystore.connectors.dim import DIMKey, MessageDecodeError
from proxystore.connectors.dim.models import (
    PROTOCOL_VERSION,
    Op,
    Request,
    Response,
    Status,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    pack_frames,
    unpack_frames,
)
from proxystore.connectors.exceptions import CorruptPayloadError

payloads = st.lists(st.binary(max_size=300), max_size=4)


@given(
    op=st.sampled_from(Op),
    obj_id=st.text(max_size=40),
    payload=payloads,
    rid=st.integers(0, 2**32 - 1),
)
def test_request_round_trip(
    op: Op, obj_id: str, payload: list[bytes], rid: int
) -> None:
    request = Request(op, obj_id, payload)
    decoded = decode_request(encode_request(request, rid), payload)
    assert decoded == Request(op, obj_id, payload, rid)
    assert decoded.size == sum(map(len, payload))


@given(
    op=st.sampled_from(Op),
    status=st.sampled_from(Status),
    payload=payloads,
    rid=st.integers(0, 2**32 - 1),
    text=st.text(max_size=40),
)
def test_response_round_trip(
    op: Op, status: Status, payload: list[bytes], rid: int, text: str
) -> None:
    response = Response(op, status, payload, rid, text)
    assert decode_response(encode_response(response), payload) == response


@given(frames=st.lists(st.binary(max_size=200), max_size=6))
def test_pack_frames_round_trip(frames: list[bytes]) -> None:
    packed = pack_frames(frames)
    assert [bytes(f) for f in unpack_frames(packed)] == frames
    assert [bytes(f) for f in unpack_frames(memoryview(packed))] == frames


def test_header_is_compact_and_pickle_free() -> None:
    header = encode_request(Request(Op.GET, "abc"), 7)
    assert header == b"DM" + struct.pack("!BBIQ", PROTOCOL_VERSION, 2, 7, 0) + b"abc"
    assert b"\x80" not in header[:2]  # not a pickle stream


def _request_header(**fields: int | bytes) -> bytes:
    values: dict[str, int | bytes] = {
        "magic": b"DM",
        "version": PROTOCOL_VERSION,
        "op": int(Op.PUT),
        "rid": 1,
        "size": 3,
    }
    values.update(fields)
    return struct.pack("!2sBBIQ", *values.values()) + b"id"


@pytest.mark.parametrize(
    ("header", "payload", "message"),
    [
        (b"DM\x01", [], "header is 3 bytes"),
        (_request_header(magic=b"PK"), [b"abc"], "magic"),
        (_request_header(version=PROTOCOL_VERSION + 1), [b"abc"], "version 2"),
        (_request_header(op=99), [b"abc"], "unknown operation 99"),
        (_request_header(), [b"ab"], "payload is 2 bytes but its header declares 3"),
        (_request_header()[:-2] + b"\xff\xfe", [b"abc"], "invalid object id"),
    ],
)
def test_bad_request_raises_typed_error(
    header: bytes, payload: list[bytes], message: str
) -> None:
    with pytest.raises(MessageDecodeError, match=message) as info:
        decode_request(header, payload)
    assert isinstance(info.value, CorruptPayloadError)
    assert isinstance(info.value, ValueError)


def test_bad_response_status_raises() -> None:
    header = encode_response(Response(Op.GET, Status.OK))
    broken = header[:4] + b"\x09" + header[5:]
    with pytest.raises(MessageDecodeError, match="unknown status 9"):
        decode_response(broken)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00", "too short"),
        (struct.pack("!I", 2) + struct.pack("!Q", 1), "declares 2 frames"),
        (struct.pack("!IQ", 1, 5) + b"abc", "total 17 bytes but the buffer has 15"),
        (struct.pack("!IQ", 1, 1) + b"ab", "buffer has"),
    ],
)
def test_bad_packed_frames_raise(data: bytes, message: str) -> None:
    with pytest.raises(MessageDecodeError, match=message):
        unpack_frames(data)


def test_key_is_plain_data() -> None:
    key = DIMKey("zmq", "0" * 32, 10, "127.0.0.1", 5000)
    raw = pickle.dumps(key)
    assert pickle.loads(raw) == key
    assert len(raw) < 160
    assert key._asdict() == {
        "dim_type": "zmq",
        "obj_id": "0" * 32,
        "size": 10,
        "peer_host": "127.0.0.1",
        "peer_port": 5000,
    }
