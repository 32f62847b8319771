"""Unit tests of LRUCache and the store metrics."""

from __future__ import annotations

import math
import uuid
from typing import Any

import pytest

from proxystore.connectors.local import LocalConnector
from proxystore.proxy import is_resolved
from proxystore.store import Store
from proxystore.store.cache import LRUCache
from proxystore.store.metrics import Metrics, StoreMetrics, TimeStats
from proxystore.store.utils import get_key


# ---------------------------------------------------------------------- cache
def test_lru_evicts_least_recently_used() -> None:
    cache: LRUCache[str, int] = LRUCache(2)
    cache.set("a", 1)
    cache.set("b", 2)
    assert cache.get("a") == 1  # "a" is now most recent
    cache.set("c", 3)
    assert not cache.exists("b")
    assert cache.exists("a")
    assert cache.exists("c")
    assert len(cache) == 2
    assert (cache.hits, cache.misses) == (1, 0)
    assert cache.get("b", -1) == -1
    assert cache.misses == 1


def test_lru_evict_clear_and_zero_size() -> None:
    cache: LRUCache[str, int] = LRUCache(0)
    cache.set("a", 1)
    assert not cache.exists("a")
    assert cache.get("a") is None
    full: LRUCache[str, int] = LRUCache()
    assert full.maxsize == 16
    full.set("x", 1)
    full.evict("x")
    full.evict("missing")
    assert not full.exists("x")
    full.set("y", 2)
    full.clear()
    assert len(full) == 0
    assert "maxsize=16" in repr(full)


def test_lru_rejects_negative_size() -> None:
    with pytest.raises(ValueError, match="maxsize"):
        LRUCache(-1)


# -------------------------------------------------------------------- metrics
def test_time_stats() -> None:
    stats = TimeStats()
    assert stats.min_time_ms == math.inf
    stats.add_time(2.0)
    stats.add_time(4.0)
    assert (stats.count, stats.avg_time_ms) == (2, 3.0)
    assert (stats.min_time_ms, stats.max_time_ms, stats.last_time_ms) == (2, 4, 4)
    other = TimeStats()
    other.add_time(9.0)
    merged = stats + other
    assert merged.count == 3
    assert merged.avg_time_ms == pytest.approx(5.0)
    assert merged.max_time_ms == 9
    assert merged.last_time_ms == 9
    assert (TimeStats() + TimeStats()).avg_time_ms == 0
    assert stats.as_dict()["count"] == 2


def test_store_metrics_record_and_copy() -> None:
    metrics = StoreMetrics()
    metrics.add_attribute("a", ("k",), 1)
    metrics.add_counter("c", ("k",), 2)
    metrics.add_counter("c", ("k",), 3)
    metrics.add_time("t", ("k",), 1.5)
    metrics.add_time("t", [("k1",), ("k2",)], 2.5)
    got = metrics.get_metrics(("k",))
    assert isinstance(got, Metrics)
    assert got.attributes == {"a": 1}
    assert got.counters == {"c": 5}
    assert got.times["t"].count == 1
    got.counters["c"] = 0  # a copy: the store's record is untouched
    assert metrics.get_metrics(("k",)).counters == {"c": 5}  # type: ignore[union-attr]
    assert metrics.get_metrics([("k1",), ("k2",)]) is not None
    assert metrics.get_metrics(("unknown",)) is None
    assert metrics.aggregate_times()["t"].count == 2
    assert got.as_dict()["times"]["t"]["count"] == 1


_PUT = ["store.put", "store.put.serialize", "store.put.connector"]
_GET = ["store.get", "store.get.connector", "store.get.deserialize"]


def test_store_records_metrics_when_enabled() -> None:
    with Store(
        f"m-{uuid.uuid4().hex}", LocalConnector(), metrics=True, register=True
    ) as store:
        metrics = store.metrics
        assert metrics is not None
        key = store.put("value")
        store.get(key)
        store.get(key)
        store.exists(store.put("x"))
        store.evict(key)
        record = metrics.get_metrics(key)
        assert record is not None
        assert set(_PUT + _GET + ["store.evict"]) <= set(record.times)
        assert record.counters == {
            "store.get.cache_misses": 1,
            "store.get.cache_hits": 1,
        }
        assert record.attributes["store.put.object_size"] > 0
        assert record.attributes["store.get.object_size"] > 0

        proxy = store.proxy([1], populate_target=False)
        assert proxy == [1]
        proxied = metrics.get_metrics(proxy)
        assert proxied is not None
        assert {"store.proxy", "factory.call", "factory.resolve"} <= set(proxied.times)
        assert metrics.get_metrics(get_key(proxy)) == proxied

        batch = store.proxy_batch(["a", "b"])
        by_batch = metrics.get_metrics(batch)
        assert by_batch is not None
        assert "store.proxy_batch" in by_batch.times
        # The total of the serialized sizes, as the reference records it.
        sizes = by_batch.attributes["store.put_batch.object_sizes"]
        assert isinstance(sizes, int)
        assert sizes > 0

        future: Any = store.future(polling_interval=0.001)
        future.set_result(1)
        assert future.result() == 1
        record = metrics.get_metrics(future.key)
        assert record is not None
        assert {"store.future", "store.set", "factory.polling_resolve"} <= set(
            record.times
        )


def test_metrics_off_records_nothing() -> None:
    with Store(f"m-{uuid.uuid4().hex}", LocalConnector()) as store:
        store.get(store.put(1))
        assert store.metrics is None


def test_metrics_take_proxies_without_resolving_them() -> None:
    with Store(f"m-{uuid.uuid4().hex}", LocalConnector(), metrics=True) as store:
        metrics = store.metrics
        assert metrics is not None
        proxy = store.proxy([1, 2], populate_target=False)
        batch = store.proxy_batch(["a", "b"], populate_target=False)
        metrics.add_attribute("user.note", proxy, "tagged")
        metrics.add_counter("user.count", batch, 2)
        metrics.add_time("user.time", proxy, 1.5)
        assert not is_resolved(proxy)
        assert not any(is_resolved(p) for p in batch)
        record = metrics.get_metrics(get_key(proxy))
        assert record is not None
        assert record.attributes["user.note"] == "tagged"
        assert record.times["user.time"].count == 1
        by_batch = metrics.get_metrics(tuple(get_key(p) for p in batch))
        assert by_batch is not None
        assert by_batch.counters["user.count"] == 2


def test_exists_is_timed_on_cache_hits_too() -> None:
    with Store(f"m-{uuid.uuid4().hex}", LocalConnector(), metrics=True) as store:
        metrics = store.metrics
        assert metrics is not None
        key = store.put("x")
        assert store.exists(key)  # connector
        store.get(key)
        assert store.exists(key)  # cache hit
        record = metrics.get_metrics(key)
        assert record is not None
        assert record.times["store.exists"].count == 2
        assert record.times["store.exists.connector"].count == 1
