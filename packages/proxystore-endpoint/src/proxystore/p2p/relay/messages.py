"""Messages exchanged between relay clients and the relay server.

Every message travels as one JSON object in a websocket text frame. The object's
`message_type` key names the message class (by the `RelayMessageType` member name) and
the other keys are the dataclass fields; UUID fields travel as strings.

Decoding never executes anything: text that is not JSON or nests too deeply, an unknown
type, a missing or extra field, a field of the wrong JSON type or an unparsable UUID
raises `RelayMessageDecodeError` naming the problem.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import uuid
from typing import Any, Literal

__all__ = [
    "PeerConnectionRequest",
    "RelayMessage",
    "RelayMessageDecodeError",
    "RelayMessageEncodeError",
    "RelayMessageError",
    "RelayMessageType",
    "RelayRegistrationRequest",
    "RelayResponse",
    "decode_relay_message",
    "encode_relay_message",
    "str_to_uuid",
    "uuid_to_str",
]


class RelayMessageType(enum.Enum):
    """Kinds of relay messages; the value is the message class name."""

    relay_response = "RelayResponse"
    """Reply from the relay server (success or error)."""
    relay_registration = "RelayRegistrationRequest"
    """A client registers itself as a peer."""
    peer_connection = "PeerConnectionRequest"
    """A session description forwarded from one peer to another."""


@dataclasses.dataclass
class RelayMessage:
    """Base class of every relay message."""


@dataclasses.dataclass
class RelayRegistrationRequest(RelayMessage):
    """Register with the relay server as a peer.

    Attributes:
        name: Human-readable name of the registering peer.
        uuid: UUID of the registering peer.
    """

    name: str
    uuid: uuid.UUID
    message_type: str = RelayMessageType.relay_registration.name


@dataclasses.dataclass
class RelayResponse(RelayMessage):
    """Reply of the relay server to a request.

    Attributes:
        success: Whether the request succeeded.
        message: Optional text from the server (the error when `error` is set).
        error: Whether `message` describes an error.
    """

    success: bool = True
    message: str | None = None
    error: bool = False
    message_type: str = RelayMessageType.relay_response.name


@dataclasses.dataclass
class PeerConnectionRequest(RelayMessage):
    """Session description sent to a peer through the relay.

    Attributes:
        source_uuid: UUID of the sending peer.
        source_name: Name of the sending peer.
        peer_uuid: UUID of the receiving peer.
        description_type: `'offer'` or `'answer'`.
        description: The session description (SDP, JSON encoded).
        error: Set by the relay when the request could not be forwarded.
    """

    source_uuid: uuid.UUID
    source_name: str
    peer_uuid: uuid.UUID
    description_type: Literal["answer", "offer"]
    description: str
    error: str | None = None
    message_type: str = RelayMessageType.peer_connection.name


class RelayMessageError(Exception):
    """Base class of relay message encoding errors."""


class RelayMessageDecodeError(RelayMessageError):
    """Raised when a relay message cannot be decoded."""


class RelayMessageEncodeError(RelayMessageError):
    """Raised when a relay message cannot be encoded."""


_CLASSES: dict[str, type[RelayMessage]] = {
    RelayMessageType.relay_response.name: RelayResponse,
    RelayMessageType.relay_registration.name: RelayRegistrationRequest,
    RelayMessageType.peer_connection.name: PeerConnectionRequest,
}

# JSON types each field may hold (bool is excluded from int on purpose).
_FIELD_TYPES: dict[str, dict[str, tuple[type, ...]]] = {
    "RelayResponse": {
        "success": (bool,),
        "message": (str, type(None)),
        "error": (bool,),
    },
    "RelayRegistrationRequest": {"name": (str,), "uuid": (str,)},
    "PeerConnectionRequest": {
        "source_uuid": (str,),
        "source_name": (str,),
        "peer_uuid": (str,),
        "description_type": (str,),
        "description": (str,),
        "error": (str, type(None)),
    },
}


def uuid_to_str(data: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of `data` with UUID values under `*uuid*` keys as strings."""
    return {
        key: str(value)
        if "uuid" in key.lower() and isinstance(value, uuid.UUID)
        else value
        for key, value in data.items()
    }


