"""RedisConnector specifics against a real server (beyond the shared suite)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator

import pytest
import redis.exceptions

from proxystore.connectors.exceptions import ConnectorError
from proxystore.connectors.redis import _LARGE_REPLY, RedisConnector, RedisKey
from tests.integration.harness import ServerAddress
from tests.integration.harness.redis import redis_command

_MIB = 1 << 20


@pytest.fixture
def connector(redis_server: ServerAddress) -> Iterator[RedisConnector]:
    with RedisConnector(redis_server.host, redis_server.port) as connector:
        yield connector


@pytest.mark.parametrize(
    "size",
    [_LARGE_REPLY - 1, _LARGE_REPLY, _LARGE_REPLY + 1, 3 * _MIB + 7, 0],
)
def test_values_around_the_large_reply_threshold(
    connector: RedisConnector, size: int
) -> None:
    data = os.urandom(size)
    key = connector.put(data)
    got = connector.get(key)
    assert got is not None
    assert len(got) == size
    if size >= _LARGE_REPLY and importlib.util.find_spec("hiredis") is None:
        assert isinstance(got, bytearray)  # received in place
    assert got == data
    # The connection is still in step with the server afterwards.
    small = connector.put(b"after")
    assert connector.get(small) == b"after"


def test_get_batch_mixes_large_small_and_missing(connector: RedisConnector) -> None:
    values = [os.urandom(2 * _MIB), b"tiny", os.urandom(_MIB + 3)]
    keys = connector.put_batch(values)
    missing = RedisKey("missing-" + os.urandom(8).hex())
    got = connector.get_batch([keys[0], missing, keys[1], keys[2]])
    assert [None if v is None else bytes(v) for v in got] == [
        values[0],
        None,
        values[1],
        values[2],
    ]


def test_clear_flushes_the_database(redis_server: ServerAddress) -> None:
    # A private database number keeps the shared session server's db 0 intact.
    with RedisConnector(redis_server.host, redis_server.port, db=7) as connector:
        key = connector.put(b"x")
        connector.close(clear=True)
        assert not connector.exists(key)  # reconnects lazily after close
    assert redis_command(redis_server, "PING").startswith(b"+PONG")


def test_clustered_batch_shares_one_hash_slot(
    redis_cluster: list[ServerAddress],
) -> None:
    seed = redis_cluster[0]
    with RedisConnector(seed.host, seed.port, clustered=True) as connector:
        keys = connector.put_batch([b"a", b"b", b"c"])
        tags = {key.redis_key[: key.redis_key.index("}") + 1] for key in keys}
        assert len(tags) == 1
        assert [bytes(v or b"") for v in connector.get_batch(keys)] == [
            b"a",
            b"b",
            b"c",
        ]


@pytest.mark.parametrize("clustered", [False, True])
def test_get_evict_without_getdel_falls_back(
    redis_server: ServerAddress,
    redis_cluster: list[ServerAddress],
    clustered: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A server older than Redis 6.2 answers GETDEL with "unknown command".
    server = redis_cluster[0] if clustered else redis_server

    def no_getdel(*args: object) -> None:
        raise redis.exceptions.ResponseError("unknown command 'GETDEL'")

    with RedisConnector(server.host, server.port, clustered=clustered) as connector:
        data = os.urandom(_LARGE_REPLY + 5)
        keys = [connector.put(data), connector.put(b"small")]
        monkeypatch.setattr(type(connector._redis), "getdel", no_getdel)
        assert connector.get_evict(keys[0]) == data
        assert connector.get_evict(keys[1]) == b"small"
        assert not connector._has_getdel  # not tried again
        assert not connector.exists(keys[0])
        assert connector.get_evict(keys[1]) is None


def test_get_evict_other_server_errors_are_translated(
    connector: RedisConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> None:
        raise redis.exceptions.ResponseError("WRONGTYPE wrong kind of value")

    monkeypatch.setattr(type(connector._redis), "getdel", refuse)
    with pytest.raises(ConnectorError, match="WRONGTYPE"):
        connector.get_evict(RedisKey("k"))
    assert connector._has_getdel
