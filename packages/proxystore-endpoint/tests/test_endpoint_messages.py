from __future__ import annotations

import pytest

from proxystore.endpoint.exceptions import (
    ObjectSizeExceededError,
    PeerRequestError,
    PeerTimeoutError,
)
from proxystore.endpoint.messages import (
    EndpointRequest,
    MessageDecodeError,
    decode_request,
    encode_request,
)


@pytest.mark.parametrize("data", [None, b"", b"payload", bytes(range(256)) * 100])
def test_round_trip(data: bytes | None) -> None:
    msg = EndpointRequest(kind="request", op="set", uuid="u1", key="k", data=data)
    back = decode_request(encode_request(msg))
    assert back == msg


def test_response_fields_round_trip() -> None:
    msg = EndpointRequest(kind="response", op="exists", uuid="u", key="k", exists=True)
    back = decode_request(memoryview(encode_request(msg)))
    assert back.kind == "response"
    assert back.exists is True
    assert back.data is None


def test_known_error_keeps_its_type() -> None:
    msg = EndpointRequest(
        kind="response",
        op="set",
        uuid="u",
        key="k",
        error=ObjectSizeExceededError("too big"),
    )
    back = decode_request(encode_request(msg))
    assert isinstance(back.error, ObjectSizeExceededError)
    assert str(back.error) == "too big"


def test_timeout_error_keeps_its_type() -> None:
    msg = EndpointRequest(
        kind="response", op="get", uuid="u", key="k", error=PeerTimeoutError("slow")
    )
    assert isinstance(decode_request(encode_request(msg)).error, PeerTimeoutError)


def test_foreign_error_becomes_peer_request_error() -> None:
    msg = EndpointRequest(
        kind="response", op="get", uuid="u", key="k", error=KeyError("nope")
    )
    error = decode_request(encode_request(msg)).error
    assert type(error) is PeerRequestError
    assert "KeyError" in str(error)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"PSE",
        b"XXXX\x00\x00\x00\x02{}",
        b"PSE1\x00\x00\x00\x10{}",
        b"PSE1\x00\x00\x00\x03abc",
        b"PSE1\x00\x00\x00\x02[]",
        b'PSE1\x00\x00\x00\x0f{"kind":"oops"}',
    ],
)
def test_malformed_messages_raise(raw: bytes) -> None:
    with pytest.raises(MessageDecodeError):
        decode_request(raw)


def test_bad_field_types_raise() -> None:
    good = encode_request(EndpointRequest(kind="request", op="get", uuid="u", key="k"))
    bad = good.replace(b'"key":"k"', b'"key":123')
    with pytest.raises(MessageDecodeError, match="strings"):
        decode_request(bad)
    bad_error = good.replace(b'"error":null', b'"error":"bo"')
    with pytest.raises(MessageDecodeError, match="error"):
        decode_request(bad_error)
