"""A thread-safe counter."""

from __future__ import annotations

import threading

__all__ = ["AtomicCounter"]


class AtomicCounter:
    """Counter whose `increment` is safe to call from many threads.

    Args:
        size: Optional bound: at most ``size`` increments succeed.

    Raises:
        ValueError: If ``size`` is negative.
    """

    def __init__(self, size: int | None = None) -> None:
        if size is not None and size < 0:
            raise ValueError(f"Counter size must be non-negative, got {size}.")
        self._size = size
        self._value = 0
        self._lock = threading.Lock()

    @property
    def value(self) -> int:
        """Number of successful increments so far."""
        return self._value

    def increment(self) -> int:
        """Increment the counter and return its value from *before* the increment.

        Raises:
            ValueError: If the counter already reached ``size``.
        """
        with self._lock:
            value = self._value
            if self._size is not None and value >= self._size:
                raise ValueError(f"Max counter size exceeded ({self._size}).")
            self._value = value + 1
            return value

    def __repr__(self) -> str:
        return f"AtomicCounter(value={self._value}, size={self._size})"
