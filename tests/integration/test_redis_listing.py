"""Listing a real Redis: the bare-socket path, the client path, and their errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from proxystore.connectors import _redis_list
from proxystore.connectors.exceptions import ConnectorConnectionError
from proxystore.connectors.redis import RedisConnector, RedisKey
from proxystore.proxy import get_factory
from proxystore.store import Store, refcount
from proxystore.store.factory import StoreFactory
from tests.integration.harness import ServerAddress
from tests.integration.harness.secure_redis import SecureRedis

_DB = 10


@pytest.fixture
def connector(redis_server: ServerAddress) -> Iterator[RedisConnector]:
    c = RedisConnector(redis_server.host, redis_server.port, db=_DB)
    c.close(clear=True)
    yield c
    c.close(clear=True)


def _listing(c: RedisConnector) -> dict[RedisKey, tuple[int | None, float | None]]:
    return {info.key: (info.size, info.ttl) for info in c.scan()}


def test_bare_socket_and_client_paths_agree(connector: RedisConnector) -> None:
    plain = connector.put(b"x" * 7)
    expiring = connector.put(b"y" * 3, ttl=100)
    # A hash: not a string value, so not one of ours.
    connector._redis.hset("not-ours", "f", "v")
    assert _redis_list.can_list(connector.config())
    fast = _listing(connector)
    # An option the bare socket does not handle sends it through the client.
    slow_connector = RedisConnector(
        connector.hostname, connector.port, db=_DB, health_check_interval=0
    )
    assert not _redis_list.can_list(slow_connector.config())
    slow = _listing(slow_connector)
    slow_connector.close()
    for listing in (fast, slow):
        assert set(listing) == {plain, expiring}
        assert listing[plain] == (7, None)
        size, ttl = listing[expiring]
        assert size == 3
        assert ttl is not None
        assert 90 < ttl <= 100


def test_bare_socket_authenticates(secure_redis: SecureRedis) -> None:
    host, port = secure_redis.plain
    with RedisConnector(host, port, password=secure_redis.password, db=_DB) as c:
        key = c.put(b"secret", ttl=50)
        try:
            assert _redis_list.can_list({**c.config(), **c._secrets})
            listed = {info.key for info in c.scan()}
            assert key in listed
        finally:
            c.evict(key)
    with (
        RedisConnector(host, port, password="wrong") as c,
        pytest.raises(ConnectorConnectionError, match="Cannot list Redis"),
    ):
        list(c.scan())


def test_unreachable_server_is_a_connection_error(redis_server: ServerAddress) -> None:
    with (
        RedisConnector("127.0.0.1", 1) as c,
        pytest.raises(ConnectorConnectionError, match=r"127\.0\.0\.1:1"),
    ):
        list(c.scan())


def test_listing_names_the_holders_of_refcounted_objects(
    connector: RedisConnector,
) -> None:
    with Store("listing-refcount", connector, register=True) as store:
        proxy = store.proxy([1, 2, 3], refcount=True)
        factory = get_factory(proxy)
        assert isinstance(factory, StoreFactory)
        key = factory.key
        assert refcount.flush(10)  # the producer's hold reached the server
        plain = connector.put(b"plain")
        listed = {info.key: info for info in connector.scan()}
        assert set(listed) == {key, plain}  # the holders hash is not an object
        holders = listed[key].holders
        assert holders is not None
        assert len(holders) >= 1
        assert listed[plain].holders is None
        refcount.release(proxy)
        assert refcount.flush(10)
