"""Store.get_evict: get then evict, in one connector call where the connector can."""

from __future__ import annotations

import uuid
from typing import Any
from unittest import mock

import pytest

from proxystore.connectors.local import LocalConnector, LocalKey
from proxystore.proxy import Proxy
from proxystore.serialize import SerializationError
from proxystore.store import Store
from proxystore.store.utils import get_key


def unique_name() -> str:
    return f"get-evict-{uuid.uuid4().hex[:12]}"


def test_get_evict_returns_then_removes(any_store: Store[Any]) -> None:
    key = any_store.put([1, 2, 3])
    other = any_store.put("stays")
    assert any_store.get_evict(key) == [1, 2, 3]
    assert not any_store.exists(key)
    assert not any_store.is_cached(key)
    assert any_store.get_evict(key, default="gone") == "gone"
    assert any_store.get(other) == "stays"


def test_get_evict_missing_key_returns_default(any_store: Store[Any]) -> None:
    key = any_store.put(1)
    any_store.evict(key)
    assert any_store.get_evict(key) is None
    marker = object()
    assert any_store.get_evict(key, default=marker) is marker


def test_get_evict_uses_one_connector_call() -> None:
    connector = LocalConnector()
    with Store(unique_name(), connector, cache_size=4) as store:
        key = store.put({"a": 1})
        with (
            mock.patch.object(connector, "get", wraps=connector.get) as get,
            mock.patch.object(connector, "evict", wraps=connector.evict) as evict,
        ):
            assert store.get_evict(key) == {"a": 1}
        assert get.call_count == 0
        assert evict.call_count == 0
        assert not store.exists(key)
        # The object about to be evicted is never cached; the miss is counted.
        assert not store.is_cached(key)
        assert store.cache.misses == 1


def test_get_evict_of_cached_object_evicts_cache_and_connector() -> None:
    connector = LocalConnector()
    with Store(unique_name(), connector, cache_size=4) as store:
        key = store.put("cached")
        first = store.get(key)
        assert store.is_cached(key)
        assert store.get_evict(key) is first
        assert not store.is_cached(key)
        assert not store.exists(key)


def test_get_evict_with_metrics_records_get_and_evict() -> None:
    with Store(unique_name(), LocalConnector(), metrics=True) as store:
        key = store.put(42)
        assert store.get_evict(key) == 42
        assert store.metrics is not None
        recorded = store.metrics.get_metrics(key)
        assert recorded is not None
        times = recorded.times
        assert "store.get" in times
        assert "store.evict" in times
        assert not store.exists(key)


def test_get_evict_custom_deserializer() -> None:
    with Store(unique_name(), LocalConnector()) as store:
        key = store.put(b"raw", serializer=lambda obj: obj)
        assert store.get_evict(key, deserializer=lambda data: bytes(data) * 2) == (
            b"rawraw"
        )


def test_get_evict_bad_bytes_raise_serialization_error() -> None:
    connector = LocalConnector()
    with Store(unique_name(), connector) as store:
        key: LocalKey = connector.put(b"\x00not a payload")
        with pytest.raises(SerializationError) as info:
            store.get_evict(key)
        assert repr(key) in str(info.value)


def test_evicting_proxy_resolves_once(any_store: Store[Any]) -> None:
    proxy: Proxy[list[int]] = any_store.proxy([4, 5], evict=True, populate_target=False)
    assert proxy == [4, 5]
    key = get_key(proxy)
    assert not any_store.exists(key)
