"""Messages endpoints exchange with their peers, and their wire format.

A message is a small JSON header followed by the raw payload bytes::

    b"PSE1" | header length (4 bytes, big-endian) | JSON header | payload

Nothing is pickled: an error travels as its class name and message and is rebuilt
as one of the endpoint's own exception types (`PeerRequestError` when the name is
not one of them), so a peer can never make this endpoint run code.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any, Literal

from proxystore.endpoint import exceptions as _exc

__all__ = [
    "EndpointRequest",
    "MessageDecodeError",
    "decode_request",
    "encode_request",
]

_MAGIC = b"PSE1"
_PREFIX = struct.Struct("!4sI")
_OPS = ("evict", "exists", "get", "set", "info", "expire", "ttl")
_KINDS = ("request", "response")
#: Errors a peer may name; anything else comes back as a PeerRequestError.
_ERRORS: dict[str, type[Exception]] = {
    cls.__name__: cls
    for cls in (
        _exc.ObjectSizeExceededError,
        _exc.PeeringNotAvailableError,
        _exc.PeerRequestError,
        _exc.PeerTimeoutError,
        _exc.UnknownPeerError,
    )
}


class MessageDecodeError(ValueError):
    """Raised when bytes received from a peer are not a valid endpoint message."""


@dataclass
class EndpointRequest:
    """A request between endpoints, or the response to one.

    Attributes:
        kind: `'request'` or `'response'`.
        op: `'evict'`, `'exists'`, `'get'`, `'set'`, `'expire'`, `'ttl'`, or
            `'info'` (asks the peer for the HTTP address at which it may be
            reached directly).
        uuid: Identifier of the request; the response carries the same one.
        key: Key of the object operated on.
        data: Payload (the object for `set`, the result of `get`).
        exists: Result of an `exists` (or `expire`) request.
        ttl: Time-to-live in seconds: of the object to `set` or to `expire`
            (`None`: none), and the answer to a `ttl` request.
        error: Error the operation raised on the peer, if any.
    """

    kind: Literal["request", "response"]
    op: Literal["evict", "exists", "get", "set", "info", "expire", "ttl"]
    uuid: str
    key: str
    data: bytes | None = None
    exists: bool | None = None
    error: Exception | None = None
    ttl: float | None = None


def encode_request(message: EndpointRequest) -> bytes:
    """Return the wire form of `message`."""
    error = (
        None
        if message.error is None
        else [type(message.error).__name__, str(message.error)]
    )
    header = json.dumps(
        {
            "kind": message.kind,
            "op": message.op,
            "uuid": message.uuid,
            "key": message.key,
            "exists": message.exists,
            "error": error,
            "has_data": message.data is not None,
            "ttl": message.ttl,
        },
        separators=(",", ":"),
    ).encode()
    data = b"" if message.data is None else message.data
    return b"".join((_PREFIX.pack(_MAGIC, len(header)), header, data))


def decode_request(raw: bytes | bytearray | memoryview) -> EndpointRequest:
    """Rebuild a message from its wire form.

    Raises:
        MessageDecodeError: If `raw` is truncated, has the wrong magic bytes, or
            its header is not a valid message header.
    """
    view = memoryview(raw)
    if len(view) < _PREFIX.size:
        raise MessageDecodeError(f"endpoint message too short ({len(view)} bytes)")
    magic, header_len = _PREFIX.unpack_from(view)
    if magic != _MAGIC:
        raise MessageDecodeError(f"not an endpoint message (magic {magic!r})")
    end = _PREFIX.size + header_len
    if len(view) < end:
        raise MessageDecodeError("endpoint message header is truncated")
    try:
        header: Any = json.loads(bytes(view[_PREFIX.size : end]))
    except ValueError as exc:
        raise MessageDecodeError(f"endpoint message header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise MessageDecodeError("endpoint message header is not an object")
    kind, op = header.get("kind"), header.get("op")
    uuid, key = header.get("uuid"), header.get("key")
    exists, error = header.get("exists"), header.get("error")
    if kind not in _KINDS or op not in _OPS:
        raise MessageDecodeError(f"bad endpoint message kind/op: {kind!r}/{op!r}")
    if not isinstance(uuid, str) or not isinstance(key, str):
        raise MessageDecodeError("endpoint message uuid and key must be strings")
    if exists is not None and not isinstance(exists, bool):
        raise MessageDecodeError("endpoint message 'exists' must be a bool or null")
    ttl = header.get("ttl")
    if ttl is not None and (
        isinstance(ttl, bool)
        or not isinstance(ttl, int | float)
        or not 0 <= ttl < float("inf")
    ):
        raise MessageDecodeError("endpoint message 'ttl' must be seconds or null")
    return EndpointRequest(
        kind=kind,
        op=op,
        uuid=uuid,
        key=key,
        data=bytes(view[end:]) if header.get("has_data") else None,
        exists=exists,
        error=_decode_error(error),
        ttl=None if ttl is None else float(ttl),
    )


def _decode_error(error: Any) -> Exception | None:
    if error is None:
        return None
    if (
        not isinstance(error, list)
        or len(error) != 2
        or not all(isinstance(part, str) for part in error)
    ):
        raise MessageDecodeError("endpoint message 'error' must be [name, message]")
    name, text = error
    cls = _ERRORS.get(name, _exc.PeerRequestError)
    return cls(text if cls is not _exc.PeerRequestError else f"{name}: {text}")
