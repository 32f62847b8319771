"""Distributed reference counting through the store, on the in-process connector."""

from __future__ import annotations

import gc
import pickle
import time
from collections.abc import Iterator
from typing import Any

import pytest

from proxystore.connectors.file import FileConnector
from proxystore.connectors.local import LocalConnector
from proxystore.proxy import Proxy, get_factory
from proxystore.store import refcount
from proxystore.store.base import Store
from proxystore.store.exceptions import RefCountNotSupportedError
from proxystore.store.lifetimes import ContextLifetime
from proxystore.store.ref import borrow


@pytest.fixture
def store() -> Iterator[Store[LocalConnector]]:
    refcount.configure(interval=0.25, transfer_lease=0.6)
    with Store("refcount-test", LocalConnector(), register=True) as made:
        yield made
    refcount.flush(2)
    refcount.configure(interval=5.0, transfer_lease=60.0)


def _key(proxy: Proxy[Any]) -> Any:
    return get_factory(proxy).key  # type: ignore[attr-defined]


def _dropped(store: Store[LocalConnector]) -> None:
    gc.collect()
    assert refcount.flush(2)


def test_object_lives_while_a_copy_is_held(store: Store[LocalConnector]) -> None:
    p = store.proxy([1, 2], refcount=True)
    key = _key(p)
    assert refcount.is_refcounted(p)
    q = pickle.loads(pickle.dumps(p))
    del p
    _dropped(store)
    assert store.connector.exists(key)
    assert q == [1, 2]
    del q
    _dropped(store)
    assert not store.connector.exists(key)


def test_release_is_explicit_and_idempotent(store: Store[LocalConnector]) -> None:
    p = store.proxy("data", refcount=True)
    key = _key(p)
    refcount.release(p)
    refcount.release(p)
    _dropped(store)
    assert not store.connector.exists(key)
    assert p == "data"  # resolved already: still usable


def test_in_flight_proxy_is_covered_by_its_transfer(
    store: Store[LocalConnector],
) -> None:
    p = store.proxy(b"x" * 10, refcount=True)
    key = _key(p)
    data = pickle.dumps(p)
    del p
    _dropped(store)
    assert store.connector.exists(key)  # the transfer hold covers the pickle
    q = pickle.loads(data)
    assert q == b"x" * 10
    del q
    _dropped(store)
    # The conversion's trace covers other copies of ``data`` for one interval;
    # a sweep (at a heartbeat) evicts the object after it.
    deadline = time.monotonic() + 3
    while store.connector.exists(key) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not store.connector.exists(key)


def test_every_copy_of_one_pickle_is_covered(store: Store[LocalConnector]) -> None:
    # The same bytes unpickled twice (as two processes would): the second
    # copy converts after the producer and the first copy have let go.
    # A long interval: the trace must outlast a loaded machine's steps.
    refcount.configure(interval=5.0)
    own = refcount._HOLDS.holder
    try:
        p = store.proxy(b"y" * 10, refcount=True)
        data = pickle.dumps(p)
        del p
        _dropped(store)
        refcount._HOLDS.holder = "first"  # as if in another process
        first = pickle.loads(data)
        del first
        _dropped(store)
        refcount._HOLDS.holder = "second"
        second = pickle.loads(data)
        assert refcount.flush(2)
        assert second == b"y" * 10
        del second
        _dropped(store)
    finally:
        refcount._HOLDS.holder = own
        refcount.configure(interval=0.25)


def test_unconverted_transfer_lapses(store: Store[LocalConnector]) -> None:
    p = store.proxy([3], refcount=True)
    key = _key(p)
    pickle.dumps(p)  # never unpickled: its receiver "died"
    del p
    _dropped(store)
    deadline = time.monotonic() + 3
    while store.connector.exists(key) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not store.connector.exists(key)


def test_proxy_batch_refcount(store: Store[LocalConnector]) -> None:
    proxies = store.proxy_batch([[1], None, [2]], refcount=True, skip_nonproxiable=True)
    assert proxies[1] is None
    keys = [_key(p) for p in proxies if isinstance(p, Proxy)]
    assert all(store.connector.exists(k) for k in keys)
    del proxies
    _dropped(store)
    assert not any(store.connector.exists(k) for k in keys)


def test_refcount_excludes_other_mechanisms(store: Store[LocalConnector]) -> None:
    with pytest.raises(ValueError, match="exclusive"):
        store.proxy([1], refcount=True, evict=True)
    with pytest.raises(ValueError, match="exclusive"):
        store.proxy([1], refcount=True, lifetime=ContextLifetime(store))
    with pytest.raises(ValueError, match="exclusive"):
        store.proxy_batch([[1]], refcount=True, ttl=5)


def test_unsupported_connector_is_a_typed_error(tmp_path: Any) -> None:
    with Store("refcount-file", FileConnector(str(tmp_path))) as store:
        with pytest.raises(RefCountNotSupportedError, match="FileConnector"):
            store.proxy([1], refcount=True)
        assert list(tmp_path.iterdir()) == []  # refused before storing


def test_release_refuses_plain_proxies(store: Store[LocalConnector]) -> None:
    with pytest.raises(TypeError, match="refcounted"):
        refcount.release(store.proxy([1]))


def test_configure_checks_values() -> None:
    with pytest.raises(ValueError, match="positive"):
        refcount.configure(interval=0)


def test_ownership_keeps_its_rule_on_top(store: Store[LocalConnector]) -> None:
    owner = store.owned_proxy([1, 2], refcount=True)
    key = _key(owner)
    assert refcount.is_refcounted(owner)
    elsewhere = pickle.loads(pickle.dumps(borrow(owner)))  # a borrow travels
    _dropped(store)
    assert store.connector.exists(key)
    del owner  # the owner decides: its drop evicts, whoever else holds it
    _dropped(store)
    assert not store.connector.exists(key)
    del elsewhere
    _dropped(store)


def _custom(data: bytes | bytearray | memoryview) -> list[str]:
    return ["custom"]


def test_pickled_copy_keeps_deserializer_and_plain_keys(
    store: Store[LocalConnector],
) -> None:
    # A deserializer and a key that is not a NamedTuple travel with the copy.
    p = store.proxy([3, 4], refcount=True, deserializer=_custom)
    factory = get_factory(p)
    q = pickle.loads(pickle.dumps(p))
    assert get_factory(q).deserializer is _custom  # type: ignore[attr-defined]
    assert q == ["custom"]
    # A plain tuple equal to the NamedTuple key: the same object to the holds.
    factory.key = tuple(factory.key)  # type: ignore[attr-defined]
    r = pickle.loads(pickle.dumps(p))
    assert refcount.is_refcounted(r)
    assert type(get_factory(r).key) is tuple  # type: ignore[attr-defined]
