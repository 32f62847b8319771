"""Store laws over Redis, Valkey and Redis Cluster connectors.

The connector fixtures are class-scoped (Hypothesis reruns each law many times) and
therefore class methods: pytest deprecates class-scoped instance-method fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from proxystore.connectors.redis import RedisConnector
from tests.conformance.store_laws import StoreLaws
from tests.integration.harness import ServerAddress


class TestRedisStoreLaws(StoreLaws):
    @pytest.fixture(scope="class")
    @classmethod
    def store_connector(cls, redis_server: ServerAddress) -> Iterator[RedisConnector]:
        with RedisConnector(redis_server.host, redis_server.port) as connector:
            yield connector


class TestValkeyStoreLaws(StoreLaws):
    @pytest.fixture(scope="class")
    @classmethod
    def store_connector(cls, valkey_server: ServerAddress) -> Iterator[RedisConnector]:
        with RedisConnector(valkey_server.host, valkey_server.port) as connector:
            yield connector


class TestRedisClusterStoreLaws(StoreLaws):
    @pytest.fixture(scope="class")
    @classmethod
    def store_connector(
        cls, redis_cluster: list[ServerAddress]
    ) -> Iterator[RedisConnector]:
        seed = redis_cluster[0]
        with RedisConnector(seed.host, seed.port, clustered=True) as connector:
            yield connector
