"""Lifetimes: group keys and evict them together when the lifetime ends.

* :class:`~proxystore.store.lifetimes.ContextLifetime` ends with its ``with`` block.
* :class:`~proxystore.store.lifetimes.LeaseLifetime` ends when its lease expires
  (``extend`` pushes it back).
* :class:`~proxystore.store.lifetimes.StaticLifetime` ends at interpreter exit.

    uv run --frozen python -m examples.lifetimes_pattern
"""

from __future__ import annotations

import uuid
from typing import Any

from examples._common import file_store, leftover
from proxystore.connectors.local import LocalConnector
from proxystore.store import Store
from proxystore.store.lifetimes import ContextLifetime, LeaseLifetime, StaticLifetime
from proxystore.store.utils import get_key


def context(store: Store[Any]) -> tuple[bool, bool]:
    """Return whether the object existed inside the block and after it."""
    with ContextLifetime(store) as lifetime:
        proxy = store.proxy({"config": 1}, lifetime=lifetime)
        inside = store.exists(get_key(proxy))
    return inside, store.exists(get_key(proxy))


def lease(store: Store[Any], seconds: float = 0.05) -> tuple[bool, bool]:
    """Return whether the object existed after an extension and after expiry."""
    lifetime = LeaseLifetime(store, seconds)
    key = store.put("temporary", lifetime=lifetime)
    lifetime.extend(seconds)
    alive = store.exists(key)
    timer = lifetime._timer
    if timer is not None:
        timer.join()  # wait for the lease to run out
    return alive, store.exists(key)


def static() -> Store[Any]:
    """A process-long store: its keys are evicted and it is closed at exit."""
    store = Store(f"static-{uuid.uuid4().hex[:8]}", LocalConnector(), register=True)
    store.put("lives until exit", lifetime=StaticLifetime())
    return store


def main() -> None:
    with file_store("lifetimes") as store:
        inside, after = context(store)
        print(f"context lifetime: exists inside={inside}, after={after}")
        alive, expired = lease(store)
        print(f"lease lifetime: exists after extend={alive}, after expiry={expired}")
        assert leftover(store) == 0
    store = static()
    print(f"static lifetime: {store.name} is closed at interpreter exit")


if __name__ == "__main__":
    main()
