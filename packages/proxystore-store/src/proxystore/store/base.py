"""The [`Store`][proxystore.store.base.Store]: objects in, keys and proxies out.

A store joins three independent pieces: a serializer (objects ⇄ bytes), a
connector (bytes ⇄ keys, on some backend) and proxies (a key that resolves itself
on first use). See `proxystore.store.factory` for the resolve side.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import (
    TYPE_CHECKING,
    Any,
    Generic,
    Literal,
    TypeVar,
    cast,
    overload,
)

from proxystore.connectors.protocols import (
    DeferrableConnector,
    EvictingConnector,
    ExpiringConnector,
    check_ttl,
)
from proxystore.proxy import Proxy, ProxyLocker
from proxystore.serialize import (
    ALGORITHMS,
    DisallowedTypeError,
    PayloadAuthenticationError,
    SerializationError,
    deserialize,
    deserialize_parts,
    serialize,
    serialize_parts,
    serialize_signed,
    sign,
    sign_parts,
    verify,
    verify_parts,
)
from proxystore.store._registry import (
    _set_store_builder,
    _stores,
    register_store,
    unregister_store,
)
from proxystore.store.cache import LRUCache
from proxystore.store.config import ConnectorConfig, StoreConfig, _is_nonempty_str
from proxystore.store.exceptions import NonProxiableTypeError
from proxystore.store.factory import (
    PollingStoreFactory,
    StoreFactory,
    _init_from_wire,
)
from proxystore.store.future import Future
from proxystore.store.lifetimes import LeaseLifetime
from proxystore.store.metrics import StoreMetrics
from proxystore.store.ref import OwnedProxy, into_owned
from proxystore.store.refcount import refcounted_proxy, refcounted_proxy_batch
from proxystore.store.types import _MISSING, ConnectorKeyT, ConnectorT, NonProxiableT
from proxystore.utils._closeable import Closeable
from proxystore.utils.credentials import resolve_secret_bytes

if TYPE_CHECKING:
    from proxystore.connectors.protocols import BytesLike
    from proxystore.store.lifetimes import Lifetime
    from proxystore.store.types import DeserializerT, SerializerT

__all__ = ["Store"]

_log = logging.getLogger(__name__)
_DEBUG = logging.DEBUG
# `Logger.isEnabledFor` caches its answer per level in this dict (cleared on every
# level change). Reading it first makes the disabled case one dict lookup on each
# operation: `_LOG_CACHE(_DEBUG) is not False and _log.isEnabledFor(_DEBUG)`.
# (Without that private dict, `{}.get` answers None: isEnabledFor is always asked.)
_LOG_CACHE: Callable[[int], bool | None] = getattr(_log, "_cache", {}).get

T = TypeVar("T")

_now = time.perf_counter_ns
# A tuple: isinstance() with a tuple is faster than with a `X | Y` union.
_BYTES_LIKE = (bytes, bytearray, memoryview)


# Connector type -> whether it is an EvictingConnector (runtime Protocol checks are
# slow, and get_evict() is on the per-proxy resolve path).
_evicting_types: dict[type, bool] = {}


def _is_evicting(connector: object) -> bool:
    kind = type(connector)
    evicting = _evicting_types.get(kind)
    if evicting is None:
        evicting = _evicting_types[kind] = isinstance(connector, EvictingConnector)
    return evicting


# Connector type -> whether it is an ExpiringConnector (accepts ``ttl=``).
_expiring_types: dict[type, bool] = {}


def _ttl_option(connector: object, ttl: float) -> float:
    """Return ``ttl`` checked for ``connector``'s ``put(..., ttl=)``.

    Raises:
        ValueError: if ``ttl`` is not a positive, finite number of seconds.
        TypeError: if the connector cannot expire objects (not an
            `ExpiringConnector`).
    """
    kind = type(connector)
    expiring = _expiring_types.get(kind)
    if expiring is None:
        expiring = _expiring_types[kind] = isinstance(connector, ExpiringConnector)
    if not expiring:
        raise TypeError(
            f"ttl= needs a connector that can expire objects (ExpiringConnector); "
            f"{kind.__name__} cannot. Use a lifetime to evict its objects instead."
        )
    return check_ttl(ttl)


def _attach(
    lifetime: Lifetime, store: Any, keys: tuple[Any, ...], leased: bool
) -> None:
    # Keys written with their lease's TTL need no second round trip to arm it.
    if leased:
        cast("LeaseLifetime", lifetime)._add_armed(*keys, store=store)
    else:
        lifetime.add_key(*keys, store=store)


def _check_refcount(evict: bool, lifetime: object, ttl: float | None) -> None:
    if evict or lifetime is not None or ttl is not None:
        raise ValueError(
            "refcount=True is exclusive with evict=True, a lifetime and ttl=: the "
            "holders alone decide when the object is evicted."
        )


def _shortcut(connector: object, fast: str, *plain: str) -> Any:
    """Return ``connector.<fast>`` when it may stand in for the ``plain`` methods.

    A parts method (``put_parts``, ``get_parts``) does what the plain method of
    the same class does, minus a copy. A subclass or test double that overrides a
    plain method must see its override called, so the shortcut is only taken while
    each plain method is the one the class defining ``fast`` has.
    """
    cls = type(connector)
    owner = next((c for c in cls.__mro__ if fast in c.__dict__), None)
    if owner is None:
        return None
    for name in plain:
        if getattr(cls, name, None) is not getattr(owner, name, None):
            return None
    return getattr(connector, fast)


def _unpatched(connector: object, name: str, plain: Any) -> bool:
    # The plain method is still the one seen when the shortcut was chosen: nothing
    # (e.g. ``mock.patch.object``) replaced it on the class or the instance since.
    return getattr(type(connector), name, None) is plain and name not in getattr(
        connector, "__dict__", ()
    )


def _is_nonproxiable(obj: object) -> bool:
    # A proxy of None/True/False would break `is` checks, so they are refused.
    return obj is None or obj.__class__ is bool


def _nonproxiable_error(obj: object) -> NonProxiableTypeError:
    return NonProxiableTypeError(
        f"{obj!r} ({type(obj).__name__}) cannot be proxied: identity checks such "
        "as `is None` would be false for its proxy. Pass skip_nonproxiable=True to "
        "get such objects back unchanged."
    )


def _object_path(obj: object) -> str:
    module = getattr(obj, "__module__", None) or type(obj).__module__
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{module}.{name}"


class Store(Closeable, Generic[ConnectorT]):
    """Serializes objects into a connector and hands out proxies to them.

    Args:
        name: Name of the store; proxies find their store in a process by it.
        connector: Where the bytes go.
        serializer: Custom serializer (default `proxystore.serialize.serialize`).
            It must be importable by name in every process that resolves proxies
            (it travels inside each proxy's config).
        deserializer: Custom deserializer (default
            [`proxystore.serialize.deserialize`][proxystore.serialize.deserialize]).
        cache_size: Number of deserialized objects kept in an LRU cache (0: none).
        metrics: Record per-key metrics (see `metrics`). Off by default; when
            off, no timer is read.
        populate_target: Default for `proxy`: return proxies that are already
            resolved (with the object's class and hash cached), so the creating
            process never fetches its own object back.
        register: Register the store by name in this process (see
            `register_store`); `close` unregisters it.
        auth_key_id: Sign every payload on put and verify it on get, before any
            deserialization, with the HMAC key this reference names
            (``"env:VAR"`` or a credentials-file entry, see
            `proxystore.utils.credentials`). Only the reference enters
            `config` (and so proxies); each process resolves the key itself.
        auth_algorithm: MAC used to sign: ``"hmac-sha256"`` (standard library)
            or ``"blake3"`` (several times faster; needs the ``blake3``
            package wherever payloads are signed or verified). Verification
            accepts either.

    Raises:
        ValueError: if ``name`` is empty or ``cache_size`` is negative.
        StoreExistsError: if ``register`` and a store of that name is registered.
        CredentialError: if ``auth_key_id`` does not resolve in this process.
    """

    def __init__(
        self,
        name: str,
        connector: ConnectorT,
        *,
        serializer: SerializerT | None = None,
        deserializer: DeserializerT | None = None,
        cache_size: int = 16,
        metrics: bool = False,
        populate_target: bool = True,
        register: bool = False,
        auth_key_id: str | None = None,
        auth_algorithm: str = "hmac-sha256",
    ) -> None:
        if not _is_nonempty_str(name):
            raise ValueError(f"Store name must be a non-empty string, got {name!r}.")
        if cache_size < 0:
            raise ValueError(f"Store cache_size must be >= 0, got {cache_size}.")
        self.connector: ConnectorT = connector
        self.cache: LRUCache[ConnectorKeyT, Any] = LRUCache(cache_size)
        # Deadlines (time.monotonic_ns) of the objects this store put or
        # expired with a TTL: a cached copy is not returned past its deadline.
        self._deadlines: dict[Any, int] = {}
        self._deadlines_pruned = 0
        self._name = name
        self._custom_serializer = serializer
        self._custom_deserializer = deserializer
        self._serialize: SerializerT = serialize if serializer is None else serializer
        self._deserialize: DeserializerT = (
            deserialize if deserializer is None else deserializer
        )
        # A connector that takes parts (shared memory) receives the default
        # serializer's header and buffers unjoined: the data is copied once.
        self._put_parts: Any = (
            _shortcut(connector, "put_parts", "put") if serializer is None else None
        )
        self._plain_put: Any = getattr(type(connector), "put", None)
        self._metrics = StoreMetrics() if metrics else None
        self._populate_target = populate_target
        self._register = register
        self._lock = threading.RLock()
        self._config: StoreConfig | None = None
        self._wire: tuple[Any, ...] | None = None
        self._closed = False
        if auth_algorithm not in ALGORITHMS:
            raise ValueError(
                f"Store auth_algorithm must be one of {sorted(ALGORITHMS)}, "
                f"got {auth_algorithm!r}."
            )
        self._auth_key_id = auth_key_id
        self._auth_algorithm = auth_algorithm
        self._auth_key = (
            None if auth_key_id is None else resolve_secret_bytes(auth_key_id)
        )
        # A connector that hands payloads back as parts (Local keeps immutable
        # parts unjoined) is read through them by the default deserializer: a
        # ``bytes`` object then comes back without a copy (signed or not).
        self._get_parts: Any = (
            _shortcut(connector, "get_parts", "get", "get_evict")
            if deserializer is None
            else None
        )
        self._plain_get: Any = getattr(type(connector), "get", None)
        self._plain_get_evict: Any = getattr(type(connector), "get_evict", None)
        if register:
            try:
                register_store(self)
            except Exception as e:
                e.add_note(
                    "Use a different name, get the existing store with "
                    "get_store(name), or create this one with register=False."
                )
                raise
        if _log.isEnabledFor(logging.INFO):
            _log.info("Initialized %r", self)

    # ------------------------------------------------------------- properties
    @property
    def name(self) -> str:
        """Name of the store."""
        return self._name

    @property
    def metrics(self) -> StoreMetrics | None:
        """Recorded metrics, or ``None`` when the store was made with metrics off."""
        return self._metrics

    @property
    def serializer(self) -> SerializerT:
        """The serializer used when a call does not pass one."""
        return self._serialize

    @property
    def deserializer(self) -> DeserializerT:
        """The deserializer used when a call does not pass one."""
        return self._deserialize

    # -------------------------------------------------------------- lifecycle
    def __repr__(self) -> str:
        ser = "default" if self._custom_serializer is None else "custom"
        des = "default" if self._custom_deserializer is None else "custom"
        return (
            # Same text as the reference release (name unquoted).
            f"{type(self).__name__}(name={self._name}, "
            f"connector={self.connector!r}, serializer={ser}, deserializer={des}, "
            f"cache_size={self.cache.maxsize}, metrics={self._metrics is not None}, "
            f"populate_target={self._populate_target}, "
            f"auto_register={self._register})"
        )

    def close(self, *args: Any, **kwargs: Any) -> None:
        """Unregister the store (if it registered itself) and close the connector.

        Arguments are passed to the connector's ``close()`` (e.g.
        ``FileConnector.close(clear=True)``). Closing twice is a no-op.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._register and _stores.get(self._name) is self:
            unregister_store(self._name)
        self.cache.clear()
        self._deadlines.clear()
        self.connector.close(*args, **kwargs)

    # ---------------------------------------------------------------- config
    def config(self) -> StoreConfig:
        """Return the config from which `from_config` rebuilds this store.

        Computed once: a store's connector and options do not change.
        """
        config = self._config
        if config is None:
            connector_type = type(self.connector)
            config = self._config = StoreConfig(
                name=self._name,
                connector=ConnectorConfig(
                    kind=f"{connector_type.__module__}.{connector_type.__qualname__}",
                    options=self.connector.config(),
                ),
                serializer=self._custom_serializer,
                deserializer=self._custom_deserializer,
                cache_size=self.cache.maxsize,
                metrics=self._metrics is not None,
                populate_target=self._populate_target,
                auto_register=self._register,
                auth_key_id=self._auth_key_id,
                auth_algorithm=self._auth_algorithm,
            )
        return config

    @classmethod
    def from_config(cls, config: StoreConfig) -> Store[Any]:
        """Build a store (and a new connector) from a config.

        Raises:
            ValueError: if the config names an unknown connector type.
            StoreExistsError: if ``config.auto_register`` and the name is taken.
        """
        # Any: the connector type is only known at run time here.
        connector: Any = config.connector.get_connector()
        return cls(
            config.name,
            connector,
            serializer=config.serializer,
            deserializer=config.deserializer,
            cache_size=config.cache_size,
            metrics=config.metrics,
            populate_target=config.populate_target,
            register=config.auto_register,
            auth_key_id=config.auth_key_id,
            auth_algorithm=config.auth_algorithm,
        )

    # ------------------------------------------------------------- serializing
    def _to_bytes(self, obj: Any, serializer: SerializerT | None) -> BytesLike:
        auth_key = self._auth_key
        if (
            auth_key is not None
            and serializer is None
            and self._custom_serializer is None
        ):
            # MAC header and payload laid out together: one copy, as unsigned.
            return serialize_signed(obj, auth_key, algorithm=self._auth_algorithm)
        data = (self._serialize if serializer is None else serializer)(obj)
        if not isinstance(data, _BYTES_LIKE):
            raise TypeError(
                "Serializer must return a bytes-like object, got "
                f"{type(data).__name__}."
            )
        if self._auth_key is not None:
            return sign(data, self._auth_key, algorithm=self._auth_algorithm)
        return data

    def _from_bytes(
        self, data: BytesLike, key: ConnectorKeyT, deserializer: DeserializerT | None
    ) -> Any:
        func = self._deserialize if deserializer is None else deserializer
        if self._auth_key is not None:
            # Before anything decodes a byte: a forged payload never reaches pickle.
            data = verify(data, self._auth_key)
        try:
            return func(data)
        except (PayloadAuthenticationError, DisallowedTypeError):
            raise  # already names the problem; callers may catch the type
        except Exception as e:
            raise self._decode_error(func, key) from e

    def _decode_error(self, func: Any, key: ConnectorKeyT) -> SerializationError:
        return SerializationError(
            f"Failed to deserialize object (deserializer={_object_path(func)}, "
            f"key={key!r}, store={self._name!r})."
        )

    def _from_parts(self, parts: Sequence[BytesLike], key: ConnectorKeyT) -> Any:
        # Only reached with the default deserializer.
        if self._auth_key is not None:
            # Before anything decodes a byte; the payload parts are not copied.
            parts = verify_parts(parts, self._auth_key)
        try:
            return deserialize_parts(parts)
        except Exception as e:
            raise self._decode_error(deserialize, key) from e

    # ------------------------------------------------------------ operations
    @staticmethod
    def _check_lifetime(lifetime: Lifetime | None) -> None:
        # Refuse an ended lifetime before anything is stored: checking afterwards
        # (when the key is attached) would leave an object nobody evicts.
        if lifetime is not None and lifetime.done():
            raise RuntimeError(
                f"{lifetime!r} has ended: no new object can be attached to it."
            )

    def put(
        self,
        obj: Any,
        *,
        lifetime: Lifetime | None = None,
        serializer: SerializerT | None = None,
        ttl: float | None = None,
        **kwargs: Any,
    ) -> ConnectorKeyT:
        """Serialize ``obj`` and store it; return its key. The cache is not filled.

        Args:
            obj: Object to store.
            lifetime: Lifetime to attach the new key to.
            serializer: Serializer overriding the store's.
            ttl: Seconds after which the backend removes the object, even if
                every process that knew of it died (see
                `ExpiringConnector`); ``None``: no expiry.
            kwargs: Passed to the connector's ``put``.

        Raises:
            TypeError: if the serializer does not return bytes-like data, or
                ``ttl`` is given and the connector cannot expire objects.
            ValueError: if ``ttl`` is not a positive, finite number.
            SerializationError: if the default serializer cannot handle ``obj``.
            ConnectorError: if the connector fails.
        """
        leased = False
        if lifetime is not None:
            self._check_lifetime(lifetime)
            if ttl is None and isinstance(lifetime, LeaseLifetime):
                # The lease's end is written with the object (crash-safe).
                ttl = lifetime.backend_ttl(self)
                leased = ttl is not None
            if ttl is not None:
                kwargs["ttl"] = _ttl_option(self.connector, ttl)
        elif ttl is not None:
            kwargs["ttl"] = _ttl_option(self.connector, ttl)
        # Taken before the put: never later than the backend's own deadline.
        started = 0 if ttl is None else time.monotonic_ns()
        metrics = self._metrics
        if (
            self._put_parts is not None
            and _unpatched(self.connector, "put", self._plain_put)
            and metrics is None
            and serializer is None
            and not kwargs
        ):
            parts = serialize_parts(obj)
            if self._auth_key is not None:  # the MAC header is one more part
                parts = sign_parts(
                    parts, self._auth_key, algorithm=self._auth_algorithm
                )
            key: ConnectorKeyT = self._put_parts(parts)
        elif metrics is None:
            data = self._to_bytes(obj, serializer)
            # Without options, a plain call: unpacking an empty **kwargs costs.
            key = (
                self.connector.put(data, **kwargs)
                if kwargs
                else self.connector.put(data)
            )
        else:
            start = _now()
            data = self._to_bytes(obj, serializer)
            mid = _now()
            key = self.connector.put(data, **kwargs)
            metrics.add_attribute("store.put.object_size", key, len(data))
            metrics.add_time("store.put.serialize", key, (mid - start) / 1e6)
            metrics._time_since("store.put.connector", key, mid)
            metrics._time_since("store.put", key, start)
        if ttl is not None:
            self._note_deadlines((key,), started, ttl)
        if _LOG_CACHE(_DEBUG) is not False and _log.isEnabledFor(_DEBUG):
            self._log_op("PUT", key)
        if lifetime is not None:
            _attach(lifetime, self, (key,), leased)
        return key

    def put_batch(
        self,
        objs: Sequence[Any],
        *,
        lifetime: Lifetime | None = None,
        serializer: SerializerT | None = None,
        ttl: float | None = None,
        **kwargs: Any,
    ) -> list[ConnectorKeyT]:
        """Serialize and store each object with one connector call; return keys.

        Takes the same options as `put` (``ttl`` applies to every object).

        Raises:
            TypeError: if the serializer does not return bytes-like data, or
                ``ttl`` is given and the connector cannot expire objects.
            ValueError: if ``ttl`` is not a positive, finite number.
            SerializationError: if the default serializer cannot handle an object.
            ConnectorError: if the connector fails.
        """
        self._check_lifetime(lifetime)
        leased = False
        if ttl is None and isinstance(lifetime, LeaseLifetime):
            ttl = lifetime.backend_ttl(self)
            leased = ttl is not None
        if ttl is not None:
            kwargs["ttl"] = _ttl_option(self.connector, ttl)
        metrics = self._metrics
        start = 0 if metrics is None else _now()
        datas = [self._to_bytes(obj, serializer) for obj in objs]
        mid = 0 if metrics is None else _now()
        started = 0 if ttl is None else time.monotonic_ns()
        keys: list[ConnectorKeyT] = list(self.connector.put_batch(datas, **kwargs))
        if ttl is not None:
            self._note_deadlines(keys, started, ttl)
        if metrics is not None:
            batch = tuple(keys)
            # The total size, as the reference records it.
            metrics.add_attribute(
                "store.put_batch.object_sizes", batch, sum(len(d) for d in datas)
            )
            metrics.add_time("store.put_batch.serialize", batch, (mid - start) / 1e6)
            metrics._time_since("store.put_batch.connector", batch, mid)
            metrics._time_since("store.put_batch", batch, start)
        if lifetime is not None:
            _attach(lifetime, self, tuple(keys), leased)
        return keys

    def get(
        self,
        key: ConnectorKeyT,
        *,
        deserializer: DeserializerT | None = None,
        default: Any = None,
    ) -> Any:
        """Return the object at ``key``, or ``default`` when nothing is stored.

        The return type is ``Any``: a key does not record the type of its object
        (a [`Proxy`][proxystore.proxy.Proxy] from `proxy` does).
        Deserialized objects are kept in the LRU cache, so repeated gets of one key
        return the same object.

        Raises:
            SerializationError: if the stored bytes cannot be deserialized (the
                message names the key and the deserializer).
            ConnectorError: if the connector fails.
        """
        if self._metrics is not None:
            obj = self._get_measured(self._metrics, key, deserializer, _MISSING)
        else:
            cache = self.cache
            if cache.maxsize:
                obj = cache.get(key, _MISSING)
            else:  # caching off: count the miss without the call
                cache.misses += 1
                obj = _MISSING
            if obj is not _MISSING and (
                not self._deadlines or not self._cached_expired(key)
            ):
                if _LOG_CACHE(_DEBUG) is not False and _log.isEnabledFor(_DEBUG):
                    self._log_op("GET", key, " (cached)")
                return obj
            obj = _MISSING
            if (
                deserializer is None
                and self._get_parts is not None
                and _unpatched(self.connector, "get", self._plain_get)
            ):
                parts = self._get_parts(key)
                if parts is not None:
                    obj = self._from_parts(parts, key)
            else:
                data = self.connector.get(key)
                if data is not None:
                    obj = self._from_bytes(data, key, deserializer)
            if obj is not _MISSING and cache.maxsize:
                cache.set(key, obj)
        if _LOG_CACHE(_DEBUG) is not False and _log.isEnabledFor(_DEBUG):
            self._log_op("GET", key, " (missing)" if obj is _MISSING else "")
        return default if obj is _MISSING else obj

    def _get_measured(
        self,
        metrics: StoreMetrics,
        key: ConnectorKeyT,
        deserializer: DeserializerT | None,
        default: Any,
    ) -> Any:
        start = _now()
        obj = self.cache.get(key, _MISSING)
        if obj is not _MISSING and self._deadlines and self._cached_expired(key):
            obj = _MISSING
        if obj is not _MISSING:
            metrics.add_counter("store.get.cache_hits", key, 1)
        else:
            metrics.add_counter("store.get.cache_misses", key, 1)
            mid = _now()
            data = self.connector.get(key)
            metrics._time_since("store.get.connector", key, mid)
            if data is None:
                obj = default
            else:
                metrics.add_attribute("store.get.object_size", key, len(data))
                mid = _now()
                obj = self._from_bytes(data, key, deserializer)
                metrics._time_since("store.get.deserialize", key, mid)
                self.cache.set(key, obj)
        metrics._time_since("store.get", key, start)
        return obj

    def exists(self, key: ConnectorKeyT) -> bool:
        """Return whether an object is at ``key`` (the cache is checked first).

        Raises:
            ConnectorError: if the connector fails.
        """
        metrics = self._metrics
        if metrics is None:
            return self._cached(key) or self.connector.exists(key)
        # As the reference records: the whole call always, the connector on a miss.
        start = _now()
        found = self._cached(key)
        if not found:
            mid = _now()
            found = self.connector.exists(key)
            metrics._time_since("store.exists.connector", key, mid)
        metrics._time_since("store.exists", key, start)
        return found

    def evict(self, key: ConnectorKeyT) -> None:
        """Remove the object at ``key`` from the connector and the cache.

        A missing key is not an error.

        Raises:
            ConnectorError: if the connector fails.
        """
        metrics = self._metrics
        start = 0 if metrics is None else _now()
        self.connector.evict(key)
        self.cache.evict(key)
        if self._deadlines:
            self._deadlines.pop(key, None)
        if metrics is not None:
            metrics._time_since("store.evict.connector", key, start)
            metrics._time_since("store.evict", key, start)
        if _LOG_CACHE(_DEBUG) is not False and _log.isEnabledFor(_DEBUG):
            self._log_op("EVICT", key)

    def _expiring(self) -> ExpiringConnector[Any]:
        connector = self.connector
        if not isinstance(connector, ExpiringConnector):
            raise TypeError(
                f"{type(connector).__name__} cannot expire objects (it is not an "
                "ExpiringConnector)."
            )
        return connector

    def expire(self, key: ConnectorKeyT, ttl: float | None) -> bool:
        """Set the remaining time-to-live of the object at ``key`` in the backend.

        Args:
            key: Key of the object.
            ttl: Seconds from now after which the backend removes it; ``None``
                removes its expiry.

        Returns:
            Whether an (unexpired) object exists at ``key``.

        Raises:
            TypeError: if the connector cannot expire objects.
            ValueError: if ``ttl`` is not a positive, finite number.
        """
        checked = check_ttl(ttl)
        started = time.monotonic_ns()
        found = self._expiring().expire(key, checked)
        if checked is not None and found:
            self._note_deadlines((key,), started, checked)
        else:
            # No expiry any more (or no object): forget the deadline; a
            # vanished object must not be served from the cache either.
            self._deadlines.pop(key, None)
            if not found:
                self.cache.evict(key)
        return found

    # ------------------------------------------------------ cached deadlines
    def _note_deadlines(
        self, keys: Sequence[ConnectorKeyT], started: int, ttl: float
    ) -> None:
        """Record that ``keys`` expire ``ttl`` seconds after ``started``."""
        deadline = started + int(ttl * 1e9)
        deadlines = self._deadlines
        for key in keys:
            deadlines[key] = deadline
        if len(deadlines) >= 2 * self._deadlines_pruned + 64:
            # Amortised: forget what has expired (and is then out of the cache).
            now = time.monotonic_ns()
            for key, end in list(deadlines.items()):
                if end <= now:
                    self._cached_expired(key)
            self._deadlines_pruned = len(deadlines)

    def _cached_expired(self, key: ConnectorKeyT) -> bool:
        """Return whether ``key`` passed the deadline this store set for it.

        An expired key leaves the cache (and the table of deadlines).
        """
        deadline = self._deadlines.get(key)
        if deadline is None or deadline > time.monotonic_ns():
            return False
        self._deadlines.pop(key, None)
        self.cache.evict(key)
        return True

    def _cached(self, key: ConnectorKeyT) -> bool:
        """Return whether ``key`` is cached and not past a known deadline."""
        return self.cache.exists(key) and (
            not self._deadlines or not self._cached_expired(key)
        )

    def ttl(self, key: ConnectorKeyT) -> float | None:
        """Return the seconds left before the object at ``key`` expires.

        Returns:
            ``None`` when it has no expiry or does not exist.

        Raises:
            TypeError: if the connector cannot expire objects.
        """
        return self._expiring().ttl(key)

    def _log_op(self, operation: str, key: ConnectorKeyT, note: str = "") -> None:
        # Same shape as the reference's lines, plus the connector.
        _log.debug(
            'Store(name="%s"): %s %r (connector=%s)%s',
            self._name,
            operation,
            key,
            type(self.connector).__name__,
            note,
        )

    def get_evict(
        self,
        key: ConnectorKeyT,
        *,
        deserializer: DeserializerT | None = None,
        default: Any = None,
    ) -> Any:
        """Return the object at ``key`` and evict it; ``default`` when missing.

        Same result as `get` followed (when found) by `evict`, which
        is what resolving a proxy made with ``evict=True`` does. When the
        connector is an `EvictingConnector`
        and the object is not cached, it is read and removed
        in one connector call (e.g. one Redis ``GETDEL`` instead of ``GET`` then
        ``DEL``), and the cache is not filled with an object about to be evicted.
        Then the stored bytes are gone even when they fail to deserialize.
        A missing key is left as it is.

        Raises:
            SerializationError: if the stored bytes cannot be deserialized.
            ConnectorError: if the connector fails.
        """
        connector = self.connector
        if self._metrics is not None or not _is_evicting(connector):
            obj = self.get(key, deserializer=deserializer, default=_MISSING)
        else:
            # Counts a cache hit or miss, as get() does.
            obj = self.cache.get(key, _MISSING)
            if obj is not _MISSING and self._deadlines and self._cached_expired(key):
                obj = _MISSING
            if obj is _MISSING:
                if (
                    deserializer is None
                    and self._get_parts is not None
                    and _unpatched(connector, "get_evict", self._plain_get_evict)
                ):
                    parts = self._get_parts(key, evict=True)
                    if _LOG_CACHE(_DEBUG) is not False and _log.isEnabledFor(_DEBUG):
                        self._log_op(
                            "GET_EVICT", key, "" if parts is not None else " (missing)"
                        )
                    if parts is None:
                        return default
                    return self._from_parts(parts, key)
                data = cast("EvictingConnector[Any]", connector).get_evict(key)
                if _LOG_CACHE(_DEBUG) is not False and _log.isEnabledFor(_DEBUG):
                    self._log_op(
                        "GET_EVICT", key, "" if data is not None else " (missing)"
                    )
                if data is None:
                    return default
                return self._from_bytes(data, key, deserializer)
        if obj is _MISSING:
            return default
        self.evict(key)
        return obj

    def is_cached(self, key: ConnectorKeyT) -> bool:
        """Return whether the deserialized object at ``key`` is in the cache."""
        return self._cached(key)

    # --------------------------------------------------------------- proxies
    def _make_proxy(
        self,
        key: ConnectorKeyT,
        obj: T,
        evict: bool,
        deserializer: DeserializerT | None,
        populate_target: bool | None,
    ) -> Proxy[T]:
        # What StoreFactory(key, self.config(), ...) builds, with the config's wire
        # form computed once per store instead of on every pickling of a proxy.
        wire = self._wire
        if wire is None:
            wire = self._wire = self.config()._to_wire()
        factory: StoreFactory[ConnectorT, T] = StoreFactory.__new__(StoreFactory)
        _init_from_wire(factory, key, wire, evict, deserializer)
        factory._config = self._config
        if self._populate_target if populate_target is None else populate_target:
            return Proxy(factory, cache_defaults=True, target=obj)
        return Proxy(factory)

    @overload
    def proxy(
        self,
        obj: T,
        *,
        evict: bool = ...,
        lifetime: Lifetime | None = ...,
        serializer: SerializerT | None = ...,
        deserializer: DeserializerT | None = ...,
        ttl: float | None = ...,
        refcount: bool = ...,
        populate_target: bool | None = ...,
        skip_nonproxiable: Literal[False] = ...,
        **kwargs: Any,
    ) -> Proxy[T]: ...

    @overload
    def proxy(
        self,
        obj: T,
        *,
        evict: bool = ...,
        lifetime: Lifetime | None = ...,
        serializer: SerializerT | None = ...,
        deserializer: DeserializerT | None = ...,
        ttl: float | None = ...,
        refcount: bool = ...,
        populate_target: bool | None = ...,
        skip_nonproxiable: bool,
        **kwargs: Any,
    ) -> Proxy[T] | T: ...

    def proxy(
        self,
        obj: T,
        *,
        evict: bool = False,
        lifetime: Lifetime | None = None,
        serializer: SerializerT | None = None,
        deserializer: DeserializerT | None = None,
        ttl: float | None = None,
        refcount: bool = False,
        populate_target: bool | None = None,
        skip_nonproxiable: bool = False,
        **kwargs: Any,
    ) -> Proxy[T] | T:
        """Store ``obj`` and return a proxy that resolves to it anywhere.

        Args:
            obj: Object to proxy.
            evict: Evict the object from the store when the proxy first resolves
                (in whichever process that happens).
            lifetime: Lifetime that owns the object (exclusive with ``evict``).
            serializer: Serializer overriding the store's.
            deserializer: Deserializer the proxy uses, overriding the store's.
            ttl: Seconds after which the backend removes the object, even if
                every process that knew of it died (see `put`); a proxy
                resolved later finds nothing. ``None``: no expiry.
            refcount: Count the holders of the object across processes: it is
                evicted once this proxy and every copy unpickled elsewhere are
                dropped, or their processes died (see
                `proxystore.store.refcount`). Exclusive with ``evict``,
                ``lifetime`` and ``ttl``.
            populate_target: Return an already-resolved proxy (with ``obj``'s class
                and hash cached) instead of one that fetches on first use; ``None``
                uses the store's default.
            skip_nonproxiable: Return ``None``/``bool`` objects unchanged instead
                of raising.
            kwargs: Passed to the connector's ``put``.

        Raises:
            ValueError: if both ``evict`` and ``lifetime`` are given, or
                ``refcount`` with any of them or ``ttl``.
            RefCountNotSupportedError: if ``refcount`` and the connector cannot
                count holders.
            NonProxiableTypeError: if ``obj`` is ``None`` or a ``bool`` and
                ``skip_nonproxiable`` is false.
            SerializationError: if ``obj`` cannot be serialized.
            ConnectorError: if the connector fails.
        """
        if evict and lifetime is not None:
            raise ValueError(
                "evict=True and a lifetime are mutually exclusive: the lifetime "
                "already decides when the object is evicted."
            )
        if _is_nonproxiable(obj):
            if skip_nonproxiable:
                return obj
            raise _nonproxiable_error(obj)
        self._check_lifetime(lifetime)
        if refcount:
            _check_refcount(evict, lifetime, ttl)
            return refcounted_proxy(
                self,
                obj,
                serializer=serializer,
                deserializer=deserializer,
                populate_target=populate_target,
                **kwargs,
            )
        metrics = self._metrics
        start = 0 if metrics is None else _now()
        if ttl is None and lifetime is None:
            key = self.put(obj, serializer=serializer, **kwargs)
        elif isinstance(lifetime, LeaseLifetime):
            # The lease's end goes to the backend with the object (see `put`),
            # which attaches the key to the lease.
            key = self.put(
                obj, serializer=serializer, ttl=ttl, lifetime=lifetime, **kwargs
            )
            lifetime = None
        else:
            key = self.put(obj, serializer=serializer, ttl=ttl, **kwargs)
        proxy = self._make_proxy(key, obj, evict, deserializer, populate_target)
        if lifetime is not None:
            lifetime.add_proxy(proxy)
        if metrics is not None:
            metrics._time_since("store.proxy", key, start)
        return proxy

    @overload
    def proxy_batch(
        self,
        objs: Sequence[T],
        *,
        evict: bool = ...,
        lifetime: Lifetime | None = ...,
        serializer: SerializerT | None = ...,
        deserializer: DeserializerT | None = ...,
        ttl: float | None = ...,
        refcount: bool = ...,
        populate_target: bool | None = ...,
        skip_nonproxiable: Literal[False] = ...,
        **kwargs: Any,
    ) -> list[Proxy[T]]: ...

    @overload
    def proxy_batch(
        self,
        objs: Sequence[T],
        *,
        evict: bool = ...,
        lifetime: Lifetime | None = ...,
        serializer: SerializerT | None = ...,
        deserializer: DeserializerT | None = ...,
        ttl: float | None = ...,
        refcount: bool = ...,
        populate_target: bool | None = ...,
        skip_nonproxiable: bool,
        **kwargs: Any,
    ) -> list[Proxy[T] | T]: ...

    def proxy_batch(
        self,
        objs: Sequence[T],
        *,
        evict: bool = False,
        lifetime: Lifetime | None = None,
        serializer: SerializerT | None = None,
        deserializer: DeserializerT | None = None,
        ttl: float | None = None,
        refcount: bool = False,
        populate_target: bool | None = None,
        skip_nonproxiable: bool = False,
        **kwargs: Any,
    ) -> list[Proxy[T]] | list[Proxy[T] | T]:
        """Proxy each object, storing them with a single ``put_batch``.

        Takes the same options as `proxy`. With ``skip_nonproxiable``,
        ``None``/``bool`` entries come back unchanged at their positions.

        Raises:
            ValueError: if both ``evict`` and ``lifetime`` are given.
            NonProxiableTypeError: if an object is ``None`` or a ``bool`` and
                ``skip_nonproxiable`` is false.
        """
        if evict and lifetime is not None:
            raise ValueError("evict=True and a lifetime are mutually exclusive.")
        proxiable = [obj for obj in objs if not _is_nonproxiable(obj)]
        if len(proxiable) != len(objs) and not skip_nonproxiable:
            raise _nonproxiable_error(next(o for o in objs if _is_nonproxiable(o)))
        if refcount:
            _check_refcount(evict, lifetime, ttl)
            made_rc = iter(
                refcounted_proxy_batch(
                    self,
                    proxiable,
                    serializer=serializer,
                    deserializer=deserializer,
                    populate_target=populate_target,
                    **kwargs,
                )
            )
            return [obj if _is_nonproxiable(obj) else next(made_rc) for obj in objs]
        metrics = self._metrics
        start = 0 if metrics is None else _now()
        lease = lifetime if isinstance(lifetime, LeaseLifetime) else None
        keys = self.put_batch(
            proxiable, serializer=serializer, ttl=ttl, lifetime=lease, **kwargs
        )
        if lease is not None:
            lifetime = None  # the keys are already attached by put_batch
        made = iter(
            [
                self._make_proxy(key, obj, evict, deserializer, populate_target)
                for key, obj in zip(keys, proxiable, strict=True)
            ]
        )
        proxies: list[Proxy[T] | T] = [
            obj if _is_nonproxiable(obj) else next(made) for obj in objs
        ]
        if lifetime is not None:
            lifetime.add_proxy(*(p for p in proxies if isinstance(p, Proxy)))
        if metrics is not None:
            metrics._time_since("store.proxy_batch", tuple(keys), start)
        return proxies

    def proxy_from_key(
        self,
        key: ConnectorKeyT,
        *,
        evict: bool = False,
        lifetime: Lifetime | None = None,
        deserializer: DeserializerT | None = None,
    ) -> Proxy[Any]:
        """Return an unresolved proxy of whatever is (or will be) stored at ``key``.

        The key's existence is not checked: resolving fails later if it is missing.

        Raises:
            ValueError: if both ``evict`` and ``lifetime`` are given.
        """
        if evict and lifetime is not None:
            raise ValueError("evict=True and a lifetime are mutually exclusive.")
        factory: StoreFactory[ConnectorT, Any] = StoreFactory(
            key, self.config(), evict=evict, deserializer=deserializer
        )
        proxy: Proxy[Any] = Proxy(factory)
        if lifetime is not None:
            lifetime.add_proxy(proxy)
        return proxy

    # As in the reference: `None`/`bool` come back as themselves (the default
    # skips them); any other object gives a locker.
    @overload
    def locked_proxy(
        self,
        obj: NonProxiableT,
        *,
        evict: bool = ...,
        lifetime: Lifetime | None = ...,
        serializer: SerializerT | None = ...,
        deserializer: DeserializerT | None = ...,
        ttl: float | None = ...,
        populate_target: bool | None = ...,
        skip_nonproxiable: Literal[True] = ...,
        **kwargs: Any,
    ) -> NonProxiableT: ...

    @overload
    def locked_proxy(
        self,
        obj: T,
        *,
        evict: bool = ...,
        lifetime: Lifetime | None = ...,
        serializer: SerializerT | None = ...,
        deserializer: DeserializerT | None = ...,
        ttl: float | None = ...,
        populate_target: bool | None = ...,
        skip_nonproxiable: bool = ...,
        **kwargs: Any,
    ) -> ProxyLocker[T]: ...

    def locked_proxy(
        self,
        obj: T,
        *,
        evict: bool = False,
        lifetime: Lifetime | None = None,
        serializer: SerializerT | None = None,
        deserializer: DeserializerT | None = None,
        ttl: float | None = None,
        populate_target: bool | None = None,
        skip_nonproxiable: bool = True,
        **kwargs: Any,
    ) -> ProxyLocker[T] | T:
        """Like `proxy`, but wrapped in a [`ProxyLocker`][proxystore.proxy.ProxyLocker].

        A locker travels like a proxy but cannot be resolved by accident;
        ``locker.unlock()`` returns the proxy. ``None``/``bool`` come back
        unchanged unless ``skip_nonproxiable=False``.

        Raises the same exceptions as `proxy`.
        """
        proxy = self.proxy(
            obj,
            evict=evict,
            lifetime=lifetime,
            serializer=serializer,
            deserializer=deserializer,
            ttl=ttl,
            populate_target=populate_target,
            skip_nonproxiable=skip_nonproxiable,
            **kwargs,
        )
        return ProxyLocker(proxy) if isinstance(proxy, Proxy) else proxy

    # As in the reference: `None`/`bool` come back as themselves (the default
    # skips them); any other object gives an owned proxy.
    @overload
    def owned_proxy(
        self,
        obj: NonProxiableT,
        *,
        serializer: SerializerT | None = ...,
        deserializer: DeserializerT | None = ...,
        ttl: float | None = ...,
        populate_target: bool | None = ...,
        skip_nonproxiable: Literal[True] = ...,
        **kwargs: Any,
    ) -> NonProxiableT: ...

    @overload
    def owned_proxy(
        self,
        obj: T,
        *,
        serializer: SerializerT | None = ...,
        deserializer: DeserializerT | None = ...,
        ttl: float | None = ...,
        populate_target: bool | None = ...,
        skip_nonproxiable: bool = ...,
        **kwargs: Any,
    ) -> OwnedProxy[T]: ...

    def owned_proxy(
        self,
        obj: T,
        *,
        serializer: SerializerT | None = None,
        deserializer: DeserializerT | None = None,
        ttl: float | None = None,
        populate_target: bool | None = None,
        skip_nonproxiable: bool = True,
        **kwargs: Any,
    ) -> OwnedProxy[T] | T:
        """Return an [`OwnedProxy`][proxystore.store.ref.OwnedProxy] of ``obj``.

        The object is evicted when the owned proxy is garbage collected (see
        `proxystore.store.ref`). ``None``/``bool`` come back unchanged unless
        ``skip_nonproxiable=False``.

        Raises the same exceptions as `proxy`.
        """
        proxy = self.proxy(
            obj,
            serializer=serializer,
            deserializer=deserializer,
            ttl=ttl,
            populate_target=populate_target,
            skip_nonproxiable=skip_nonproxiable,
            **kwargs,
        )
        if not isinstance(proxy, Proxy):
            return proxy
        populate = self._populate_target if populate_target is None else populate_target
        return into_owned(proxy, populate_target=populate)

    # --------------------------------------------------------------- futures
    def _deferrable(self, operation: str) -> DeferrableConnector[Any]:
        connector = self.connector
        if not isinstance(connector, DeferrableConnector):
            raise NotImplementedError(
                f"Store.{operation}() needs a connector with new_key() and set() "
                f"(DeferrableConnector); {type(connector).__name__} has not."
            )
        return connector

    def future(
        self,
        *,
        evict: bool = False,
        serializer: SerializerT | None = None,
        deserializer: DeserializerT | None = None,
        polling_interval: float = 1,
        polling_backoff_factor: float = 1,
        polling_interval_limit: float | None = None,
        polling_timeout: float | None = None,
    ) -> Future[Any]:
        """Return a [`Future`][proxystore.store.future.Future] for a result to come.

        Annotate the variable to type it: ``f: Future[int] = store.future()``.
        When the connector can notify (``WaitableConnector``), waiting for the
        result blocks on that notification instead of polling.

        Args:
            evict: Evict the result after it is first resolved.
            serializer: Serializer used by ``Future.set_result``.
            deserializer: Deserializer overriding the store's.
            polling_interval: First sleep between polls (seconds).
            polling_backoff_factor: Multiplier of the sleep after each miss.
            polling_interval_limit: Largest sleep between polls (seconds).
            polling_timeout: Give up waiting after this many seconds.

        Raises:
            NotImplementedError: if the connector is not a ``DeferrableConnector``.
        """
        metrics = self._metrics
        start = 0 if metrics is None else _now()
        key: ConnectorKeyT = self._deferrable("future").new_key()
        factory: PollingStoreFactory[ConnectorT, Any] = PollingStoreFactory(
            key,
            self.config(),
            deserializer=deserializer,
            evict=evict,
            polling_interval=polling_interval,
            polling_backoff_factor=polling_backoff_factor,
            polling_interval_limit=polling_interval_limit,
            polling_timeout=polling_timeout,
        )
        if metrics is not None:
            metrics._time_since("store.future", key, start)
        return Future(factory, serializer=serializer)

    def _set(
        self,
        key: ConnectorKeyT,
        obj: Any,
        *,
        serializer: SerializerT | None = None,
        **kwargs: Any,
    ) -> None:
        """Store ``obj`` at an existing ``key`` (deferrable connectors only).

        Raises:
            NotImplementedError: if the connector is not a ``DeferrableConnector``.
        """
        connector = self._deferrable("_set")
        metrics = self._metrics
        start = 0 if metrics is None else _now()
        data = self._to_bytes(obj, serializer)
        connector.set(key, data, **kwargs)
        self.cache.evict(key)
        if metrics is not None:
            metrics.add_attribute("store.set.object_size", key, len(data))
            metrics._time_since("store.set", key, start)


# The registry builds stores from configs (for proxies unpickled in a new process)
# through this hook: it sits below this module and cannot import `Store` itself.
_set_store_builder(Store.from_config)
