"""Stores: put objects into a connector and get proxies back.

The [`Store`][proxystore.store.Store] serializes objects into a connector and returns
[`Proxy`][proxystore.proxy.Proxy] objects whose `StoreFactory` fetches them
back in any process. Stores are found by name through a process-wide registry
([`register_store`][proxystore.store.register_store], `get_store`, ...).
"""

from __future__ import annotations

from proxystore.store._lookup import get_or_create_store as get_or_create_store
from proxystore.store._lookup import get_store as get_store
from proxystore.store._registry import register_store as register_store
from proxystore.store._registry import store_registration as store_registration
from proxystore.store._registry import unregister_store as unregister_store
from proxystore.store.base import Store as Store
from proxystore.store.config import ConnectorConfig as ConnectorConfig
from proxystore.store.config import StoreConfig as StoreConfig
from proxystore.store.factory import StoreFactory as StoreFactory

__all__ = [
    "ConnectorConfig",
    "Store",
    "StoreConfig",
    "StoreFactory",
    "get_or_create_store",
    "get_store",
    "register_store",
    "store_registration",
    "unregister_store",
]

# Public names report this module in reprs and tracebacks (pickles stay valid: each
# name is importable from here).
for _public in (
    get_or_create_store,
    get_store,
    register_store,
    store_registration,
    unregister_store,
):
    _public.__module__ = __name__
del _public

# Instrumenting with OpenTelemetry (see `proxystore.store.otel`) is decided here,
# once: nothing on any store operation asks again.
if __import__("os").environ.get("PROXYSTORE_OTEL", "") not in ("", "0"):
    from proxystore.store.otel import instrument as _instrument

    _instrument()
