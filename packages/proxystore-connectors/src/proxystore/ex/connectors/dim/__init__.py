"""Alias of `proxystore.connectors.dim` under its proxystore-ex name.

Import the transport modules (``zmq``, ``ucx``, ``margo``) directly.
"""

__all__: list[str] = []
