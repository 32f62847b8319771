"""Peer-to-peer distributed in-memory (DIM) connectors.

Every peer runs a small server process holding the objects it puts; a key names the
peer (host and port) that holds its object, and a get fetches straight from that
peer. Transports live in their own modules and import their library only there:

* `proxystore.connectors.dim.zmq` - ``ZeroMQConnector`` (pyzmq, the ``zmq``
  extra);
* `proxystore.connectors.dim.ucx` - ``UCXConnector`` (needs ``ucxx``);
* `proxystore.connectors.dim.margo` - ``MargoConnector`` (needs ``pymargo``).

This package exports only the shared, dependency-free pieces.
"""

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
from proxystore.connectors.dim.models import DIMKey as DIMKey
from proxystore.connectors.dim.utils import get_ip_address as get_ip_address

__all__ = [
    "DIMKey",
    "DIMServerError",
    "MessageDecodeError",
    "ServerTimeoutError",
    "TransportUnavailableError",
    "get_ip_address",
]
