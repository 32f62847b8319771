"""Endpoints: small object stores that serve a site and peer with other sites.

An endpoint is a process that keeps byte objects for the clients on its host (or
local network) behind a REST API (`proxystore.endpoint.serve`). Endpoints
registered with the same relay server reach each other's objects: a request whose
`endpoint` parameter names another endpoint is forwarded to it, over a direct HTTP
connection when the peer is reachable and over a WebRTC data channel otherwise.

Users reach endpoints through `proxystore.connectors.endpoint.EndpointConnector`
and manage them with the `proxystore-endpoint` command line tool
(`proxystore.endpoint.cli`).
"""

from __future__ import annotations

__all__: list[str] = []
