"""Distributed reference counting: objects that live exactly as long as their holders.

``store.proxy(obj, refcount=True)`` stores ``obj`` on a connector that counts
holders where the object lives (a
[`RefCountingConnector`][proxystore.connectors.holders.RefCountingConnector]:
Redis, the shared-memory connector, DIM peers, endpoints, the in-process
connector) and returns a proxy whose factory is a `RefCountedFactory`:

* Every process that has such a proxy (the one that made it, and each one that
  unpickles a copy) is a *holder* of the object. One background thread per
  process renews all of the process's holds, with one small message per store
  per heartbeat interval; a hold lapses after two intervals without renewal
  (its *lease*), so a process that dies releases its holds at most one lease
  after its last heartbeat.
* Dropping the last proxy of the object in a process (garbage collection, or
  `release`) releases the process's hold at once.
* The backend evicts the object when it has no live hold left, and never while
  one remains.
* A pickled proxy is covered while in flight: pickling registers a *transfer
  hold* with a lease of `transfer_lease` seconds, queued before any later
  release by the same process; the process that unpickles it converts the
  transfer into its own hold. A proxy that is never unpickled (its receiver died
  first) keeps the object for at most the transfer lease. Copies of one pickle
  (the same bytes unpickled by several processes) share its token: each is
  covered if it converts within an interval of the previous conversion (the
  trace a conversion leaves, see `proxystore.connectors.holders`).

The heartbeat interval and the transfer lease are process-wide settings
(`configure`, or the environment variables ``PROXYSTORE_REFCOUNT_INTERVAL`` and
``PROXYSTORE_REFCOUNT_TRANSFER_LEASE``); each hold carries its own lease, so
processes with different settings can share objects.

No message is sent by the caller's thread, nor inside a finalizer: the creation
hold, transfers, conversions and releases are queued for the heartbeat thread,
which sends them in order, batched per store (one message where the backend
takes holds and releases together), about 10 ms after the first of them.
`flush` waits for that queue to drain. The order is what makes it safe:

* a process's release never overtakes its own transfers, so the object stays
  covered while a copy travels;
* a copy converted before the sender's transfer (or even before the creation
  hold) reached the backend leaves a *tombstone* there that stands for the
  transfer still on its way (see `proxystore.connectors.holders`);
* until a creation hold lands the object has no holds at all, and nothing but
  its own process's release (queued behind that hold) can evict it.

A proxy pickled and unpickled by the same process sends no transfer at all, and
an object made and dropped within one batch without being shared costs one
message (its release, which evicts it).
"""

from __future__ import annotations

import atexit
import collections
import itertools
import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeAlias, TypeVar

from proxystore.connectors.holders import (
    Hold,
    RefCountingConnector,
    Release,
    counting,
)
from proxystore.proxy import Proxy, get_factory
from proxystore.store._registry import _stores
from proxystore.store.exceptions import (
    NonProxiableTypeError,
    RefCountNotSupportedError,
)
from proxystore.store.factory import (
    StoreFactory,
    _init_from_wire,
    _key_class,
    _key_path,
)
from proxystore.store.protocols import StoreLike
from proxystore.utils._ids import random_hex, uuid4_hex

if TYPE_CHECKING:
    from proxystore.store.config import StoreConfig
    from proxystore.store.types import ConnectorKeyT, DeserializerT, SerializerT

__all__ = [
    "RefCountedFactory",
    "configure",
    "flush",
    "holder_id",
    "interval",
    "is_refcounted",
    "refcounted_proxy",
    "refcounted_proxy_batch",
    "release",
    "transfer_lease",
]

_log = logging.getLogger(__name__)

T = TypeVar("T")


