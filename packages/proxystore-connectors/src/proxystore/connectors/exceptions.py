"""Errors raised by connectors.

Client-library exceptions are translated at one boundary per connector, so callers
only ever see this tree::

    ConnectorError
    ├── ConnectorConnectionError   a server cannot be reached (names host:port)
    ├── ConnectorTimeoutError      an operation took longer than allowed
    ├── CorruptPayloadError        stored bytes fail an integrity check
    ├── ForeignFileError           a file at one of our names is not safely ours
    ├── MultiConnectorError        routing problem inside a MultiConnector
    └── SharedMemoryFullError      (proxystore.connectors.shm) no room in /dev/shm
"""

from __future__ import annotations

__all__ = [
    "ConnectorConnectionError",
    "ConnectorError",
    "ConnectorTimeoutError",
    "CorruptPayloadError",
    "ForeignFileError",
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


class ForeignFileError(ConnectorError, PermissionError):
    """Raised when a file at a name the connector uses is not safely its own.

    Names in a directory every user can write (such as ``/dev/shm``) can be taken
    by anyone: another local user may have created the file to read or rewrite
    what we would store in it. The connector refuses a file that belongs to
    another user, that other users may open, that is not a regular file (a
    symbolic link, a FIFO), or a key that names another user's objects. Nothing
    is read from or written to the file. The message names the path, what is
    wrong and what to do.
    """

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


class MultiConnectorError(ConnectorError):
    """Raised when a MultiConnector cannot route an operation."""
