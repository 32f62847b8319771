"""Alias of :mod:`proxystore.connectors.dim.margo` under its proxystore-ex name."""

from __future__ import annotations

from proxystore.connectors.dim.margo import MargoConnector as MargoConnector
from proxystore.connectors.dim.margo import MargoTransport as MargoTransport
from proxystore.connectors.dim.margo import Protocol as Protocol
from proxystore.connectors.dim.margo import serve as serve
from proxystore.connectors.dim.margo import spawn_server as spawn_server
from proxystore.connectors.dim.margo import start_server as start_server
from proxystore.connectors.dim.margo import wait_for_server as wait_for_server

__all__ = [
    "MargoConnector",
    "MargoTransport",
    "Protocol",
    "serve",
    "spawn_server",
    "start_server",
    "wait_for_server",
]