class _Store(StoreLike[Any], Protocol):
    """What the refcounted constructors use of a `Store` (no import cycle)."""

    _wire: tuple[Any, ...] | None
    _populate_target: bool

    def config(self) -> StoreConfig: ...

    def put(self, obj: Any, *, serializer: Any = ..., **kwargs: Any) -> Any: ...

    def put_batch(
        self, objs: Sequence[Any], *, serializer: Any = ..., **kwargs: Any
    ) -> list[Any]: ...


_DEFAULT_INTERVAL: Final = 5.0
_DEFAULT_TRANSFER_LEASE: Final = 60.0
#: Seconds the heartbeat thread waits after a wake-up, so that the messages
#: queued right behind the first one go out with it.
_COALESCE: Final = 0.01
#: Holds renewed per message at most (a heartbeat of many keys is split).
_CHUNK: Final = 1000


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        _log.warning("Ignoring %s=%r: not a number of seconds.", name, raw)
        return default
    return value if value > 0 else default


_settings = {
    "interval": _env_seconds("PROXYSTORE_REFCOUNT_INTERVAL", _DEFAULT_INTERVAL),
    "transfer_lease": _env_seconds(
        "PROXYSTORE_REFCOUNT_TRANSFER_LEASE", _DEFAULT_TRANSFER_LEASE
    ),
}


def configure(
    *, interval: float | None = None, transfer_lease: float | None = None
) -> None:
    """Set this process's heartbeat interval and transfer lease (seconds).

    Holds made afterwards use the new values; a running heartbeat picks up the
    new interval at its next beat.

    Raises:
        ValueError: if a value is not a positive number.
    """
    for name, value in (("interval", interval), ("transfer_lease", transfer_lease)):
        if value is None:
            continue
        if not 0 < float(value) < float("inf"):
            raise ValueError(
                f"{name} must be a positive number of seconds, got {value!r}."
            )
        _settings[name] = float(value)
    _HOLDS.wake()


def interval() -> float:
    """Return the heartbeat interval in seconds (a hold's lease is twice that)."""
    return _settings["interval"]


def transfer_lease() -> float:
    """Return the lease in seconds of the hold that covers a pickled proxy."""
    return _settings["transfer_lease"]


def _lease() -> float:
    return 2 * _settings["interval"]


def _new_holder() -> str:
    # The pid comes first: the shared-memory connector tells dead holders by it.
    return f"{os.getpid()}-{random_hex(16)}"


# id(connector) -> (connector, what counts its holders): companions keep state
# (e.g. loaded scripts), so one per connector; the connector is kept so its id
# is never reused while cached.
_counters: dict[int, tuple[object, RefCountingConnector | None]] = {}
_counters_lock = threading.Lock()


def _counting(store: StoreLike[Any]) -> RefCountingConnector:
    connector = store.connector
    cached = _counters.get(id(connector))
    if cached is None or cached[0] is not connector:
        with _counters_lock:
            try:
                counter = counting(connector)
            except ValueError as exc:
                raise RefCountNotSupportedError(str(exc)) from exc
            cached = _counters[id(connector)] = (connector, counter)
    counter = cached[1]
    if counter is None:
        raise RefCountNotSupportedError(
            f"refcount=True needs a connector that counts holders (Redis, shared "
            f"memory, DIM peers, endpoints, LocalConnector); "
            f"{type(connector).__name__} does not. Use a lifetime, ttl= or an "
            "OwnedProxy to evict its objects instead."
        )
    return counter


# A queued message: (store name, key, the hold to send or None for a proxy
# dropped in this process). A plain tuple: one is made per proxy event.
_Op: TypeAlias = tuple[str, Any, "Hold[Any] | None"]


