"""Per-key performance metrics of a store (opt-in: ``Store(..., metrics=True)``).

A store records, for each key, *attributes* (e.g. the serialized size), *counters*
(e.g. cache hits) and *times* of its operations. Names are dotted paths such as
``store.put.serialize`` or ``store.get.connector``. With metrics off the store does not
call a timer at all.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Sequence
from typing import Any, TypeAlias

from proxystore.proxy import Proxy
from proxystore.store.utils import get_key

__all__ = ["KeyT", "Metrics", "ProxyT", "StoreMetrics", "TimeStats"]

#: Anything metrics can be recorded for: a key, or a tuple of keys (batch operations).
KeyT: TypeAlias = tuple[Any, ...] | Sequence[tuple[Any, ...]]
#: A proxy or a sequence of proxies (mapped to keys by ``StoreMetrics.get_metrics``).
ProxyT: TypeAlias = Proxy[Any] | Sequence[Proxy[Any]]


@dataclasses.dataclass
class TimeStats:
    """Running statistics of the durations of one operation."""

    count: int = 0
    avg_time_ms: float = 0
    min_time_ms: float = math.inf
    max_time_ms: float = 0
    last_time_ms: float = 0
    last_timestamp: float = 0

    def add_time(self, time_ms: float) -> None:
        """Add one duration (milliseconds), timestamped now."""
        self.avg_time_ms = (self.avg_time_ms * self.count + time_ms) / (self.count + 1)
        self.count += 1
        self.min_time_ms = min(self.min_time_ms, time_ms)
        self.max_time_ms = max(self.max_time_ms, time_ms)
        self.last_time_ms = time_ms
        self.last_timestamp = time.time()

    def __add__(self, other: TimeStats) -> TimeStats:
        """Merge two statistics (the average is weighted by the counts)."""
        count = self.count + other.count
        avg = (
            (self.avg_time_ms * self.count + other.avg_time_ms * other.count) / count
            if count
            else 0
        )
        last = self if self.last_timestamp >= other.last_timestamp else other
        return TimeStats(
            count=count,
            avg_time_ms=avg,
            min_time_ms=min(self.min_time_ms, other.min_time_ms),
            max_time_ms=max(self.max_time_ms, other.max_time_ms),
            last_time_ms=last.last_time_ms,
            last_timestamp=last.last_timestamp,
        )

    def as_dict(self) -> dict[str, float]:
        """Return the fields as a plain dict."""
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Metrics:
    """Everything recorded for one key."""

    attributes: dict[str, Any] = dataclasses.field(default_factory=dict)
    counters: dict[str, int] = dataclasses.field(default_factory=dict)
    times: dict[str, TimeStats] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Return a plain, JSON-friendly dict (times as dicts too)."""
        return {
            "attributes": dict(self.attributes),
            "counters": dict(self.counters),
            "times": {name: t.as_dict() for name, t in self.times.items()},
        }


def _hashable(key_or_proxy: Any) -> Any:
    """The dict key metrics are recorded under, for a key, a proxy or a batch.

    Proxies map to their store keys (never resolving them: `isinstance(x, Proxy)`
    is decided by the proxy's own type); batches map to the tuple of their keys.
    """
    if isinstance(key_or_proxy, Proxy):
        return get_key(key_or_proxy)
    if isinstance(key_or_proxy, Sequence) and key_or_proxy:
        if all(isinstance(item, Proxy) for item in key_or_proxy):
            return tuple(get_key(proxy) for proxy in key_or_proxy)
        if isinstance(key_or_proxy, list):
            # Batch operations record under the tuple of their keys.
            return tuple(key_or_proxy)
    return key_or_proxy


class StoreMetrics:
    """Metrics of one store, grouped by key."""

    def __init__(self) -> None:
        self._metrics: dict[Any, Metrics] = {}

    def _for(self, key_or_proxy: Any) -> Metrics:
        key = _hashable(key_or_proxy)
        metrics = self._metrics.get(key)
        if metrics is None:
            metrics = self._metrics[key] = Metrics()
        return metrics

    def add_attribute(self, name: str, key: KeyT | ProxyT, value: Any) -> None:
        """Set attribute `name` of `key` to `value` (replacing any previous).

        `key` may also be a proxy (or a batch of them): it stands for its store
        key and is not resolved.
        """
        self._for(key).attributes[name] = value

    def add_counter(self, name: str, key: KeyT | ProxyT, value: int) -> None:
        """Add ``value`` to counter ``name`` of ``key``."""
        counters = self._for(key).counters
        counters[name] = counters.get(name, 0) + value

    def add_time(self, name: str, key: KeyT | ProxyT, time_ms: float) -> None:
        """Record that operation ``name`` on ``key`` took ``time_ms`` milliseconds."""
        times = self._for(key).times
        stats = times.get(name)
        if stats is None:
            stats = times[name] = TimeStats()
        stats.add_time(time_ms)

    def aggregate_times(self) -> dict[str, TimeStats]:
        """Return the time statistics of each operation merged over all keys."""
        totals: dict[str, TimeStats] = {}
        for metrics in self._metrics.values():
            for name, stats in metrics.times.items():
                total = totals.get(name)
                totals[name] = stats + TimeStats() if total is None else total + stats
        return totals

    def get_metrics(self, key_or_proxy: KeyT | ProxyT) -> Metrics | None:
        """Return a copy of the metrics of a key, a proxy, or a batch of either.

        A proxy is mapped to its key (a sequence of proxies to the tuple of their
        keys). Returns ``None`` when nothing was recorded.

        Raises:
            ProxyStoreFactoryError: if a proxy given was not made by a store.
        """
        metrics = self._metrics.get(_hashable(key_or_proxy))
        return None if metrics is None else copy.deepcopy(metrics)

    def _time_since(self, name: str, key: KeyT, start_ns: int) -> None:
        """Record the time from ``start_ns`` (``perf_counter_ns``) until now."""
        self.add_time(name, key, (time.perf_counter_ns() - start_ns) / 1e6)
