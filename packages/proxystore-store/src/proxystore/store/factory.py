"""Factories that resolve a proxy's target from a store.

A `StoreFactory` is what a store's proxy carries: the object's key and the
store's config. Resolving is the hot path of the library, so it is kept short:
registry lookup by name → ``Store.get`` (cache, then ``connector.get`` and
deserialize), or ``Store.get_evict`` for ``evict=True`` (one connector call that
reads and removes the bytes, where the connector can). Only a process that has
no store of that name builds one from the config (and registers it, so the next
proxy finds it).

On the wire a factory is the key plus a compact positional form of the config (see
`StoreConfig.__reduce__`); a factory unpickled in a process that already has the
store never even rebuilds the config object.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from proxystore.connectors.protocols import WaitableConnector
from proxystore.factory import Factory
from proxystore.store._registry import _get_or_create, _stores
from proxystore.store.config import StoreConfig, _config_from_wire
from proxystore.store.exceptions import ProxyResolveMissingKeyError
from proxystore.store.types import _MISSING, ConnectorT

if TYPE_CHECKING:
    from proxystore.store.protocols import StoreLike
    from proxystore.store.types import ConnectorKeyT, DeserializerT

__all__ = ["PollingStoreFactory", "StoreFactory"]

T = TypeVar("T")

# Index of ``metrics`` in StoreConfig._to_wire() output.
_WIRE_METRICS = 6

_executor: concurrent.futures.ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _resolve_executor() -> concurrent.futures.ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = concurrent.futures.ThreadPoolExecutor(
                thread_name_prefix="proxystore-resolve"
            )
        return _executor


class StoreFactory(Factory[T], Generic[ConnectorT, T]):
    """Resolves the object stored at ``key`` in the store described by a config.

    Generic in the store's connector type and the object's type, in that order
    (`StoreFactory[RedisConnector, list[int]]`), like the reference.

    Args:
        key: Key of the object in the store's connector.
        store_config: Config of the store (used to rebuild it where it is not
            registered).
        evict: Evict the object from the store after the first resolve.
        deserializer: Deserializer overriding the store's.
    """

    __slots__ = (
        "_config",
        "_metrics",
        "_name",
        "_obj_future",
        "_wire",
        "deserializer",
        "evict",
        "key",
    )

    key: ConnectorKeyT
    evict: bool
    deserializer: DeserializerT | None
    _config: StoreConfig | None
    _wire: tuple[Any, ...] | None
    _name: str
    _metrics: bool
    _obj_future: concurrent.futures.Future[T] | None

    def __init__(
        self,
        key: ConnectorKeyT,
        store_config: StoreConfig,
        *,
        evict: bool = False,
        deserializer: DeserializerT | None = None,
    ) -> None:
        self.key = key
        self.evict = evict
        self.deserializer = deserializer
        self._config = store_config
        self._wire = None
        self._name = store_config.name
        self._metrics = store_config.metrics
        self._obj_future = None

    @property
    def store_config(self) -> StoreConfig:
        """Config of the store this factory resolves from."""
        config = self._config
        if config is None:
            assert self._wire is not None
            config = self._config = _config_from_wire(*self._wire)
        return config

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(key={self.key!r}, store={self._name!r}, "
            f"evict={self.evict})"
        )

    def __call__(self) -> T:
        future = self._obj_future
        if future is not None:
            self._obj_future = None
            return future.result()
        if not self._metrics:
            if type(self).resolve is _BASE_RESOLVE:
                # `resolve` inlined (a worker resolving with cold caches pays for
                # every call); a subclass's own `resolve` is called.
                store = _stores.get(self._name)
                if store is None:
                    store = self.get_store()
                if self.evict:
                    obj = store.get_evict(
                        self.key, deserializer=self.deserializer, default=_MISSING
                    )
                else:
                    obj = store.get(
                        self.key, deserializer=self.deserializer, default=_MISSING
                    )
                if obj is _MISSING:
                    raise self._missing(store)
                return obj  # type: ignore[no-any-return]
            return self.resolve()
        start = time.perf_counter_ns()
        obj = self.resolve()
        metrics = self.get_store().metrics
        if metrics is not None:
            metrics._time_since("factory.call", self.key, start)
        return obj

    def get_store(self) -> StoreLike[ConnectorT]:
        """Return the store: the registered one by name, else one built from config.

        A store built from the config is registered, so later proxies reuse it.

        Raises:
            ValueError: if the config names an unknown connector type.
        """
        store = _stores.get(self._name)
        if store is None:
            store = _get_or_create(self.store_config, register=True)
        return store

    def _fetch(self, store: StoreLike[Any]) -> Any:
        if self.evict:
            # Read and evict together: one connector call where it can.
            return store.get_evict(
                self.key, deserializer=self.deserializer, default=_MISSING
            )
        return store.get(self.key, deserializer=self.deserializer, default=_MISSING)

    def _found(self, store: StoreLike[Any], obj: Any, start: int | None) -> T:
        if start is not None and store.metrics is not None:
            store.metrics._time_since(
                "factory.polling_resolve"
                if isinstance(self, PollingStoreFactory)
                else "factory.resolve",
                self.key,
                start,
            )
        return obj  # type: ignore[no-any-return]

    def _missing(self, store: StoreLike[Any]) -> ProxyResolveMissingKeyError:
        return ProxyResolveMissingKeyError(self.key, type(store), store.name)

    def resolve(self) -> T:
        """Fetch and return the object (evicting it if ``evict`` was set).

        Raises:
            ProxyResolveMissingKeyError: if the store has no object at the key.
            SerializationError: if the stored bytes cannot be deserialized.
            ConnectorError: if the connector fails.
        """
        store = _stores.get(self._name)
        if store is None:
            store = self.get_store()
        start = time.perf_counter_ns() if self._metrics else None
        obj = self._fetch(store)
        if obj is _MISSING:
            raise self._missing(store)
        return self._found(store, obj, start)

    def resolve_async(self) -> None:
        """Start resolving in a background thread; the next call returns its result."""
        if self._obj_future is None:
            self._obj_future = _resolve_executor().submit(self.resolve)

    def _wire_config(self) -> tuple[Any, ...]:
        if self._wire is not None:
            return self._wire
        return self.store_config._to_wire()

    def _wire_args(self) -> tuple[Any, ...]:
        args: tuple[Any, ...] = (self.key, self._wire_config())
        # Defaults (evict=False, deserializer=None) are implied by absence.
        if self.deserializer is not None:
            return (*args, self.evict, self.deserializer)
        return (*args, True) if self.evict else args

    def __reduce__(
        self,
    ) -> tuple[Callable[..., StoreFactory[ConnectorT, T]], tuple[Any, ...]]:
        # Only the key and the config travel: never a pending async resolve.
        args = self._wire_args()
        path = _key_path(type(self.key))
        if path is None:
            return (_store_factory, args)
        # A NamedTuple key travels as its class's dotted path and a plain tuple:
        # pickling the class itself (import + attribute lookups) and rebuilding
        # through copyreg's Python-level hooks would cost more than the rest.
        return (_store_factory_named, (path, tuple(self.key), *args[1:]))


def _init_from_wire(
    factory: StoreFactory[Any, Any],
    key: ConnectorKeyT,
    wire: tuple[Any, ...],
    evict: bool,
    deserializer: DeserializerT | None,
) -> None:
    # Skips StoreConfig construction: it is built on demand (see store_config).
    factory.key = key
    factory.evict = evict
    factory.deserializer = deserializer
    factory._config = None
    factory._wire = wire
    factory._name = wire[0]
    factory._metrics = len(wire) > _WIRE_METRICS and bool(wire[_WIRE_METRICS])
    factory._obj_future = None


def _store_factory(
    key: ConnectorKeyT,
    wire: tuple[Any, ...],
    evict: bool = False,
    deserializer: DeserializerT | None = None,
) -> StoreFactory[Any, Any]:
    factory: StoreFactory[Any, Any] = StoreFactory.__new__(StoreFactory)
    _init_from_wire(factory, key, wire, evict, deserializer)
    return factory


# NamedTuple key classes <-> dotted paths (``None``: not a NamedTuple class).
_KEY_PATHS: dict[type, str | None] = {}
_KEY_CLASSES: dict[str, type] = {}


def _key_path(cls: type) -> str | None:
    try:
        return _KEY_PATHS[cls]
    except KeyError:
        pass
    path: str | None = None
    if (
        issubclass(cls, tuple)
        and hasattr(cls, "_fields")
        and "<" not in cls.__qualname__
    ):
        path = f"{cls.__module__}:{cls.__qualname__}"
        _KEY_CLASSES.setdefault(path, cls)
    _KEY_PATHS[cls] = path
    return path


def _key_class(path: str) -> type:
    cls = _KEY_CLASSES.get(path)
    if cls is None:
        module, _, qualname = path.partition(":")
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
        if not (isinstance(found, type) and issubclass(found, tuple)):
            raise TypeError(f"Key class {path!r} is not a tuple class.")
        cls = _KEY_CLASSES[path] = found
    return cls


def _store_factory_named(
    key_path: str,
    key_fields: tuple[Any, ...],
    wire: tuple[Any, ...],
    evict: bool = False,
    deserializer: DeserializerT | None = None,
) -> StoreFactory[Any, Any]:
    # tuple.__new__ is what a NamedTuple's own __new__ does, minus argument
    # parsing.
    key: Any = tuple.__new__(_key_class(key_path), key_fields)
    return _store_factory(key, wire, evict, deserializer)


_BASE_RESOLVE: Final = StoreFactory.resolve


class PollingStoreFactory(StoreFactory[ConnectorT, T]):
    """A store factory that waits for its object to appear (used by futures).

    When the store's connector is a
    `WaitableConnector` the factory blocks on
    the connector's notification; otherwise it polls, sleeping ``polling_interval``
    seconds, multiplied by ``polling_backoff_factor`` after each miss and capped at
    ``polling_interval_limit``.

    Args:
        key: Key of the object in the store's connector.
        store_config: Config of the store.
        deserializer: Deserializer overriding the store's.
        evict: Evict the object after the first resolve.
        polling_interval: First sleep between polls (seconds).
        polling_backoff_factor: Multiplier applied to the sleep after each miss.
        polling_interval_limit: Largest sleep between polls (seconds).
        polling_timeout: Give up after waiting this long (seconds); ``None`` waits
            forever.
    """

    __slots__ = (
        "polling_backoff_factor",
        "polling_interval",
        "polling_interval_limit",
        "polling_timeout",
    )

    def __init__(
        self,
        key: ConnectorKeyT,
        store_config: StoreConfig,
        *,
        deserializer: DeserializerT | None = None,
        evict: bool = False,
        polling_interval: float = 1,
        polling_backoff_factor: float = 1,
        polling_interval_limit: float | None = None,
        polling_timeout: float | None = None,
    ) -> None:
        super().__init__(key, store_config, evict=evict, deserializer=deserializer)
        self._set_polling(
            polling_interval,
            polling_backoff_factor,
            polling_interval_limit,
            polling_timeout,
        )

    def _set_polling(
        self,
        interval: float,
        backoff: float,
        limit: float | None,
        timeout: float | None,
    ) -> None:
        if interval <= 0 or backoff < 1:
            raise ValueError(
                "polling_interval must be > 0 and polling_backoff_factor >= 1, got "
                f"{interval!r} and {backoff!r}."
            )
        self.polling_interval = interval
        self.polling_backoff_factor = backoff
        self.polling_interval_limit = limit
        self.polling_timeout = timeout

    def resolve(self) -> T:
        """Wait until the object exists, then fetch and return it.

        Raises:
            ProxyResolveMissingKeyError: if ``polling_timeout`` passes first.
            SerializationError: if the stored bytes cannot be deserialized.
            ConnectorError: if the connector fails.
        """
        store: StoreLike[Any] = self.get_store()
        start = time.perf_counter_ns() if self._metrics else None
        timeout = self.polling_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        connector = store.connector
        waitable = isinstance(connector, WaitableConnector)
        interval = self.polling_interval
        while True:
            obj = self._fetch(store)
            if obj is not _MISSING:
                return self._found(store, obj, start)
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise self._missing(store)
            if waitable:
                # Notification: returns as soon as the object is set.
                connector.wait(self.key, timeout=remaining)
                continue
            time.sleep(interval if remaining is None else min(interval, remaining))
            interval *= self.polling_backoff_factor
            if self.polling_interval_limit is not None:
                interval = min(interval, self.polling_interval_limit)

    def __reduce__(
        self,
    ) -> tuple[Callable[..., StoreFactory[ConnectorT, T]], tuple[Any, ...]]:
        return (
            _polling_store_factory,
            (
                self.key,
                self._wire_config(),
                self.evict,
                self.deserializer,
                self.polling_interval,
                self.polling_backoff_factor,
                self.polling_interval_limit,
                self.polling_timeout,
            ),
        )


def _polling_store_factory(
    key: ConnectorKeyT,
    wire: tuple[Any, ...],
    evict: bool,
    deserializer: DeserializerT | None,
    interval: float,
    backoff: float,
    limit: float | None,
    timeout: float | None,
) -> PollingStoreFactory[Any, Any]:
    factory: PollingStoreFactory[Any, Any] = PollingStoreFactory.__new__(
        PollingStoreFactory
    )
    _init_from_wire(factory, key, wire, evict, deserializer)
    factory._set_polling(interval, backoff, limit, timeout)
    return factory