class _Holds:
    """This process's holds and its heartbeat thread (one per process)."""

    def __init__(self) -> None:
        self.holder = _new_holder()
        self._lock = threading.Lock()
        # (store name, key) -> number of live proxies of it in this process.
        self._counts: dict[tuple[str, Any], int] = {}
        self._stores: dict[str, StoreLike[Any]] = {}
        # Appended from finalizers too: a deque append needs no lock of ours.
        self._ops: collections.deque[_Op] = collections.deque()
        self._wake = threading.Event()
        self._urgent = threading.Event()
        self._done = threading.Condition()
        self._seq = itertools.count(1)
        # Tokens of transfers not sent yet (see `adopt`).
        self._transfers: dict[str, bool] = {}
        self._submitted = 0
        self._completed = 0
        self._thread: threading.Thread | None = None
        self._stop = False
        # Longest time between two heartbeats (the first: since the thread
        # started) so far, in seconds: a holder whose beats are further apart
        # than a lease may have lost its holds (see `beat_gap`).
        self.max_gap = 0.0
        self._last_beat: float | None = None

    # ----------------------------------------------------------- caller side
    def wake(self) -> None:
        self._wake.set()

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    thread = threading.Thread(
                        target=self._run, name="proxystore-refcount", daemon=True
                    )
                    self._thread = thread
                    thread.start()

    def _submit(self, op: _Op) -> None:
        # next() on a count is atomic (no lock): finalizers submit too.
        self._submitted = next(self._seq)
        self._ops.append(op)
        if not self._wake.is_set():  # setting it again costs a lock round
            self._wake.set()

    def acquire_one(self, name: str, store: StoreLike[Any], key: Any) -> None:
        """`acquire_new` of one key (``name`` is the store's): the common case."""
        counts = self._counts
        with self._lock:
            if self._stores.get(name) is not store:
                self._stores[name] = store
            counts[name, key] = counts.get((name, key), 0) + 1
        # A Hold built as its tuple (no Python-level __new__).
        hold = _tuple_new(
            Hold, (key, self.holder, 2 * _settings["interval"], None, 0.0)
        )
        self._submit((name, key, hold))
        if self._thread is None:
            self._ensure_thread()

    def acquire_new(self, store: StoreLike[Any], keys: Sequence[Any]) -> None:
        """Count fresh keys of ``store`` as held here; queue their holds.

        The holds are sent by the heartbeat thread, ahead of anything queued
        later (transfers of these proxies, releases). Until a hold lands, nothing
        can evict the object: it has no holds at all, and a copy converted
        elsewhere before our transfer arrives leaves a tombstone that keeps it.
        """
        # (The caller checked that the connector counts holders.)
        lease = _lease()
        holder = self.holder
        name = store.name
        with self._lock:
            self._stores[name] = store
            for key in keys:
                self._counts[name, key] = self._counts.get((name, key), 0) + 1
        for key in keys:
            self._submit((name, key, Hold(key, holder, lease)))
        if self._thread is None:
            self._ensure_thread()

    def adopt(
        self,
        name: str,
        store: StoreLike[Any],
        key: Any,
        token: str | None,
        lease: float,
    ) -> None:
        """Count one more proxy of ``key`` here; convert its transfer hold.

        ``name`` is the store's name.
        """
        counts = self._counts
        with self._lock:
            if self._stores.get(name) is not store:
                self._stores[name] = store
            held = counts.get((name, key), 0)
            counts[name, key] = held + 1
        if held > 0 and token is not None and self._transfers.pop(token, False):
            # Pickled and unpickled by this process, which holds the object,
            # before its transfer was sent: whoever takes the token out of
            # `_transfers` first (here, or the heartbeat thread about to send
            # it) decides, so the transfer is either never sent or converted.
            return
        hold = Hold(key, self.holder, _lease(), token, lease)
        self._submit((name, key, hold))
        self._ensure_thread()

    def transfer(self, name: str, store: StoreLike[Any], key: Any) -> tuple[str, float]:
        """Queue a transfer hold for a proxy being pickled; return token, lease.

        ``name`` is the store's name.
        """
        token = uuid4_hex()
        lease = _settings["transfer_lease"]
        self._stores.setdefault(name, store)  # one dict operation: atomic
        self._transfers[token] = True
        self._submit((name, key, _tuple_new(Hold, (key, "", lease, token, 0.0))))
        if self._thread is None:
            self._ensure_thread()
        return token, lease

    def drop(self, store_name: str, key: Any) -> None:
        """Count one proxy fewer (safe inside a finalizer: no lock, no I/O)."""
        # `_submit` inlined: this runs for every proxy dropped.
        self._submitted = next(self._seq)
        self._ops.append((store_name, key, None))
        if not self._wake.is_set():
            self._wake.set()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued message was sent; return whether it was."""
        target = self._submitted
        if self._thread is None:
            return not self._ops
        self._urgent.set()
        self._wake.set()
        with self._done:
            return self._done.wait_for(lambda: self._completed >= target, timeout)

    def beat_gap(self) -> float:
        """Return the longest heartbeat gap so far, the current one included."""
        last = self._last_beat
        current = 0.0 if last is None else time.monotonic() - last
        return max(self.max_gap, current)

    def held(self) -> dict[tuple[str, Any], int]:
        with self._lock:
            return dict(self._counts)

    # ----------------------------------------------------------- thread side
    def _run(self) -> None:
        # The first beat's gap counts from here (holds sent before it have a
        # lease to keep too).
        self._last_beat = time.monotonic()
        next_beat = self._last_beat + interval()
        while not self._stop:
            if self._wake.wait(max(0.0, next_beat - time.monotonic())):
                # Woken by a queued message: let the ones right behind it join
                # the same backend message (unless someone waits in `flush`).
                self._urgent.wait(_COALESCE)
                self._urgent.clear()
            self._wake.clear()
            self._drain()
            now = time.monotonic()
            if now >= next_beat:
                self._beat()
                self.max_gap = max(self.max_gap, now - (self._last_beat or now))
                self._last_beat = now
                next_beat = now + interval()
            else:
                next_beat = min(next_beat, now + interval())

    def _drain(self) -> None:
        # Everything queued goes out in order, per store in one message where
        # the backend takes holds and releases together (`apply`).
        pending: dict[str, list[Hold[Any] | Release[Any] | None]] = {}
        # Plain holds of ours in this batch, by (store, key) -> position, and the
        # keys this batch also transfers or converts.
        plain: dict[tuple[str, Any], int] = {}
        shared: set[tuple[str, Any]] = set()
        queue = self._ops
        transfers = self._transfers
        counts = self._counts
        holder = self.holder
        # Only what is queued now: ops queued meanwhile wait for the next batch,
        # so the thread does not interleave with a busy caller op by op (each
        # of the caller's I/O waits would hand it the GIL, and back).
        # One lock round for the batch (callers only take it briefly; no
        # finalizer takes it). It also keeps two drains (the thread's and
        # `release_all`'s at exit) from popping the same ops.
        with self._lock:
            done = len(queue)
            for _ in range(done):
                name, key, hold = queue.popleft()
                held_key = (name, key)
                if hold is not None:
                    ops = pending.setdefault(name, [])
                    if hold.token:
                        if not hold.holder and not transfers.pop(hold.token, None):
                            continue  # unpickled here first: nothing to send
                        shared.add(held_key)
                    else:
                        plain.setdefault(held_key, len(ops))
                    ops.append(hold)
                    continue
                count = counts.get(held_key)
                if count is None:
                    continue  # e.g. a proxy inherited through fork: not held here
                if count > 1:
                    counts[held_key] = count - 1
                    continue
                del counts[held_key]
                ops = pending.setdefault(name, [])
                first = plain.pop(held_key, None)
                if first is not None and held_key not in shared:
                    # Held and released in one batch and never shared: the hold
                    # need not be sent (the release evicts an object without
                    # holds).
                    for i in range(first, len(ops)):
                        held = ops[i]
                        if isinstance(held, Hold) and held.key == key:
                            ops[i] = None
                ops.append(_tuple_new(Release, (key, holder)))
        self._send(
            {name: [o for o in ops if o is not None] for name, ops in pending.items()}
        )
        with self._done:
            self._completed += done
            self._done.notify_all()

    def _store(self, name: str) -> StoreLike[Any] | None:
        store = self._stores.get(name)
        if store is None:
            store = _stores.get(name)
        return store

    def _send(self, pending: dict[str, list[Hold[Any] | Release[Any]]]) -> None:
        for name, ops in pending.items():
            store = self._store(name)
            if store is None:
                continue
            counter = _counting(store)
            apply = getattr(counter, "apply", None)
            if apply is None:
                batches = _runs(ops)
            else:
                batches = [ops[i : i + _CHUNK] for i in range(0, len(ops), _CHUNK)]
            for batch in batches:
                try:
                    if apply is not None:
                        apply(batch)
                    elif isinstance(batch[0], Release):
                        counter.release(batch[0].key, batch[0].holder)
                    else:
                        counter.hold(batch)  # type: ignore[arg-type]
                except Exception:
                    # Holds are renewed at the next heartbeat; a lost release
                    # lapses after its lease.
                    _log.warning(
                        "Could not send %d holds or releases to store %r.",
                        len(batch),
                        name,
                        exc_info=True,
                    )

    def _beat(self) -> None:
        lease = _lease()
        with self._lock:
            keys: dict[str, list[Hold[Any] | Release[Any]]] = {}
            for (name, key), count in self._counts.items():
                if count > 0:
                    keys.setdefault(name, []).append(Hold(key, self.holder, lease))
            names = list(self._stores)
        for name in list(keys):
            store = self._store(name)
            renew = None if store is None else getattr(_counting(store), "renew", None)
            if renew is None:
                continue  # sent as plain holds below
            held = [hold.key for hold in keys.pop(name)]
            for start in range(0, len(held), _CHUNK):
                try:
                    renew(held[start : start + _CHUNK], self.holder, lease)
                except Exception:
                    _log.warning("Heartbeat to store %r failed.", name, exc_info=True)
        self._send(keys)
        # Backends without a server of their own (shared memory, in-process) are
        # swept by the processes that use them: every heartbeat sweeps them.
        for name in names:
            store = self._store(name)
            sweep = (
                None
                if store is None
                else getattr(_counting(store), "sweep_holds", None)
            )
            if sweep is not None:
                try:
                    sweep()
                except Exception:
                    _log.debug("Sweeping holds of %r failed.", name, exc_info=True)

    def release_all(self) -> None:
        """Release every hold of this process (at interpreter exit)."""
        self._stop = True
        while self._ops:
            self._drain()
        with self._lock:
            counts, self._counts = self._counts, {}
        pending: dict[str, list[Hold[Any] | Release[Any]]] = {}
        for name, key in counts:
            pending.setdefault(name, []).append(Release(key, self.holder))
        self._send(pending)


def _runs(
    ops: list[Hold[Any] | Release[Any]],
) -> list[list[Hold[Any] | Release[Any]]]:
    """Split ``ops`` into runs of holds (at most `_CHUNK`) and single releases."""
    runs: list[list[Hold[Any] | Release[Any]]] = []
    for op in ops:
        if isinstance(op, Release) or not runs or isinstance(runs[-1][0], Release):
            runs.append([op])
        elif len(runs[-1]) < _CHUNK:
            runs[-1].append(op)
        else:
            runs.append([op])
    return runs


_HOLDS = _Holds()
_tuple_new = tuple.__new__


def _reset_after_fork() -> None:
    # A forked child holds nothing (holds travel by pickling, not by fork) and
    # has no heartbeat thread; it gets a holder name of its own.
    global _HOLDS
    _HOLDS = _Holds()


os.register_at_fork(after_in_child=_reset_after_fork)


@atexit.register
def _release_at_exit() -> None:
    try:
        _HOLDS.release_all()
    except Exception:  # pragma: no cover - best effort at exit
        _log.debug("Releasing holds at exit failed.", exc_info=True)


def holder_id() -> str:
    """Return this process's holder name (``<pid>-<random hex>``)."""
    return _HOLDS.holder


