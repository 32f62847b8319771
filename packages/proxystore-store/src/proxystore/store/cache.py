"""A small least-recently-used cache for deserialized objects."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar, overload

__all__ = ["LRUCache"]

KeyT = TypeVar("KeyT", bound=Hashable)
ValueT = TypeVar("ValueT")
DefaultT = TypeVar("DefaultT")

_ABSENT = object()


class LRUCache(Generic[KeyT, ValueT]):
    """Map with at most ``maxsize`` entries; the least recently used goes first.

    Lock-free: every operation is one or two ``OrderedDict`` calls, and the races
    that concurrent threads can cause (an entry evicted between a lookup and its
    move to the end) are tolerated rather than locked against.

    Args:
        maxsize: Largest number of entries kept; ``0`` disables caching.

    Raises:
        ValueError: if ``maxsize`` is negative.

    Attributes:
        hits: Number of `get` calls that found their key.
        misses: Number of `get` calls that did not.
    """

    __slots__ = ("_data", "hits", "maxsize", "misses")

    def __init__(self, maxsize: int = 16) -> None:
        if maxsize < 0:
            raise ValueError(f"LRUCache maxsize must be >= 0, got {maxsize}.")
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self._data: OrderedDict[KeyT, ValueT] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"LRUCache(maxsize={self.maxsize}, size={len(self._data)})"

    def evict(self, key: KeyT) -> None:
        """Remove ``key`` if present."""
        self._data.pop(key, None)

    def exists(self, key: KeyT) -> bool:
        """Return whether ``key`` is cached (does not count as a use)."""
        return key in self._data

    @overload
    def get(self, key: KeyT) -> ValueT | None: ...

    @overload
    def get(self, key: KeyT, default: DefaultT) -> ValueT | DefaultT: ...

    def get(self, key: KeyT, default: object = None) -> object:
        """Return the value at ``key`` (now most recently used) or ``default``."""
        data = self._data
        # A lookup with a sentinel, not try/except: misses are common (every
        # first get, every get with caching off) and raising is slow.
        value = data.get(key, _ABSENT)
        if value is _ABSENT:
            self.misses += 1
            return default
        # Evicted by another thread in between: still a hit. (try/except, not
        # contextlib.suppress: this is the hot path and suppress is slower.)
        try:  # noqa: SIM105
            data.move_to_end(key)
        except KeyError:
            pass
        self.hits += 1
        return value

    def set(self, key: KeyT, value: ValueT) -> None:
        """Cache ``value`` at ``key``, dropping the least recently used when full."""
        if self.maxsize == 0:
            return
        data = self._data
        data[key] = value
        try:
            data.move_to_end(key)
        except KeyError:  # evicted by another thread in between: nothing to order
            return
        while len(data) > self.maxsize:
            try:
                data.popitem(last=False)
            except KeyError:  # emptied by a concurrent evict
                break

    def clear(self) -> None:
        """Drop every entry (hit/miss counters are kept)."""
        self._data.clear()
