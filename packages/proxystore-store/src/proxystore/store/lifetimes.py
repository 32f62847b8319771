"""Lifetimes: scopes that own store keys and evict them when they end.

A lifetime collects keys (directly, or through the proxies that carry them) and
evicts them all when it is closed:

* `ContextLifetime` ends when its ``with`` block exits or on `close`.
* `LeaseLifetime` ends when a lease expires unless `extend`
  pushes the expiry back. Where the store's connector can expire objects
  (an `ExpiringConnector`), the lease is also
  recorded in the backend: each key gets the lease's remaining time as its
  time-to-live (atomically with the value when the store puts it) and `extend`
  re-arms them there, so the objects go at the end of the lease even when the
  process holding the lifetime was killed.
* `StaticLifetime` is one process-wide lifetime that ends at interpreter exit.

Any object with the four methods of `Lifetime` can be passed to
``Store.put(..., lifetime=...)`` and ``Store.proxy(..., lifetime=...)``.
"""

from __future__ import annotations

import atexit
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from proxystore.connectors.protocols import ExpiringConnector
from proxystore.proxy import get_factory
from proxystore.store.exceptions import ProxyStoreFactoryError
from proxystore.store.factory import StoreFactory
from proxystore.utils._closeable import Closeable

if TYPE_CHECKING:
    from proxystore.proxy import Proxy
    from proxystore.store.protocols import StoreLike
    from proxystore.store.types import ConnectorKeyT

__all__ = [
    "ContextLifetime",
    "LeaseLifetime",
    "Lifetime",
    "StaticLifetime",
    "register_lifetime_atexit",
]


@runtime_checkable
class Lifetime(Protocol):
    """What a store needs from a lifetime: it accepts keys and proxies, then ends."""

    def add_key(
        self, *keys: ConnectorKeyT, store: StoreLike[Any] | None = None
    ) -> None:
        """Associate ``keys`` (of ``store``) with this lifetime."""
        ...

    def add_proxy(self, *proxies: Proxy[Any]) -> None:
        """Associate the keys behind ``proxies`` with this lifetime."""
        ...

    def close(self, *, close_stores: bool = False) -> None:
        """End the lifetime: evict every associated key."""
        ...

    def done(self) -> bool:
        """Return whether the lifetime has ended."""
        ...


class _KeyTracker:
    """Thread-safe bookkeeping shared by the lifetimes: keys grouped by store."""

    def __init__(self, name: str | None) -> None:
        self.name = name if name is not None else str(uuid.uuid4())
        self._lock = threading.RLock()
        self._done = False
        # Keyed by store name; the store object is kept so keys can be evicted later.
        self._stores: dict[str, tuple[StoreLike[Any], set[ConnectorKeyT]]] = {}

    def _default_store(self) -> StoreLike[Any] | None:
        return None

    def _check_open(self) -> None:
        if self._done:
            raise RuntimeError(
                f"Lifetime has ended: {self!r} is closed and cannot take new keys."
            )

    def add_key(
        self, *keys: ConnectorKeyT, store: StoreLike[Any] | None = None
    ) -> None:
        """Associate ``keys`` with this lifetime; evicted from ``store`` at close.

        Raises:
            RuntimeError: if the lifetime has already ended.
            ValueError: if no ``store`` is given and the lifetime has no default store.
        """
        target = store if store is not None else self._default_store()
        if target is None:
            raise ValueError(
                f"{type(self).__name__}.add_key() needs the store the keys belong to "
                "(pass store=...)."
            )
        with self._lock:
            self._check_open()
            _, bucket = self._stores.setdefault(target.name, (target, set()))
            bucket.update(keys)

    def add_proxy(self, *proxies: Proxy[Any]) -> None:
        """Associate the keys behind store proxies with this lifetime.

        Raises:
            RuntimeError: if the lifetime has already ended.
            ProxyStoreFactoryError: if a proxy was not made by a store (its factory
                is not a ``StoreFactory``).
        """
        with self._lock:
            self._check_open()
            for proxy in proxies:
                factory = get_factory(proxy)
                if not isinstance(factory, StoreFactory):
                    raise ProxyStoreFactoryError(
                        "A lifetime can only manage proxies created by a Store; got a "
                        f"proxy whose factory is {type(factory).__name__}."
                    )
                default = self._default_store()
                if default is not None and default.name == factory.store_config.name:
                    store = default
                else:
                    store = factory.get_store()
                self.add_key(factory.key, store=store)

    def done(self) -> bool:
        """Return whether the lifetime has ended."""
        return self._done

    def close(self, *, close_stores: bool = False) -> None:
        """End the lifetime: evict all its keys (idempotent).

        Args:
            close_stores: Also close every store that held a key of this lifetime.
        """
        with self._lock:
            if self._done:
                return
            self._done = True
            stores, self._stores = self._stores, {}
        for store, keys in stores.values():
            for key in keys:
                store.evict(key)
            if close_stores:
                store.close()

    def __repr__(self) -> str:
        stores = ", ".join(repr(name) for name in self._stores)
        return f"{type(self).__name__}(name={self.name!r}, stores=[{stores}])"


