"""Functions run in *spawned* processes by integration tests.

They live in an importable module (not in a test file) because a spawned child
re-imports the function by name. Each returns plain data so the parent can assert on
it, and closes the store it had to build from the proxy's config.
"""

from __future__ import annotations

import hashlib
from typing import Any

from proxystore.store import Store, unregister_store

__all__ = ["digest_of_proxy", "result_of_future", "set_future_result"]


def _release(store: Store[Any] | None) -> None:
    if store is not None:
        unregister_store(store)
        store.close()


def digest_of_proxy(proxy: Any) -> tuple[str, str]:
    """Resolve ``proxy`` here; return its target's type name and a digest of it."""
    from proxystore.store import get_store

    try:
        return type(proxy).__name__, hashlib.sha256(bytes(proxy)).hexdigest()
    finally:
        _release(get_store(proxy))


def result_of_future(future: Any, timeout: float) -> Any:
    """Block on ``future`` (set elsewhere) and return its result."""
    try:
        return future.result(timeout=timeout)
    finally:
        _release(future.factory.get_store())


def set_future_result(future: Any, value: Any) -> None:
    """Set ``future``'s result from this process."""
    try:
        future.set_result(value)
    finally:
        _release(future.factory.get_store())
