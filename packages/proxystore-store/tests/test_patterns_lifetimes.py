"""Lifetimes: keys are evicted when a lifetime ends, and never before."""

from __future__ import annotations

import atexit
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from proxystore.connectors.local import LocalConnector
from proxystore.proxy import Proxy
from proxystore.store import Store
from proxystore.store.exceptions import ProxyStoreFactoryError
from proxystore.store.lifetimes import (
    ContextLifetime,
    LeaseLifetime,
    Lifetime,
    StaticLifetime,
    register_lifetime_atexit,
)
from proxystore.store.utils import get_key
from tests.integration.test_patterns_support import pattern_store


@pytest.fixture
def store() -> Iterator[Store[LocalConnector]]:
    with pattern_store(LocalConnector(), "lt") as store:
        yield store


def test_every_lifetime_satisfies_the_protocol(store: Store[Any]) -> None:
    lease = LeaseLifetime(store, 60)
    with ContextLifetime(store) as ctx:
        assert isinstance(ctx, Lifetime)
        assert isinstance(lease, Lifetime)
        assert isinstance(StaticLifetime(), Lifetime)
    lease.close()


def test_context_lifetime_evicts_keys_and_proxies_on_exit(store: Store[Any]) -> None:
    with ContextLifetime(store, name="ctx") as lifetime:
        key = store.put("a", lifetime=lifetime)
        proxy = store.proxy("b", lifetime=lifetime)
        other = store.put("c")
        lifetime.add_key(other)
        assert store.exists(key)
        assert proxy == "b"
        assert not lifetime.done()
    assert lifetime.done()
    assert not store.exists(key)
    assert not store.exists(other)
    assert "ctx" in repr(lifetime)


def test_closed_lifetime_refuses_new_keys(store: Store[Any]) -> None:
    lifetime = ContextLifetime(store)
    lifetime.close()
    lifetime.close()  # idempotent
    key = store.put("x")
    with pytest.raises(RuntimeError, match="Lifetime has ended"):
        lifetime.add_key(key)
    store.evict(key)


def test_add_proxy_rejects_non_store_proxies(store: Store[Any]) -> None:
    with (
        ContextLifetime(store) as lifetime,
        pytest.raises(ProxyStoreFactoryError, match="created by a Store"),
    ):
        lifetime.add_proxy(Proxy(lambda: 1))


def test_context_lifetime_can_close_its_store() -> None:
    connector = LocalConnector()
    store = Store(f"lt-{uuid.uuid4().hex}", connector, register=True)
    lifetime = ContextLifetime(store)
    store.put(1, lifetime=lifetime)
    lifetime.close(close_stores=True)
    assert connector._store == {}
    from proxystore.store import get_store

    assert get_store(store.name) is None


def test_lease_expires_and_evicts(store: Store[Any]) -> None:
    lease = LeaseLifetime(store, timedelta(milliseconds=20))
    key = store.put("x", lifetime=lease)
    # Wait on the timer thread rather than sleeping a fixed time.
    timer = lease._timer
    assert timer is not None
    assert timer.daemon
    timer.join(timeout=10)
    assert lease.done()
    assert not store.exists(key)


def test_lease_extend_pushes_expiry(store: Store[Any]) -> None:
    lease = LeaseLifetime(store, 30.0)
    first = lease.expiry
    lease.extend(10)
    assert lease.expiry == pytest.approx(first + 10)
    lease.extend(timedelta(seconds=5))
    assert lease.expiry == pytest.approx(first + 15)
    target = datetime.now() + timedelta(seconds=100)
    lease.extend(target)
    assert lease.expiry == pytest.approx(target.timestamp())
    timer = lease._timer
    assert timer is not None
    lease.close()
    assert not timer.is_alive() or timer.finished.is_set()
    with pytest.raises(RuntimeError, match="Lifetime has ended"):
        lease.extend(1)


def test_static_lifetime_is_a_singleton_with_explicit_stores(
    store: Store[Any],
) -> None:
    lifetime = StaticLifetime()
    assert lifetime is StaticLifetime()
    assert lifetime.name == "static"
    with pytest.raises(ValueError, match="store="):
        lifetime.add_key(("k",))
    proxy = store.proxy(3)
    lifetime.add_proxy(proxy)
    assert lifetime._stores[store.name][1] == {get_key(proxy)}
    # Take the key back so the process-wide singleton stays clean for other tests.
    lifetime._stores.pop(store.name)
    store.evict(get_key(proxy))


def test_closing_static_lifetime_starts_a_fresh_one(store: Store[Any]) -> None:
    first = StaticLifetime()
    saved = dict(first._stores)
    first._stores.clear()
    try:
        key = store.put(1)
        first.add_key(key, store=store)
        # close(close_stores=False) evicts but keeps the store open for the fixture.
        first.close()
        assert not store.exists(key)
        second = StaticLifetime()
        assert second is not first
        assert not second.done()
    finally:
        StaticLifetime()._stores.update(saved)


def test_register_lifetime_atexit_returns_unregistrable_callback(
    store: Store[Any],
) -> None:
    lifetime = ContextLifetime(store)
    key = store.put(1, lifetime=lifetime)
    callback = register_lifetime_atexit(lifetime, close_stores=False)
    atexit.unregister(callback)
    callback()
    assert lifetime.done()
    assert not store.exists(key)


def test_ended_lifetime_refused_before_anything_is_stored() -> None:
    data: dict[Any, bytes] = {}
    with Store("ended-lifetime", LocalConnector(data)) as store:
        lifetime = ContextLifetime(store)
        lifetime.close()
        with pytest.raises(RuntimeError, match="ended"):
            store.proxy([1, 2], lifetime=lifetime)
        with pytest.raises(RuntimeError, match="ended"):
            store.put_batch([1, 2], lifetime=lifetime)
        assert data == {}


def test_lifetime_close_still_evicts_through_the_mixin() -> None:
    with Store("closeable-mixin", LocalConnector()) as store:
        key = store.put("x")
        with ContextLifetime(store) as lifetime:
            lifetime.add_key(key)
        assert lifetime.done()
        assert not store.exists(key)
