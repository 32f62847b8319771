"""Reference counting on a real Redis: the Lua scripts and the object's expiry."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from proxystore.connectors._holders_redis import RedisHolders, holders_key
from proxystore.connectors.holders import Hold, Release
from proxystore.connectors.redis import RedisConnector
from proxystore.store.base import Store
from proxystore.store.exceptions import RefCountNotSupportedError
from tests.integration.harness import ServerAddress

pytestmark = pytest.mark.integration


@pytest.fixture
def connector(redis_server: ServerAddress) -> Iterator[RedisConnector]:
    host, port = redis_server
    with RedisConnector(host, port) as made:
        yield made


@pytest.fixture
def client(redis_server: ServerAddress) -> Iterator[redis.Redis]:
    host, port = redis_server
    made = redis.Redis(host=host, port=port)
    try:
        yield made
    finally:
        made.close()


def test_expiry_follows_the_latest_live_hold(
    connector: RedisConnector, client: redis.Redis
) -> None:
    holders = RedisHolders(connector)
    key = connector.put(b"data")
    name = key.redis_key
    assert holders.hold([Hold(key, "p", 2.0)]) == [True]
    assert 1000 < client.pttl(name) <= 2000
    # A transfer in flight stretches the expiry to its lease...
    holders.hold([Hold(key, "", 30.0, "tok")])
    assert 20_000 < client.pttl(name) <= 30_000
    # ...and its conversion brings it back to the holders' leases.
    holders.hold([Hold(key, "w", 2.0, "tok", 30.0)])
    assert 1000 < client.pttl(name) <= 2000
    assert set(client.hgetall(holders_key(name))) == {b"p", b"w", b"c:tok"}
    # The conversion's trace (one interval: half its lease) keeps it a moment.
    assert holders.apply([Release(key, "p"), Release(key, "w")]) == [False, False]
    assert 0 < client.pttl(name) <= 1000
    time.sleep(1.05)
    assert not client.exists(name)
    assert not client.exists(holders_key(name))
    assert holders.hold([Hold(key, "p", 2.0)]) == [False]  # gone: not recorded


def test_tombstone_keeps_the_object_until_its_transfer_arrives(
    connector: RedisConnector, client: redis.Redis
) -> None:
    holders = RedisHolders(connector)
    key = connector.put(b"data")
    # The receiver converts and releases before the sender's messages land.
    holders.hold([Hold(key, "w", 0.4, "tok", 30.0)])
    assert not holders.release(key, "w")
    time.sleep(0.25)  # the conversion's trace (0.2 s) lapses: the tombstone stays
    assert client.exists(key.redis_key)
    assert holders.apply(
        [Hold(key, "p", 2.0), Hold(key, "", 30.0, "tok"), Release(key, "p")]
    ) == [True, True, True]
    assert not client.exists(key.redis_key)


def test_copies_of_one_pickle_are_each_covered(
    connector: RedisConnector, client: redis.Redis
) -> None:
    # Two workers unpickle the same bytes (one token); the first converts, the
    # producer and the first worker release, then the second converts.
    holders = RedisHolders(connector)
    key = connector.put(b"data")
    assert holders.apply(
        [
            Hold(key, "p", 2.0),
            Hold(key, "", 30.0, "tok"),
            Hold(key, "w1", 2.0, "tok", 30.0),
            Release(key, "p"),
            Release(key, "w1"),
            Hold(key, "w2", 2.0, "tok", 30.0),
        ]
    ) == [True, True, True, False, False, True]
    # No tombstone for the second copy: its transfer had arrived.
    assert set(client.hgetall(holders_key(key.redis_key))) == {b"w2", b"c:tok"}
    assert 1000 < client.pttl(key.redis_key) <= 2000


def test_heartbeat_renews_each_key_once(
    connector: RedisConnector, client: redis.Redis
) -> None:
    holders = RedisHolders(connector)
    kept, gone = connector.put(b"a"), connector.put(b"b")
    holders.hold([Hold(kept, "p", 1.0), Hold(gone, "p", 1.0)])
    connector.evict(gone)
    assert holders.renew([kept, gone], "p", 30.0) == [True, False]
    assert 20_000 < client.pttl(kept.redis_key) <= 30_000
    assert not client.exists(gone.redis_key)


def test_release_without_holds_evicts(connector: RedisConnector) -> None:
    holders = RedisHolders(connector)
    key = connector.put(b"data")
    assert holders.release(key, "p")
    assert not connector.exists(key)
    with pytest.raises(ValueError, match="positive"):
        holders.hold([Hold(key, "p", 0.0)])


def test_cluster_is_refused_before_storing(redis_server: ServerAddress) -> None:
    host, port = redis_server
    connector = RedisConnector(host, port, clustered=True)
    with (
        Store("refcount-cluster", connector) as store,
        pytest.raises(RefCountNotSupportedError, match="Cluster"),
    ):
        store.proxy([1], refcount=True)


def test_one_batch_packs_mixed_ops_and_any_key(
    connector: RedisConnector, client: redis.Redis
) -> None:
    # One message: holds, releases by the batch's own holder and by another,
    # keys and holders of any characters (field lengths are counted in bytes).
    holders = RedisHolders(connector)
    odd = connector.put(b"odd")
    plain = connector.put(b"plain")
    client.rename(odd.redis_key, "ключ:1:x")
    odd = type(odd)("ключ:1:x")
    found = holders.apply(
        [
            Hold(odd, "höld:er", 2.0),
            Hold(odd, "me", 2.0),
            Hold(plain, "me", 2.0),
            Release(plain, "me"),
            Release(odd, "höld:er"),
            Release(odd, "me"),
        ]
    )
    assert found == [True, True, True, True, False, True]
    assert not client.exists("ключ:1:x")
    assert not client.exists(plain.redis_key)
    assert not client.exists(holders_key("ключ:1:x"))
