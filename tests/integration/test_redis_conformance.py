"""Redis, Valkey and Redis Cluster connectors pass the shared connector suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from proxystore.connectors.redis import RedisConnector
from tests.conformance.connector_suite import ConnectorSuite
from tests.integration.harness import ServerAddress


class TestRedisConformance(ConnectorSuite):
    @pytest.fixture
    def connector(self, redis_server: ServerAddress) -> Iterator[RedisConnector]:
        with RedisConnector(redis_server.host, redis_server.port) as connector:
            yield connector


class TestValkeyConformance(ConnectorSuite):
    @pytest.fixture
    def connector(self, valkey_server: ServerAddress) -> Iterator[RedisConnector]:
        with RedisConnector(valkey_server.host, valkey_server.port) as connector:
            yield connector


class TestRedisClusterConformance(ConnectorSuite):
    @pytest.fixture
    def connector(self, redis_cluster: list[ServerAddress]) -> Iterator[RedisConnector]:
        seed = redis_cluster[0]
        with RedisConnector(seed.host, seed.port, clustered=True) as connector:
            yield connector
