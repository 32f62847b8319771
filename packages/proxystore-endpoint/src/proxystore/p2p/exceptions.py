"""Errors raised by peer-to-peer connections.

```
Exception
└── PeerConnectionError
    └── PeerConnectionTimeoutError   (also a TimeoutError)
```
"""

from __future__ import annotations

__all__ = ["PeerConnectionError", "PeerConnectionTimeoutError"]


class PeerConnectionError(Exception):
    """Raised when a peer connection cannot be made, fails or is closed."""


class PeerConnectionTimeoutError(PeerConnectionError, TimeoutError):
    """Raised when a peer connection operation does not finish within its timeout."""
