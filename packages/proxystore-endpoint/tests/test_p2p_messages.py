"""Relay messages: encode/decode and the typed errors for malformed input."""

from __future__ import annotations

import json
import uuid

import pytest

from proxystore.p2p.relay.messages import (
    PeerConnectionRequest,
    RelayMessage,
    RelayMessageDecodeError,
    RelayMessageEncodeError,
    RelayMessageType,
    RelayRegistrationRequest,
    RelayResponse,
    decode_relay_message,
    encode_relay_message,
    str_to_uuid,
    uuid_to_str,
)

MESSAGES: list[RelayMessage] = [
    RelayRegistrationRequest("peer", uuid.uuid4()),
    RelayResponse(),
    RelayResponse(success=False, message="nope", error=True),
    PeerConnectionRequest(uuid.uuid4(), "a", uuid.uuid4(), "offer", "{}"),
    PeerConnectionRequest(uuid.uuid4(), "a", uuid.uuid4(), "answer", "{}", "err"),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(message: RelayMessage) -> None:
    text = encode_relay_message(message)
    assert isinstance(json.loads(text), dict)
    assert decode_relay_message(text) == message


def test_wire_format_names_the_type_and_uses_uuid_strings() -> None:
    peer = uuid.UUID(int=7)
    data = json.loads(encode_relay_message(RelayRegistrationRequest("x", peer)))
    assert data == {
        "name": "x",
        "uuid": str(peer),
        "message_type": RelayMessageType.relay_registration.name,
    }


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"name": "x"}', "no 'message_type'"),
        ('{"message_type": "Nope"}', "Unknown relay message type"),
        ('{"message_type": 3}', "Unknown relay message type"),
        ('{"message_type": "relay_response", "bogus": 1}', "Unknown field"),
        ('{"message_type": "relay_response", "success": "yes"}', "wrong type"),
        ('{"message_type": "relay_registration", "name": "x"}', "Invalid"),
        (
            '{"message_type": "relay_registration", "name": "x", "uuid": "zz"}',
            "not a valid UUID",
        ),
        (
            json.dumps(
                {
                    "message_type": "peer_connection",
                    "source_uuid": str(uuid.uuid4()),
                    "source_name": "a",
                    "peer_uuid": str(uuid.uuid4()),
                    "description_type": "shout",
                    "description": "",
                }
            ),
            "'offer' or 'answer'",
        ),
    ],
)
def test_malformed_messages_raise_a_decode_error(text: str, needle: str) -> None:
    with pytest.raises(RelayMessageDecodeError, match=needle):
        decode_relay_message(text)


def test_invalid_utf8_bytes_raise_a_decode_error() -> None:
    with pytest.raises(RelayMessageDecodeError):
        decode_relay_message(b"\xff\xfe")


def test_encode_rejects_non_messages_and_unencodable_values() -> None:
    with pytest.raises(RelayMessageEncodeError, match="Expected a RelayMessage"):
        encode_relay_message({"message_type": "x"})  # type: ignore[arg-type]
    bad = RelayResponse(message=object())  # type: ignore[arg-type]
    with pytest.raises(RelayMessageEncodeError):
        encode_relay_message(bad)


def test_uuid_helpers_convert_only_uuid_keys() -> None:
    u = uuid.uuid4()
    assert uuid_to_str({"peer_uuid": u, "name": "uuid"}) == {
        "peer_uuid": str(u),
        "name": "uuid",
    }
    assert str_to_uuid({"peer_uuid": str(u), "name": "n"}) == {
        "peer_uuid": u,
        "name": "n",
    }
    with pytest.raises(RelayMessageDecodeError, match="peer_uuid"):
        str_to_uuid({"peer_uuid": 5})
