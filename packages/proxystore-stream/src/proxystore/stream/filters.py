"""Metadata filters for stream producers and consumers.

A filter is called with an event's metadata and returns ``True`` when the event
must be dropped (see `proxystore.stream.protocols.Filter`).
"""

from __future__ import annotations

import random
from typing import Any

__all__ = ["NullFilter", "SamplingFilter"]


class NullFilter:
    """A filter that keeps every event."""

    def __call__(self, metadata: dict[str, Any]) -> bool:
        """Return ``False``: nothing is dropped."""
        return False


class SamplingFilter:
    """A filter that drops each event at random with probability ``p``.

    Args:
        p: Probability in ``[0, 1]`` that an event is dropped.

    Raises:
        ValueError: If ``p`` is outside ``[0, 1]``.
    """

    def __init__(self, p: float) -> None:
        if not 0 <= p <= 1:
            raise ValueError(f"Sampling probability p must be in [0, 1], got {p!r}.")
        self.p = p

    def __call__(self, metadata: dict[str, Any]) -> bool:
        """Return ``True`` (drop) with probability ``p``."""
        return random.random() <= self.p
