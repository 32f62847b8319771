"""Alias of :mod:`proxystore.connectors.dim.ucx` under its proxystore-ex name."""

from __future__ import annotations

from proxystore.connectors.dim.ucx import UCXConnector as UCXConnector
from proxystore.connectors.dim.ucx import UCXTransport as UCXTransport
from proxystore.connectors.dim.ucx import serve as serve
from proxystore.connectors.dim.ucx import spawn_server as spawn_server
from proxystore.connectors.dim.ucx import start_server as start_server
from proxystore.connectors.dim.ucx import wait_for_server as wait_for_server

__all__ = [
    "UCXConnector",
    "UCXTransport",
    "serve",
    "spawn_server",
    "start_server",
    "wait_for_server",
]
