"""Unit tests of the process-wide store registry."""

from __future__ import annotations

import pickle
import threading
import uuid
from typing import Any

import pytest

from proxystore.connectors.local import LocalConnector
from proxystore.proxy import Proxy
from proxystore.store import (
    Store,
    get_or_create_store,
    get_store,
    register_store,
    store_registration,
    unregister_store,
)
from proxystore.store.exceptions import ProxyStoreFactoryError, StoreExistsError


def _name() -> str:
    return f"reg-{uuid.uuid4().hex[:12]}"


def test_register_get_unregister() -> None:
    with Store(_name(), LocalConnector()) as store:
        assert get_store(store.name) is None
        register_store(store)
        assert get_store(store.name) is store
        with pytest.raises(StoreExistsError, match=f'"{store.name}" already exists'):
            register_store(store)
        with Store(store.name, LocalConnector()) as other:
            register_store(other, exist_ok=True)
            assert get_store(store.name) is other
        unregister_store(store.name)
        assert get_store(store.name) is None
        unregister_store(store)  # absent: no-op
        unregister_store("never-registered")


def test_store_registration_context() -> None:
    with Store(_name(), LocalConnector()) as a, Store(_name(), LocalConnector()) as b:
        with store_registration(a, b):
            assert get_store(a.name) is a
            assert get_store(b.name) is b
        assert get_store(a.name) is None
        assert get_store(b.name) is None


def test_store_registration_is_all_or_nothing() -> None:
    with (
        Store(_name(), LocalConnector(), register=True) as taken,
        Store(_name(), LocalConnector()) as fresh,
    ):
        with pytest.raises(StoreExistsError), store_registration(fresh, taken):
            pass  # pragma: no cover - not reached
        assert get_store(fresh.name) is None
        assert get_store(taken.name) is taken


def test_get_store_by_proxy() -> None:
    with Store(_name(), LocalConnector(), register=True) as store:
        proxy = store.proxy("p")
        assert get_store(proxy) is store


def test_get_store_by_proxy_recreates_missing_store() -> None:
    name = _name()
    with Store(name, LocalConnector()) as store:
        proxy = pickle.loads(pickle.dumps(store.proxy("p")))
    try:
        found = get_store(proxy)
        assert found is not None
        assert found is not store
        assert found.name == name
        assert get_store(name) is found
    finally:
        unregister_store(name)


def test_get_store_by_foreign_proxy() -> None:
    with pytest.raises(ProxyStoreFactoryError, match="not a StoreFactory"):
        get_store(Proxy(lambda: 1))


def test_get_or_create_store() -> None:
    with Store(_name(), LocalConnector()) as template:
        config = template.config()
        created = get_or_create_store(config, register=False)
        assert created is not template
        assert get_store(config.name) is None
        created.close()
        made = get_or_create_store(config)
        try:
            assert get_store(config.name) is made
            assert get_or_create_store(config) is made
        finally:
            unregister_store(made)
            made.close()


def test_get_or_create_store_is_thread_safe() -> None:
    with Store(_name(), LocalConnector()) as template:
        config = template.config()
    results: list[Store[Any]] = []
    barrier = threading.Barrier(4)

    def create() -> None:
        barrier.wait()
        results.append(get_or_create_store(config))

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert len({id(s) for s in results}) == 1
    finally:
        results[0].close()
        unregister_store(config.name)
