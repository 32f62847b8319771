"""Default sizes used by endpoints and their clients."""

from __future__ import annotations

__all__ = [
    "MAX_CHUNK_LENGTH",
    "MAX_OBJECT_SIZE_DEFAULT",
    "PEER_REQUEST_TIMEOUT_DEFAULT",
]

#: Largest piece (bytes) in which bodies are streamed to and from an endpoint.
MAX_CHUNK_LENGTH = 1_000_000

#: Largest object (bytes) an endpoint stores unless configured otherwise.
MAX_OBJECT_SIZE_DEFAULT = 100_000_000

#: Seconds a request forwarded to a peer endpoint may take before it fails.
PEER_REQUEST_TIMEOUT_DEFAULT = 60.0
