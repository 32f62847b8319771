"""Keys and wire messages shared by every DIM transport.

A message is a small fixed header followed by zero or more raw payload buffers. The
header is plain ``struct`` data (never pickle), so a peer cannot make another run
code, and the payload buffers travel as separate frames so large objects are never
copied into the header::

    request   "DM" | version u8 | op u8 | request id u32 | size u64 | obj_id UTF-8
    response  "DM" | version u8 | op u8 | status u8 | request id u32 | size u64
              | text UTF-8

``size`` is the total length of the payload buffers (the object for a put request or a
get response); the receiver checks it. ``text`` carries the server's error message
when ``status`` is `Status.ERROR`.
"""

from __future__ import annotations

import dataclasses
import enum
import struct
from collections.abc import Sequence
from typing import Literal, NamedTuple

from proxystore.connectors.dim.exceptions import MessageDecodeError
from proxystore.connectors.protocols import BytesLike

__all__ = [
    "PROTOCOL_VERSION",
    "RPC",
    "DIMKey",
    "DIMType",
    "Op",
    "RPCOperation",
    "RPCResponse",
    "Request",
    "Response",
    "Status",
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_response",
    "pack_frames",
    "unpack_frames",
]

#: Version written into every header; a peer rejects any other version.
PROTOCOL_VERSION = 1
_MAGIC = b"DM"
_REQUEST = struct.Struct("!2sBBIQ")
_RESPONSE = struct.Struct("!2sBBBIQ")
_COUNT = struct.Struct("!I")
_LENGTH = struct.Struct("!Q")

DIMType = Literal["margo", "ucx", "zmq"]


class DIMKey(NamedTuple):
    """Key of an object held by the DIM server of one peer.

    Attributes:
        dim_type: Transport of the peer that holds the object.
        obj_id: Unique id of the object on that peer.
        size: Object length in bytes.
        peer_host: Address of the peer's server.
        peer_port: Port of the peer's server.
    """

    dim_type: DIMType
    obj_id: str
    size: int
    peer_host: str
    peer_port: int


#: Operation names of `RPC` and `RPCResponse`.
RPCOperation = Literal["exists", "evict", "get", "put"]


@dataclasses.dataclass
class RPC:
    """A DIM request as an object, for code written against proxystore-ex.

    Our transports do not send these (they use the binary header above); they are
    accepted by `proxystore.connectors.dim.zmq.ZeroMQServer.handle_rpc`.

    Attributes:
        operation: What to do with ``key``.
        key: The object's key.
        data: The object's bytes, for a ``put``.
    """

    operation: RPCOperation
    key: DIMKey
    data: BytesLike | None = None


@dataclasses.dataclass
class RPCResponse:
    """The outcome of an [`RPC`][proxystore.connectors.dim.models.RPC].

    Attributes:
        operation: The request's operation.
        key: The request's key.
        data: The object's bytes for a ``get`` (``None`` when missing).
        exists: Whether the object exists, for an ``exists``.
        exception: The error the operation raised, if any.
    """

    operation: RPCOperation
    key: DIMKey
    data: BytesLike | None = None
    exists: bool | None = None
    exception: Exception | None = None


class Op(enum.IntEnum):
    """Operation requested from a DIM server."""

    PING = 0
    PUT = 1
    GET = 2
    EXISTS = 3
    EVICT = 4
    #: Add or renew holds (reference counting): the payload is a JSON list of
    #: ``[obj_id, holder, lease, token, transfer_lease]``; the answer a JSON list
    #: of booleans.
    HOLD = 5
    #: Drop a hold: the payload is the holder's name; the answer ``1`` when the
    #: object was evicted, else ``0``.
    RELEASE = 6
    #: Store an object that expires: the payload is the time-to-live (8 bytes,
    #: a little-endian double, seconds) followed by the object's bytes.
    PUT_TTL = 7
    #: Set an object's time-to-live: the payload is the seconds as ASCII
    #: (empty: no expiry); MISSING when there is no such object.
    EXPIRE = 8
    #: Ask an object's time-to-live: the answer's payload is the seconds left as
    #: ASCII (empty: no expiry); MISSING when there is no such object.
    TTL = 9


class Status(enum.IntEnum):
    """Outcome reported by a DIM server."""

    #: Done; a get response carries the object, an exists response means "present".
    OK = 0
    #: No object under that id (a get returns ``None``, exists returns ``False``).
    MISSING = 1
    #: The server failed; the response text says why.
    ERROR = 2


class Request(NamedTuple):
    """A client request; ``payload`` holds the object's buffers for a put."""

    op: Op
    obj_id: str = ""
    payload: Sequence[BytesLike] = ()
    request_id: int = 0

    @property
    def size(self) -> int:
        """Total payload length in bytes."""
        return sum(map(len, self.payload))


class Response(NamedTuple):
    """A server response; ``payload`` holds the object's buffers for a get."""

    op: Op
    status: Status
    payload: Sequence[BytesLike] = ()
    request_id: int = 0
    text: str = ""

    @property
    def size(self) -> int:
        """Total payload length in bytes."""
        return sum(map(len, self.payload))