class ContextLifetime(_KeyTracker, Closeable):
    """A lifetime bound to a ``with`` block (or ended explicitly by `close`).

    Args:
        store: The store whose keys this lifetime manages by default.
        name: A name for the lifetime (a uuid4 string when omitted).
    """

    def __init__(self, store: StoreLike[Any], *, name: str | None = None) -> None:
        super().__init__(name)
        self.store = store

    def _default_store(self) -> StoreLike[Any]:
        return self.store

    def close(self, *, close_stores: bool = False) -> None:
        """End the lifetime: evict all its keys; optionally close the store too."""
        super().close(close_stores=False)
        if close_stores:
            self.store.close()

    def __repr__(self) -> str:
        # Same text as the reference release for every store-bound lifetime.
        return f"Lifetime(name={self.name}, store={self.store!r})"


def _as_deadline(expiry: datetime | timedelta | float, *, base: float) -> float:
    """Return a ``time.time()`` deadline; relative expiries are added to ``base``."""
    if isinstance(expiry, datetime):
        return expiry.timestamp()
    if isinstance(expiry, timedelta):
        return base + expiry.total_seconds()
    return base + float(expiry)


class LeaseLifetime(ContextLifetime):
    """A lifetime that ends by itself when its lease expires.

    Args:
        store: The store whose keys this lifetime manages.
        expiry: When the lease ends: an absolute `datetime`, or a
            `timedelta` / number of seconds from now.
        name: A name for the lifetime (a uuid4 string when omitted).
    """

    def __init__(
        self,
        store: StoreLike[Any],
        expiry: datetime | timedelta | float,
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(store, name=name)
        self._expiry = _as_deadline(expiry, base=time.time())
        self._timer: threading.Timer | None = None
        self._start_timer()

    def _remaining(self) -> float:
        # Never zero: a backend TTL must be positive (a lease that is due but
        # whose timer has not fired yet gets a millisecond).
        return max(self._expiry - time.time(), 0.001)

    def backend_ttl(self, store: StoreLike[Any]) -> float | None:
        """Return the time-to-live a new object of ``store`` gets from this lease.

        Returns:
            The seconds left in the lease, or ``None`` when ``store``'s connector
            cannot expire objects (then only this process's timer ends them).
        """
        if isinstance(store.connector, ExpiringConnector):
            return self._remaining()
        return None

    def _arm(self, store: StoreLike[Any], keys: tuple[ConnectorKeyT, ...]) -> None:
        connector = store.connector
        if isinstance(connector, ExpiringConnector):
            ttl = self._remaining()
            for key in keys:
                connector.expire(key, ttl)

    def add_key(
        self, *keys: ConnectorKeyT, store: StoreLike[Any] | None = None
    ) -> None:
        """Associate ``keys`` with the lease, and give them its remaining time.

        The backend expires them at the end of the lease (when the connector
        can), even if this process is gone by then.

        Raises:
            RuntimeError: if the lease has already ended.
        """
        self._add_armed(*keys, store=store)
        self._arm(self.store if store is None else store, keys)

    def _add_armed(
        self, *keys: ConnectorKeyT, store: StoreLike[Any] | None = None
    ) -> None:
        # Keys the store already wrote with `backend_ttl` (no second round trip).
        super().add_key(*keys, store=store)

    def _start_timer(self) -> None:
        # Called with the lock held (or from __init__): one live timer at a time.
        if self._timer is not None:
            self._timer.cancel()
        timer = threading.Timer(max(0.0, self._expiry - time.time()), self.close)
        # A pending lease must never keep the interpreter alive.
        timer.daemon = True
        timer.name = f"proxystore-lease-{self.name}"
        self._timer = timer
        timer.start()

    @property
    def expiry(self) -> float:
        """When the lease ends, as a ``time.time()`` timestamp."""
        return self._expiry

    def extend(self, expiry: datetime | timedelta | float) -> None:
        """Push the end of the lease.

        Args:
            expiry: A `datetime` sets the new absolute end; a
                `timedelta` or number of seconds is added to the
                current end.

        The keys' time-to-live in the backend (where the connector can expire
        objects) is pushed back too, one ``expire`` per key.

        Raises:
            RuntimeError: if the lease has already ended.
        """
        with self._lock:
            self._check_open()
            self._expiry = _as_deadline(expiry, base=self._expiry)
            self._start_timer()
            for store, keys in self._stores.values():
                self._arm(store, tuple(keys))

    def close(self, *, close_stores: bool = False) -> None:
        """End the lease now: cancel the timer and evict every key."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        super().close(close_stores=close_stores)


class StaticLifetime(_KeyTracker):
    """The process-wide lifetime: keys live until the interpreter exits.

    ``StaticLifetime()`` always returns the same instance while it is open. At exit
    it evicts its keys and closes their stores. Closing it early ends that instance;
    the next ``StaticLifetime()`` starts a fresh one.
    """

    # Also readable on the class (``StaticLifetime.name``), like the reference.
    name: str = "static"
    _instance: StaticLifetime | None = None
    _instance_lock = threading.Lock()
    _atexit_registered = False

    def __new__(cls) -> StaticLifetime:
        with cls._instance_lock:
            if cls._instance is None or cls._instance.done():
                instance = super().__new__(cls)
                _KeyTracker.__init__(instance, "static")
                cls._instance = instance
                if not cls._atexit_registered:
                    atexit.register(_close_static_lifetime)
                    cls._atexit_registered = True
            return cls._instance

    def __init__(self) -> None:
        # State is set once in __new__; re-running __init__ would drop tracked keys.
        pass

    def add_key(
        self, *keys: ConnectorKeyT, store: StoreLike[Any] | None = None
    ) -> None:
        """Associate ``keys`` of ``store`` with the process lifetime.

        Raises:
            ValueError: if ``store`` is not given (a static lifetime has no default
                store).
            RuntimeError: if the lifetime has already ended.
        """
        super().add_key(*keys, store=store)


def _close_static_lifetime() -> None:
    instance = StaticLifetime._instance
    if instance is not None:
        instance.close(close_stores=True)


def register_lifetime_atexit(
    lifetime: Lifetime, close_stores: bool = True
) -> Callable[[], None]:
    """Close ``lifetime`` when the interpreter exits.

    Returns:
        The registered callback; pass it to `atexit.unregister` to cancel.
    """

    def _close() -> None:
        lifetime.close(close_stores=close_stores)

    atexit.register(_close)
    return _close
