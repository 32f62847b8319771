"""Alias of :mod:`proxystore.connectors.dim.exceptions` under its proxystore-ex name."""

from __future__ import annotations

from proxystore.connectors.dim.exceptions import DIMServerError as DIMServerError
from proxystore.connectors.dim.exceptions import (
    MessageDecodeError as MessageDecodeError,
)
from proxystore.connectors.dim.exceptions import (
    ServerTimeoutError as ServerTimeoutError,
)
from proxystore.connectors.dim.exceptions import (
    TransportUnavailableError as TransportUnavailableError,
)

__all__ = [
    "DIMServerError",
    "MessageDecodeError",
    "ServerTimeoutError",
    "TransportUnavailableError",
]