def flush(timeout: float | None = None) -> bool:
    """Wait until this process's queued holds and releases have been sent.

    Returns:
        Whether the queue drained within ``timeout`` seconds.
    """
    return _HOLDS.flush(timeout)


class RefCountedFactory(StoreFactory[Any, T]):
    """The factory of a refcounted proxy: its life is a hold of the object.

    Made by ``store.proxy(obj, refcount=True)``; never built directly. While the
    factory is alive (so while its proxy is), this process counts as a holder;
    pickling it registers a transfer hold that the unpickling process converts
    into its own hold.
    """

    __slots__ = ("_holding",)

    _holding: bool

    def __reduce__(self) -> Any:
        # The fields travel flat (no nested plain factory to rebuild), and a
        # NamedTuple key as its class's path and fields, as `StoreFactory` does.
        key = self.key
        name = self._name
        store = _stores.get(name)
        if store is None:
            store = self.get_store()
        token, lease = _HOLDS.transfer(name, store, key)
        wire = self._wire_config()
        path = _key_path(type(key))
        if path is None:
            args: tuple[Any, ...] = (token, lease, key, wire)
            return (
                _adopt,
                args if self.deserializer is None else (*args, self.deserializer),
            )
        args = (token, lease, path, tuple(key), wire)
        return (
            _adopt_named,
            args if self.deserializer is None else (*args, self.deserializer),
        )

    def _release(self) -> None:
        if self._holding:
            self._holding = False
            _HOLDS.drop(self._name, self.key)

    def __del__(self) -> None:
        try:
            holding = self._holding
        except AttributeError:  # never finished initialising
            return
        if holding:
            self._holding = False
            # `_Holds.drop` inlined: this runs for every proxy dropped.
            holds = _HOLDS
            holds._submitted = next(holds._seq)
            holds._ops.append((self._name, self.key, None))
            if not holds._wake.is_set():
                holds._wake.set()


