"""Alias of :mod:`proxystore.connectors.dim.models` under its proxystore-ex name."""

from __future__ import annotations

from proxystore.connectors.dim.models import PROTOCOL_VERSION as PROTOCOL_VERSION
from proxystore.connectors.dim.models import RPC as RPC
from proxystore.connectors.dim.models import DIMKey as DIMKey
from proxystore.connectors.dim.models import DIMType as DIMType
from proxystore.connectors.dim.models import Op as Op
from proxystore.connectors.dim.models import Request as Request
from proxystore.connectors.dim.models import Response as Response
from proxystore.connectors.dim.models import RPCOperation as RPCOperation
from proxystore.connectors.dim.models import RPCResponse as RPCResponse
from proxystore.connectors.dim.models import Status as Status
from proxystore.connectors.dim.models import decode_request as decode_request
from proxystore.connectors.dim.models import decode_response as decode_response
from proxystore.connectors.dim.models import encode_request as encode_request
from proxystore.connectors.dim.models import encode_response as encode_response
from proxystore.connectors.dim.models import pack_frames as pack_frames
from proxystore.connectors.dim.models import unpack_frames as unpack_frames

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
