"""Alias of :mod:`proxystore.connectors.dim.zmq` under its proxystore-ex name."""

from __future__ import annotations

from proxystore.connectors.dim.zmq import ZeroMQConnector as ZeroMQConnector
from proxystore.connectors.dim.zmq import ZeroMQServer as ZeroMQServer
from proxystore.connectors.dim.zmq import ZeroMQTransport as ZeroMQTransport
from proxystore.connectors.dim.zmq import run_server as run_server
from proxystore.connectors.dim.zmq import serve as serve
from proxystore.connectors.dim.zmq import spawn_server as spawn_server
from proxystore.connectors.dim.zmq import start_server as start_server
from proxystore.connectors.dim.zmq import wait_for_server as wait_for_server

__all__ = [
    "ZeroMQConnector",
    "ZeroMQServer",
    "ZeroMQTransport",
    "run_server",
    "serve",
    "spawn_server",
    "start_server",
    "wait_for_server",
]
