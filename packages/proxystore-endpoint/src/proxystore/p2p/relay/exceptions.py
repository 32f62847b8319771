"""Errors raised by the relay client and server.

```
Exception
├── RelayClientError
│   ├── RelayConnectionError   (also a ConnectionError, hence an OSError)
│   ├── RelayNotConnectedError
│   └── RelayRegistrationError
└── RelayServerError
    ├── BadRequestError        (400)
    ├── UnauthorizedError      (401)
    ├── ForbiddenError         (403)
    ├── ConflictError          (409)
    └── InternalServerError    (500)
```
"""

from __future__ import annotations

__all__ = [
    "BadRequestError",
    "ConflictError",
    "ForbiddenError",
    "InternalServerError",
    "RelayClientError",
    "RelayConnectionError",
    "RelayNotConnectedError",
    "RelayRegistrationError",
    "RelayServerError",
    "UnauthorizedError",
]


class RelayClientError(Exception):
    """Base class for errors raised by a relay client."""


class RelayConnectionError(RelayClientError, ConnectionError):
    """Raised when the relay cannot be reached (nothing listening, timeout, DNS).

    It is a `ConnectionError` so that code retrying on `OSError`, as the relay
    clients of ProxyStore 1.1.0 expect of a relay that is not up yet, retries it;
    a live relay turning the client down is a `RelayRegistrationError` instead.
    """


class RelayNotConnectedError(RelayClientError):
    """Raised when the client is used before its connection to the relay is open."""


class RelayRegistrationError(RelayClientError):
    """Raised when the relay refuses or fails to register a client."""


class RelayServerError(Exception):
    """Base class for errors the relay server reports to a client."""


class BadRequestError(RelayServerError):
    """Raised when a client's request to the relay is malformed (HTTP 400)."""


class UnauthorizedError(RelayServerError):
    """Raised when a client gave no valid credentials (HTTP 401)."""


class ForbiddenError(RelayServerError):
    """Raised when a client's credentials do not grant access (HTTP 403)."""


class ConflictError(RelayServerError):
    """Raised when a client asks for a UUID a live connection holds (HTTP 409)."""


class InternalServerError(RelayServerError):
    """Raised when the relay failed while handling a request (HTTP 500)."""