def str_to_uuid(data: dict[str, Any]) -> dict[str, Any]:
    """Return a shallow copy of `data` with values under `*uuid*` keys parsed as UUIDs.

    Raises:
        RelayMessageDecodeError: If such a value is not a valid UUID string.
    """
    out = dict(data)
    for key, value in data.items():
        if "uuid" not in key.lower():
            continue
        try:
            out[key] = value if isinstance(value, uuid.UUID) else uuid.UUID(value)
        except (AttributeError, TypeError, ValueError) as exc:
            raise RelayMessageDecodeError(
                f"Field {key!r} is not a valid UUID: {value!r}."
            ) from exc
    return out


def decode_relay_message(message: str | bytes) -> RelayMessage:
    """Decode a JSON relay message into its message class.

    Args:
        message: JSON text of the message.

    Returns:
        The decoded message.

    Raises:
        RelayMessageDecodeError: If the text is not a JSON object (or nests so deeply
            that the parser gives up), has no or an unknown
            `message_type`, misses a required field, has an unknown field, or a field
            has the wrong type.
    """
    try:
        data = json.loads(message)
    except (ValueError, TypeError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise RelayMessageDecodeError(
            f"Relay message is not valid JSON: {exc}"
        ) from exc
    except RecursionError:
        # Deeply nested arrays or objects exhaust the parser's stack; no relay
        # message nests at all, so this is never a valid message.
        raise RelayMessageDecodeError(
            "Relay message is nested too deeply to be a relay message."
        ) from None
    if not isinstance(data, dict):
        raise RelayMessageDecodeError(
            f"Relay message must be a JSON object, got {type(data).__name__}."
        )
    type_name = data.pop("message_type", None)
    if type_name is None:
        raise RelayMessageDecodeError("Relay message has no 'message_type' key.")
    cls = _CLASSES.get(type_name) if isinstance(type_name, str) else None
    if cls is None:
        raise RelayMessageDecodeError(f"Unknown relay message type: {type_name!r}.")
    allowed = _FIELD_TYPES[cls.__name__]
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise RelayMessageDecodeError(
            f"Unknown field(s) for {cls.__name__}: {', '.join(unknown)}."
        )
    for key, value in data.items():
        if not isinstance(value, allowed[key]):
            raise RelayMessageDecodeError(
                f"Field {key!r} of {cls.__name__} has the wrong type "
                f"({type(value).__name__})."
            )
    if cls is PeerConnectionRequest and data.get("description_type") not in (
        "answer",
        "offer",
        None,
    ):
        raise RelayMessageDecodeError(
            "Field 'description_type' must be 'offer' or 'answer', "
            f"got {data['description_type']!r}."
        )
    data = str_to_uuid(data)
    try:
        return cls(**data)
    except TypeError as exc:  # a required field is missing
        raise RelayMessageDecodeError(f"Invalid {cls.__name__}: {exc}") from exc


def encode_relay_message(message: RelayMessage) -> str:
    """Encode a relay message as JSON text.

    Args:
        message: Message to encode.

    Returns:
        The JSON text.

    Raises:
        RelayMessageEncodeError: If `message` is not a relay message or holds values
            JSON cannot represent.
    """
    if not isinstance(message, RelayMessage):
        raise RelayMessageEncodeError(
            f"Expected a RelayMessage, got {type(message).__name__}."
        )
    data = uuid_to_str(dataclasses.asdict(message))
    try:
        return json.dumps(data)
    except (TypeError, ValueError) as exc:
        raise RelayMessageEncodeError(
            f"Cannot encode {type(message).__name__}: {exc}"
        ) from exc
