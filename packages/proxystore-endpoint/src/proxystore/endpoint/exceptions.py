"""Errors raised by endpoints.

The tree::

    EndpointError
    ├── EndpointListenError         the endpoint cannot listen on its address (OSError)
    ├── FileDumpNotAvailableError   dumping objects to a file is not supported
    ├── MissingDataError            a set for a peer carries no data (also TypeError
    │                               and AssertionError, what the reference raises)
    ├── ObjectSizeExceededError     an object is larger than the endpoint accepts
    ├── PeeringNotAvailableError    a peer operation on an endpoint without peering
    └── PeerRequestError            a request forwarded to a peer endpoint failed
        ├── UnknownPeerError        no endpoint with that UUID can be reached
        ├── RelayUnavailableError   this endpoint is not connected to its relay
        └── PeerTimeoutError        the peer did not answer in time (also TimeoutError)
"""

from __future__ import annotations

__all__ = [
    "EndpointError",
    "EndpointListenError",
    "FileDumpNotAvailableError",
    "MissingDataError",
    "ObjectSizeExceededError",
    "PeerRequestError",
    "PeerTimeoutError",
    "PeeringNotAvailableError",
    "RelayUnavailableError",
    "UnknownPeerError",
]


class EndpointError(Exception):
    """Base class of the errors raised by endpoints."""


class EndpointListenError(EndpointError, OSError):
    """Raised when an endpoint cannot listen on its host and port.

    The message names the address and what to change.
    """


class FileDumpNotAvailableError(EndpointError):
    """Raised when dumping an endpoint's objects to a file is asked for."""


class MissingDataError(EndpointError, TypeError, AssertionError):
    """Raised when a set forwarded to a peer endpoint has `None` as its data.

    The reference refuses such a request with an `AssertionError`; this error is
    one too (and a `TypeError`, which is what it is), so code catching either
    keeps working.
    """


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


class RelayUnavailableError(PeerRequestError):
    """Raised when a peer can only be reached through a relay that is not connected.

    The message names the relay's address.
    """


class PeerTimeoutError(PeerRequestError, TimeoutError):
    """Raised when a peer endpoint does not answer a request in time."""