def _new_factory(
    key: ConnectorKeyT, wire: tuple[Any, ...], deserializer: DeserializerT | None
) -> RefCountedFactory[Any]:
    factory: RefCountedFactory[Any] = RefCountedFactory.__new__(RefCountedFactory)
    _init_from_wire(factory, key, wire, False, deserializer)
    factory._holding = False
    return factory


def _adopt(
    token: str,
    lease: float,
    key: ConnectorKeyT,
    wire: tuple[Any, ...],
    deserializer: DeserializerT | None = None,
) -> RefCountedFactory[Any]:
    """Unpickle a refcounted factory: this process becomes a holder."""
    factory = _new_factory(key, wire, deserializer)
    name = factory._name
    store = _stores.get(name)
    _HOLDS.adopt(
        name, factory.get_store() if store is None else store, key, token, lease
    )
    factory._holding = True
    return factory


def _adopt_named(
    token: str,
    lease: float,
    key_path: str,
    key_fields: tuple[Any, ...],
    wire: tuple[Any, ...],
    deserializer: DeserializerT | None = None,
) -> RefCountedFactory[Any]:
    """`_adopt` of a factory whose key is a NamedTuple (sent as path and fields)."""
    key: Any = tuple.__new__(_key_class(key_path), key_fields)
    return _adopt(token, lease, key, wire, deserializer)


