"""The harness itself: each fixture yields a server that answers."""

from __future__ import annotations

from tests.integration.conftest import RestartableServer
from tests.integration.harness import ServerAddress
from tests.integration.harness.redis import ping, redis_command
from tests.integration.harness.servers import wait_for_tcp


def test_redis_server_answers(redis_server: ServerAddress) -> None:
    assert redis_server.host == "127.0.0.1"
    assert ping(redis_server)


def test_valkey_server_is_valkey(valkey_server: ServerAddress) -> None:
    info = redis_command(valkey_server, "INFO", "server")
    assert b"valkey" in info.lower()


def test_redis_cluster_has_three_masters(redis_cluster: list[ServerAddress]) -> None:
    assert len(redis_cluster) == 3
    for node in redis_cluster:
        info = redis_command(node, "CLUSTER", "INFO")
        assert b"cluster_state:ok" in info
        assert b"cluster_known_nodes:3" in info


def test_kafka_server_accepts_connections(kafka_server: ServerAddress) -> None:
    assert wait_for_tcp(kafka_server)


def test_restartable_redis_survives_sigkill(
    restartable_redis: RestartableServer,
) -> None:
    address = restartable_redis.address
    assert redis_command(address, "SET", "k", "v").startswith(b"+OK")
    restartable_redis.kill()
    assert not ping(address)
    restartable_redis.restart()
    assert ping(address)
    assert restartable_redis.address == address
