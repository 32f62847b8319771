"""Errors raised by peer-to-peer connections.

```
Exception
└── PeerConnectionError
    ├── PeerConnectionClosedError    (also aiortc's InvalidStateError)
    └── PeerConnectionTimeoutError   (also a TimeoutError)
```
"""

from __future__ import annotations

from aiortc.exceptions import InvalidStateError

__all__ = [
    "PeerConnectionClosedError",
    "PeerConnectionError",
    "PeerConnectionTimeoutError",
]


class PeerConnectionError(Exception):
    """Raised when a peer connection cannot be made, fails or is closed."""


class PeerConnectionClosedError(PeerConnectionError, InvalidStateError):
    """Raised when a peer connection was closed (by either side) or failed.

    It is also aiortc's `InvalidStateError`, which is what ProxyStore 1.1.0 lets
    through from its data channels when a message is sent after the peer closed.
    """


class PeerConnectionTimeoutError(PeerConnectionError, TimeoutError):
    """Raised when a peer connection operation does not finish within its timeout."""