def _make_proxies(
    store: _Store,
    keys: Sequence[Any],
    objs: Sequence[Any],
    deserializer: DeserializerT | None,
    populate: bool,
) -> list[Proxy[Any]]:
    """Hold ``keys`` (fresh keys of ``store``) and return their proxies."""
    _HOLDS.acquire_new(store, keys)
    wire = store._wire
    if wire is None:
        wire = store._wire = store.config()._to_wire()
    proxies: list[Proxy[Any]] = []
    for key, obj in zip(keys, objs, strict=True):
        factory = _new_factory(key, wire, deserializer)
        factory._holding = True
        proxies.append(
            Proxy(factory, cache_defaults=True, target=obj)
            if populate
            else Proxy(factory)
        )
    return proxies


def _check(store: _Store, objs: Sequence[Any], populate_target: bool | None) -> bool:
    """Refuse what cannot be refcounted, before storing; return ``populate``."""
    _counting(store)
    for obj in objs:
        if obj is None or obj.__class__ is bool:
            raise NonProxiableTypeError(
                f"{obj!r} cannot be proxied: identity checks such as `is None` "
                "would be false for its proxy."
            )
    return store._populate_target if populate_target is None else populate_target


def refcounted_proxy_batch(
    store: _Store,
    objs: Sequence[T],
    *,
    serializer: SerializerT | None = None,
    deserializer: DeserializerT | None = None,
    populate_target: bool | None = None,
    **kwargs: Any,
) -> list[Proxy[T]]:
    """Store each object and return refcounted proxies of them.

    What ``store.proxy_batch(objs, refcount=True)`` does: one ``put_batch``,
    then one message holding every new key for this process.

    Raises:
        RefCountNotSupportedError: if the store's connector cannot count
            holders (checked before anything is stored).
        NonProxiableTypeError: if an object is ``None`` or a ``bool``.
        SerializationError: if an object cannot be serialized.
        ConnectorError: if the connector fails.
    """
    populate = _check(store, objs, populate_target)
    keys = store.put_batch(objs, serializer=serializer, **kwargs)
    return _make_proxies(store, keys, objs, deserializer, populate)


