"""Errors raised by endpoints.

The tree::

    EndpointError
    ├── FileDumpNotAvailableError   dumping objects to a file is not supported
    ├── ObjectSizeExceededError     an object is larger than the endpoint accepts
    ├── PeeringNotAvailableError    a peer operation on an endpoint without peering
    └── PeerRequestError            a request forwarded to a peer endpoint failed
        ├── UnknownPeerError        no endpoint with that UUID can be reached
        └── PeerTimeoutError        the peer did not answer in time (also TimeoutError)
"""

from __future__ import annotations

__all__ = [
    "EndpointError",
    "FileDumpNotAvailableError",
    "ObjectSizeExceededError",
    "PeerRequestError",
    "PeerTimeoutError",
    "PeeringNotAvailableError",
    "UnknownPeerError",
]


class EndpointError(Exception):
    """Base class of the errors raised by endpoints."""


class FileDumpNotAvailableError(EndpointError):
    """Raised when dumping an endpoint's objects to a file is asked for."""


class ObjectSizeExceededError(EndpointError, ValueError):
    """Raised when an object is larger than the endpoint's maximum object size."""


class PeeringNotAvailableError(EndpointError):
    """Raised when a peer operation needs peering the endpoint does not have."""


class PeerRequestError(EndpointError):
    """Raised when a request forwarded to a peer endpoint fails.

    The message names the peer endpoint.
    """


class UnknownPeerError(PeerRequestError):
    """Raised when the peer endpoint named by a request cannot be found."""


class PeerTimeoutError(PeerRequestError, TimeoutError):
    """Raised when a peer endpoint does not answer a request in time."""
