"""The seam between the DIM connectors and the libraries that move bytes.

A transport is one small module (``zmq``, ``ucx``, ``margo``) that supplies two
things:

* a client, satisfying `Transport`, which sends requests to a peer's server
  and returns its responses within a time limit;
* a ``serve`` function, satisfying `ServeFunction`, which the server process
  (``python -m proxystore.connectors.dim``) runs to answer requests with a
  transport-independent handler (`proxystore.connectors.dim.server.DIMStorage`).

Everything else (keys, message encoding, storage, spawning and stopping server
processes, the connector API) is shared.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Protocol

from proxystore.connectors.dim.exceptions import (
    MessageDecodeError,
    ServerTimeoutError,
    TransportUnavailableError,
)
from proxystore.connectors.dim.models import (
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
from proxystore.connectors.protocols import BytesLike

__all__ = [
    "RequestHandler",
    "ServeFunction",
    "Transport",
    "answer_packed",
    "import_library",
    "no_op",
    "pack_request",
    "respond",
    "timeout_error",
    "unpack_response",
]

RequestHandler = Callable[[Request], Response]


class Transport(Protocol):
    """Client side of a transport: request/response exchanges with peers."""

    def exchange(
        self,
        host: str,
        port: int,
        requests: Sequence[Request],
        timeout: float,
    ) -> list[Response]:
        """Send ``requests`` to the server at ``host:port``; return its responses.

        Responses are in request order. The whole exchange finishes within
        ``timeout`` seconds or fails; afterwards the transport is usable again.

        Raises:
            ServerTimeoutError: If the peer does not answer in time.
            MessageDecodeError: If the peer's answer is malformed.
        """
        ...

    def close(self) -> None:
        """Release every connection; the transport is unusable afterwards."""
        ...


class ServeFunction(Protocol):
    """Server side of a transport: answer requests until told to stop."""

    def __call__(
        self,
        address: str,
        port: int,
        handler: RequestHandler,
        *,
        options: Mapping[str, str],
        should_stop: Callable[[], bool],
        on_ready: Callable[[], None] = ...,
    ) -> None:
        """Bind ``address:port`` and answer each request with ``handler``.

        ``options`` are transport-specific settings given on the server's command
        line (``--option chunk_length=65536``). ``on_ready()`` is called once the
        address is bound (implementations default it to a no-op). Returns soon
        (within about 0.1 s) after ``should_stop()`` becomes true.

        Raises:
            Exception: The transport's own error when the address cannot be bound.
        """
        ...


def no_op() -> None:
    """Do nothing (the default ``on_ready`` of serve functions)."""


def timeout_error(
    host: str, port: int, timeout: float, what: str
) -> ServerTimeoutError:
    """Build the error raised when the server at ``host:port`` does not answer."""
    address = f"{host}:{port}"
    return ServerTimeoutError(
        f"DIM server at {address} did not answer {what} within {timeout:.3g} s "
        "(is the peer running and reachable?)",
        address=address,
    )


def respond(
    handler: RequestHandler,
    header: BytesLike,
    payload: Sequence[BytesLike],
) -> Response:
    """Decode a request and answer it; a malformed request gets an error response.

    The error response echoes the request id when the header holds one, so the
    client fails with the server's reason instead of waiting for a reply it cannot
    match.
    """
    try:
        request = decode_request(header, payload)
    except MessageDecodeError as exc:
        rid = int.from_bytes(header[4:8], "big") if len(header) >= 8 else 0
        return Response(Op.PING, Status.ERROR, request_id=rid, text=str(exc))
    return handler(request)


# Transports that move one buffer per message (UCX, Margo) carry the frames packed.


def pack_request(request: Request, request_id: int) -> bytes:
    """Pack a request's header and payload into one buffer."""
    return pack_frames([encode_request(request, request_id), *request.payload])


def answer_packed(handler: RequestHandler, data: BytesLike) -> bytes:
    """Server side: answer one packed request with one packed response."""
    try:
        header, *payload = unpack_frames(data)
    except (MessageDecodeError, ValueError) as exc:
        response = Response(Op.PING, Status.ERROR, text=f"unreadable message: {exc}")
    else:
        response = respond(handler, header, payload)
    return pack_frames([encode_response(response), *response.payload])


def unpack_response(data: BytesLike) -> Response:
    """Client side: decode one packed response.

    Raises:
        MessageDecodeError: If the buffer is not a packed DIM response.
    """
    try:
        header, *payload = unpack_frames(data)
    except ValueError:
        raise MessageDecodeError("DIM response holds no frames") from None
    return decode_response(header, payload)


def import_library(modules: Sequence[str], transport: str, install: str) -> ModuleType:
    """Import the first of ``modules`` that is installed (a transport's library).

    Transports call this when they are first used, never at import time, so the
    package imports without their heavy optional dependencies.

    Raises:
        TransportUnavailableError: If none is installed; the message names them and
            says how to install one (``install``).
    """
    for name in modules:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    names = " or ".join(repr(name) for name in modules)
    raise TransportUnavailableError(
        f"the DIM {transport} transport needs the {names} package, which is not "
        f"installed; install it with: {install}",
        name=modules[0],
    )
