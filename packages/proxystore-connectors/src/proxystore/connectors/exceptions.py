"""Errors raised by connectors.

Client-library exceptions are translated at one boundary per connector, so callers
only ever see this tree::

    ConnectorError
    ├── ConnectorConnectionError   a server cannot be reached (names host:port)
    ├── ConnectorTimeoutError      an operation took longer than allowed
    ├── CorruptPayloadError        stored bytes fail an integrity check
    └── MultiConnectorError        routing problem inside a MultiConnector
"""

from __future__ import annotations

__all__ = [
    "ConnectorConnectionError",
    "ConnectorError",
    "ConnectorTimeoutError",
    "CorruptPayloadError",
    "MultiConnectorError",
]


class ConnectorError(Exception):
    """Base class of every error raised by a connector."""


class ConnectorConnectionError(ConnectorError, ConnectionError):
    """Raised when the connector's server cannot be reached.

    The message names the address (``host:port`` or path) that failed.
    """

    def __init__(self, message: str, *, address: str | None = None) -> None:
        super().__init__(message)
        self.address = address


class ConnectorTimeoutError(ConnectorError, TimeoutError):
    """Raised when a connector operation exceeds its time limit."""


class CorruptPayloadError(ConnectorError, ValueError):
    """Raised when stored bytes are truncated or fail an integrity check."""


class MultiConnectorError(ConnectorError):
    """Raised when a MultiConnector cannot route an operation."""