def encode_request(request: Request, request_id: int | None = None) -> bytes:
    """Return the header of ``request``; its payload travels as separate frames.

    ``request_id`` (a u32), when given, replaces ``request.request_id``: transports
    number requests themselves to match answers to them.
    """
    rid = request.request_id if request_id is None else request_id
    head = _REQUEST.pack(_MAGIC, PROTOCOL_VERSION, request.op, rid, request.size)
    return head + request.obj_id.encode()


def encode_response(response: Response) -> bytes:
    """Return the header of ``response``; its payload travels as separate frames."""
    return (
        _RESPONSE.pack(
            _MAGIC,
            PROTOCOL_VERSION,
            response.op,
            response.status,
            response.request_id,
            response.size,
        )
        + response.text.encode()
    )


def decode_request(header: BytesLike, payload: Sequence[BytesLike] = ()) -> Request:
    """Rebuild a request from its header and payload frames.

    Raises:
        MessageDecodeError: If the header is truncated, has a wrong magic tag, version
            or operation, or the payload length differs from the declared size.
    """
    try:
        magic, version, op, request_id, size = _REQUEST.unpack_from(header)
    except struct.error:
        raise _short(header, _REQUEST, "request") from None
    if magic != _MAGIC or version != PROTOCOL_VERSION:
        raise _foreign(magic, version, "request")
    try:
        obj_id = str(header[_REQUEST.size :], "utf-8")
    except UnicodeDecodeError as exc:
        raise MessageDecodeError("DIM request carries an invalid object id") from exc
    request = Request(_op(op), obj_id, payload, request_id)
    _check_size(request.size, size, "request")
    return request


def decode_response(header: BytesLike, payload: Sequence[BytesLike] = ()) -> Response:
    """Rebuild a response from its header and payload frames.

    Raises:
        MessageDecodeError: If the header is truncated, has a wrong magic tag, version,
            operation or status, or the payload length differs from the declared size.
    """
    try:
        magic, version, op, status, request_id, size = _RESPONSE.unpack_from(header)
    except struct.error:
        raise _short(header, _RESPONSE, "response") from None
    if magic != _MAGIC or version != PROTOCOL_VERSION:
        raise _foreign(magic, version, "response")
    if status >= len(_STATUSES):
        raise MessageDecodeError(f"DIM response has unknown status {status}")
    text = str(header[_RESPONSE.size :], "utf-8", "replace")
    response = Response(_op(op), _STATUSES[status], payload, request_id, text)
    _check_size(response.size, size, "response")
    return response


# Table lookups: calling an IntEnum to convert costs more than a whole decode.
_OPS = tuple(Op)
_STATUSES = tuple(Status)
assert [int(op) for op in _OPS] == list(range(len(_OPS)))
assert [int(status) for status in _STATUSES] == list(range(len(_STATUSES)))


def _short(header: BytesLike, layout: struct.Struct, kind: str) -> MessageDecodeError:
    return MessageDecodeError(
        f"DIM {kind} header is {len(header)} bytes, expected at least {layout.size}",
    )


def _foreign(magic: bytes, version: int, kind: str) -> MessageDecodeError:
    if magic != _MAGIC:
        return MessageDecodeError(f"DIM {kind} has wrong magic tag {magic!r}")
    return MessageDecodeError(
        f"DIM {kind} uses protocol version {version}, this peer speaks "
        f"{PROTOCOL_VERSION}",
    )


def _op(value: int) -> Op:
    if value >= len(_OPS):
        raise MessageDecodeError(f"DIM message has unknown operation {value}")
    return _OPS[value]


def _check_size(actual: int, declared: int, kind: str) -> None:
    if actual != declared:
        raise MessageDecodeError(
            f"DIM {kind} payload is {actual} bytes but its header declares {declared}",
        )


def pack_frames(frames: Sequence[BytesLike]) -> bytes:
    """Join a message's frames into one buffer (for transports without frames).

    Layout: frame count u32, each frame's length u64, then the frames back to back.
    """
    lengths = b"".join(_LENGTH.pack(len(frame)) for frame in frames)
    return b"".join([_COUNT.pack(len(frames)), lengths, *frames])


def unpack_frames(data: BytesLike) -> list[memoryview]:
    """Split a buffer made by `pack_frames` into views of its frames (no copy).

    Raises:
        MessageDecodeError: If the buffer is shorter or longer than its lengths say.
    """
    view = memoryview(data).cast("B")
    if len(view) < _COUNT.size:
        raise MessageDecodeError("DIM message is too short to hold its frame count")
    (count,) = _COUNT.unpack_from(view)
    offset = _COUNT.size + count * _LENGTH.size
    if len(view) < offset:
        raise MessageDecodeError(
            f"DIM message declares {count} frames but is only {len(view)} bytes",
        )
    frames = []
    for index in range(count):
        (length,) = _LENGTH.unpack_from(view, _COUNT.size + index * _LENGTH.size)
        frames.append(view[offset : offset + length])
        offset += length
    if offset != len(view):
        raise MessageDecodeError(
            f"DIM message frames total {offset} bytes but the buffer has {len(view)}",
        )
    return frames
