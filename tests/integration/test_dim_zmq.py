"""Two DIM ZeroMQ peers on two loopback addresses (see `dim_scenarios`)."""

from __future__ import annotations

import os

from proxystore.connectors.dim.zmq import ZeroMQConnector
from tests.integration.dim_scenarios import Peer, PeerScenarios


class TestZeroMQPeers(PeerScenarios):
    module = "proxystore.connectors.dim.zmq"
    connector_name = "ZeroMQConnector"

    def test_chunked_peer_serves_an_unchunked_one(
        self, peers: tuple[Peer, Peer]
    ) -> None:
        a, b = peers
        with (
            ZeroMQConnector(a.port, address=a.host) as on_a,
            ZeroMQConnector(b.port, address=b.host, chunk_length=64 * 1024) as on_b,
        ):
            big = os.urandom(1024 * 1024)
            key = on_a.put(big)
            assert on_b.get(key) == big
            assert on_b.get_batch([key, on_b.put(big)]) == [big, big]