def refcounted_proxy(
    store: _Store,
    obj: T,
    *,
    serializer: SerializerT | None = None,
    deserializer: DeserializerT | None = None,
    populate_target: bool | None = None,
    **kwargs: Any,
) -> Proxy[T]:
    """Store ``obj`` and return a refcounted proxy of it.

    What ``store.proxy(obj, refcount=True)`` does (see the module
    documentation): this process holds the object until the proxy (and every
    proxy of it unpickled here) is dropped or `release`d; each process that
    unpickles a copy holds it too. The object is evicted once nobody holds it.

    Raises:
        RefCountNotSupportedError: if the store's connector cannot count
            holders (checked before anything is stored).
        NonProxiableTypeError: if ``obj`` is ``None`` or a ``bool``.
        SerializationError: if ``obj`` cannot be serialized.
        ConnectorError: if the connector fails.
    """
    populate = _check(store, (obj,), populate_target)
    key = store.put(obj, serializer=serializer, **kwargs)
    _HOLDS.acquire_one(store.name, store, key)
    wire = store._wire
    if wire is None:
        wire = store._wire = store.config()._to_wire()
    factory = _new_factory(key, wire, deserializer)
    factory._holding = True
    if populate:
        return Proxy(factory, cache_defaults=True, target=obj)
    return Proxy(factory)


def is_refcounted(proxy: Proxy[Any]) -> bool:
    """Return whether ``proxy`` was made with ``refcount=True``."""
    return isinstance(get_factory(proxy), RefCountedFactory)


def release(proxy: Proxy[Any]) -> None:
    """Release this proxy's hold now instead of when it is garbage collected.

    The proxy stays usable if it is already resolved; once no holder is left
    the object is evicted, and an unresolved proxy can no longer resolve.
    Releasing twice is a no-op.

    Raises:
        TypeError: if ``proxy`` is not a refcounted proxy.
    """
    factory = get_factory(proxy)
    if not isinstance(factory, RefCountedFactory):
        raise TypeError(
            f"release() takes a refcounted proxy (store.proxy(..., refcount=True)); "
            f"this proxy's factory is {type(factory).__name__}."
        )
    factory._release()
