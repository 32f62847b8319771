"""Errors raised by the distributed in-memory (DIM) connectors.

They extend the connector tree of `proxystore.connectors.exceptions`::

    ConnectorError
    ├── ConnectorTimeoutError
    │   └── ServerTimeoutError      a peer did not answer in time (names host:port)
    ├── CorruptPayloadError
    │   └── MessageDecodeError      a wire message is malformed or of another version
    ├── DIMServerError              a peer answered with an error (names host:port)
    └── TransportUnavailableError   the transport's library is not installed
                                    (also an ImportError)
"""

from __future__ import annotations

from proxystore.connectors.exceptions import (
    ConnectorError,
    ConnectorTimeoutError,
    CorruptPayloadError,
)

__all__ = [
    "DIMServerError",
    "MessageDecodeError",
    "ServerTimeoutError",
    "TransportUnavailableError",
]


class ServerTimeoutError(ConnectorTimeoutError):
    """Raised when a DIM server does not answer within the allowed time.

    Attributes:
        address: ``host:port`` of the server that did not answer.
    """

    def __init__(self, message: str, *, address: str | None = None) -> None:
        super().__init__(message)
        self.address = address


class MessageDecodeError(CorruptPayloadError):
    """Raised when bytes received from a DIM peer are not a valid message.

    Covers truncated headers, a wrong magic tag, an unknown protocol version or
    operation, and payloads whose length differs from the declared size.
    """


class DIMServerError(ConnectorError):
    """Raised when a DIM server reports that it failed to perform a request.

    Attributes:
        address: ``host:port`` of the server that failed.
    """

    def __init__(self, message: str, *, address: str | None = None) -> None:
        super().__init__(message)
        self.address = address


class TransportUnavailableError(ConnectorError, ImportError):
    """Raised when a DIM transport's client library is not installed.

    The message names the missing package and how to install it.
    """
