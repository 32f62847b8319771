"""The process-wide registry of stores, keyed by name.

Proxies find their store here when they resolve: an unpickled proxy carries only its
store's config, and the first resolve in a process rebuilds the store from it and
registers it, so later proxies of the same store reuse one instance.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from proxystore.store.exceptions import StoreExistsError

if TYPE_CHECKING:
    from proxystore.store.config import StoreConfig
    from proxystore.store.protocols import StoreLike

_log = logging.getLogger(__name__)

# Reads are single dict lookups (atomic under the GIL) and take no lock: they sit on
# the resolve hot path. Writes and create-if-missing hold the lock.
_stores: dict[str, StoreLike[Any]] = {}
_lock = threading.RLock()
# Builds a store from a config; `proxystore.store.base` sets it to `Store.from_config`
# (this module sits below `base` and cannot import it).
_builder: Callable[[StoreConfig], StoreLike[Any]] | None = None


def register_store(store: StoreLike[Any], exist_ok: bool = False) -> None:
    """Register ``store`` under its name in this process.

    Args:
        store: The store to register.
        exist_ok: Replace a store already registered under the same name instead of
            raising.

    Raises:
        StoreExistsError: if a store with the same name is registered and
            ``exist_ok`` is false.
    """
    with _lock:
        if not exist_ok and store.name in _stores:
            raise StoreExistsError(f'A store named "{store.name}" already exists.')
        _stores[store.name] = store
    if _log.isEnabledFor(logging.INFO):
        _log.info("Registered a store named %r", store.name)


def unregister_store(name_or_store: str | StoreLike[Any]) -> None:
    """Remove a store (given by name or itself) from the registry; no-op if absent."""
    name = name_or_store if isinstance(name_or_store, str) else name_or_store.name
    with _lock:
        removed = _stores.pop(name, None)
    if removed is not None and _log.isEnabledFor(logging.INFO):
        _log.info("Unregistered the store named %r", name)


def _set_store_builder(builder: Callable[[StoreConfig], StoreLike[Any]]) -> None:
    """Set how a store is built from its config (`Store.from_config`, set by `base`)."""
    global _builder
    _builder = builder


def _get_or_create(store_config: StoreConfig, *, register: bool) -> StoreLike[Any]:
    """Return the store named in `store_config`, building it when none is registered.

    Raises:
        ValueError: if the config names an unknown connector type.
    """
    store = _stores.get(store_config.name)
    if store is not None:
        return store
    with _lock:
        # Another thread may have created it while we waited for the lock.
        store = _stores.get(store_config.name)
        if store is None:
            # Always set: importing any `proxystore.store.*` module first runs the
            # package's `__init__`, which imports `base`, which sets the builder.
            assert _builder is not None
            store = _builder(store_config)
            if register:
                _stores[store.name] = store
                if _log.isEnabledFor(logging.INFO):
                    _log.info(
                        "Registered a store named %r (built from its config)",
                        store.name,
                    )
        return store


@contextlib.contextmanager
def store_registration(
    *stores: StoreLike[Any], exist_ok: bool = False
) -> Generator[None, None, None]:
    """Register ``stores`` for the duration of a ``with`` block.

    Raises:
        StoreExistsError: if a name is taken and ``exist_ok`` is false.
    """
    registered: list[StoreLike[Any]] = []
    try:
        for store in stores:
            register_store(store, exist_ok=exist_ok)
            registered.append(store)
    except BaseException:
        # All or nothing: do not leave the earlier stores behind.
        for store in registered:
            unregister_store(store)
        raise
    try:
        yield
    finally:
        for store in stores:
            unregister_store(store)
