"""The seam between the DIM connectors and the libraries that move bytes.

A transport is one small module (``zmq``, ``ucx``, ``margo``) that supplies two
things:

* a client, satisfying :class:`Transport`, which sends requests to a peer's server
  and returns its responses within a time limit;
* a ``serve`` function, satisfying :class:`ServeFunction`, which the server process
  (``python -m proxystore.connectors.dim``) runs to answer requests with a
  transport-independent handler (:class:`proxystore.connectors.dim.server.DIMStorage`).

Everything else (keys, message encoding, storage, spawning and stopping server
processes, the connector API) is shared.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from proxystore.connectors.dim.exceptions import ServerTimeoutError
from proxystore.connectors.dim.models import Request, Response

__all__ = ["RequestHandler", "ServeFunction", "Transport", "timeout_error"]

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
        chunk_length: int | None,
        should_stop: Callable[[], bool],
    ) -> None:
        """Bind ``address:port`` and answer each request with ``handler``.

        Returns soon (within about 0.1 s) after ``should_stop()`` becomes true.
        """
        ...


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
