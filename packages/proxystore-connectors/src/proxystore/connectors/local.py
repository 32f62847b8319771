"""In-process, dict-backed connector: the test double of the whole library.

`LocalConnector` keeps objects in a plain ``dict`` owned by this process. It
implements [`Connector`][proxystore.connectors.protocols.Connector],
[`DeferrableConnector`][proxystore.connectors.protocols.DeferrableConnector],
[`WaitableConnector`][proxystore.connectors.protocols.WaitableConnector] and
`EvictingConnector`, so unit tests of the store,
proxies and streams can run without any server.

Objects live only as long as the dict: a connector rebuilt from `config` in
another process sees an empty store unless ``include_data_in_config=True`` (which
carries the whole dict inside the config, and so is only sensible for small tests).

A `Store` with the default serializer writes through `LocalConnector.put_parts`
and reads through `LocalConnector.get_parts`: immutable ``bytes`` parts are kept by
reference, so a ``bytes`` object put into the store is neither copied in nor out
(it is immutable, so sharing it is safe). Mutable data (a ``bytearray``, numpy
array data) is copied once on the way in.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any, NamedTuple, Self, cast

from proxystore.connectors.holders import Hold, HolderTable
from proxystore.connectors.protocols import BytesLike
from proxystore.utils._closeable import Closeable
from proxystore.utils._ids import uuid4_str

__all__ = ["LocalConnector", "LocalKey"]

# A LocalConnector may share its dict with another connector (``store_dict=`` or a
# config carrying the data); writes made through the other connector do not notify our
# condition, so waiters also re-check the dict at this interval.
_WAIT_RECHECK_S = 0.05


class LocalKey(NamedTuple):
    """Key of an object in a `LocalConnector`."""

    id: str
    """Random UUID4 string naming the object."""


class _Parts(tuple[bytes, ...]):
    """Payload kept as the immutable ``bytes`` parts it was put as (not joined).

    The concatenation of the parts is the payload; `LocalConnector.get` joins them
    on demand, and `LocalConnector.get_parts` hands them back as they are.
    """

    __slots__ = ()

    def join(self) -> bytes:
        return b"".join(self)


def _payload(value: Any) -> bytes | None:
    # A dict value as the plain readers return it: parts are joined.
    data: bytes | None = value.join() if type(value) is _Parts else value
    return data


def _as_bytes(obj: BytesLike) -> bytes:
    # bytes are immutable, so they are stored without a copy; a bytearray or
    # memoryview is copied once so later changes by the caller (or a released buffer)
    # cannot alter the stored object.
    return obj if type(obj) is bytes else bytes(obj)


class LocalConnector(Closeable):
    """Connector that stores objects in a ``dict`` in this process.

    Safe to use from several threads: writes hold a lock and notify threads blocked
    in `wait`; reads are single dict operations.

    Args:
        store_dict: Dict to store objects in; shared, not copied, so two connectors
            given the same dict see the same objects. A new empty dict by default.
        include_data_in_config: Put ``store_dict`` itself into `config`, so a
            connector rebuilt with `from_config` in this process shares it.
    """

    def __init__(
        self,
        store_dict: dict[LocalKey, Any] | None = None,
        *,
        include_data_in_config: bool = False,
    ) -> None:
        # Values are payload bytes, or `_Parts` from put_parts.
        self._store: dict[LocalKey, Any] = {} if store_dict is None else store_dict
        self.include_data_in_config = include_data_in_config
        self._changed = threading.Condition(threading.Lock())
        # Threads inside wait(): writers notify only when there are some.
        self._waiting = 0
        # Holders of refcounted objects (see `hold`), made on first use.
        self._holders: HolderTable | None = None
        self._holders_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def close(self) -> None:
        """Do nothing: the dict may be shared, so its objects are kept."""

    def config(self) -> dict[str, Any]:
        """Return the options that `from_config` takes.

        The dict of objects is included only when ``include_data_in_config`` is set.
        """
        cfg: dict[str, Any] = {"include_data_in_config": self.include_data_in_config}
        if self.include_data_in_config:
            cfg["store_dict"] = self._store
        return cfg

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        """Create a connector from the output of `config`.

        Raises:
            TypeError: if ``config`` has an unknown option.
        """
        return cls(**config)

    def evict(self, key: LocalKey) -> None:
        """Remove the object at ``key``; a missing key is ignored."""
        self._store.pop(key, None)
        if self._holders is not None:
            with self._holders_lock:
                self._holders.forget(key.id)

    # ------------------------------------------------------- reference counting
    def _table(self) -> HolderTable:
        table = self._holders
        if table is None:
            table = self._holders = HolderTable()
        return table

    def _sweep(self, table: HolderTable) -> None:
        for obj_id in table.expired():
            self._store.pop(LocalKey(obj_id), None)

    def hold(self, holds: Sequence[Hold[LocalKey]]) -> list[bool]:
        """Add or renew holds on objects (see `proxystore.connectors.holders`).

        Objects whose holds have all lapsed are evicted first.

        Returns:
            For each hold, whether its object exists (only then is it recorded).

        Raises:
            ValueError: if a hold has neither a holder nor a token, or a
                non-positive lease.
        """
        with self._holders_lock:
            table = self._table()
            self._sweep(table)
            found = []
            for key, holder, lease, token, transfer_lease in holds:
                ok = key in self._store
                if ok:
                    table.hold(key.id, holder, lease, token, transfer_lease)
                found.append(ok)
            return found

    def sweep_holds(self) -> int:
        """Evict the objects whose holds have all lapsed; return how many."""
        with self._holders_lock:
            table = self._table()
            before = len(table)
            self._sweep(table)
            return before - len(table)

    def release(self, key: LocalKey, holder: str) -> bool:
        """Drop a hold; evict the object when no live hold is left.

        Returns:
            Whether the object was evicted.
        """
        with self._holders_lock:
            table = self._table()
            self._sweep(table)
            if table.release(key.id, holder):
                return self._store.pop(key, None) is not None
            return False

    def get_evict(self, key: LocalKey) -> bytes | None:
        """Return the object at ``key`` and remove it, or ``None`` when missing."""
        return _payload(self._store.pop(key, None))

    def get_parts(
        self, key: LocalKey, *, evict: bool = False
    ) -> Sequence[bytes] | None:
        """Return the object at ``key`` as parts to concatenate, without copying.

        An object stored with `put_parts` comes back as the same parts; one stored
        with `put` or `set` as a single part.

        Args:
            key: Key of the object.
            evict: Also remove the object.

        Returns:
            The parts, or ``None`` when nothing is stored at ``key``.
        """
        value = self._store.pop(key, None) if evict else self._store.get(key)
        if value is None or type(value) is _Parts:
            return cast("Sequence[bytes] | None", value)
        return (value,)

    def exists(self, key: LocalKey) -> bool:
        """Return whether an object is stored at ``key``."""
        return key in self._store

    def get(self, key: LocalKey) -> bytes | None:
        """Return the object at ``key``, or ``None`` when missing.

        The stored ``bytes`` object itself is returned (no copy), except for an
        object stored with `put_parts`, whose parts are joined.
        """
        value = self._store.get(key)
        return value.join() if type(value) is _Parts else value

    def get_batch(self, keys: Sequence[LocalKey]) -> list[BytesLike | None]:
        """Return the object at each key (``None`` where missing), in order."""
        get = self._store.get
        return [_payload(get(key)) for key in keys]

    def new_key(self, obj: BytesLike | None = None) -> LocalKey:
        """Return a fresh key for a later `set` (like the reference, ignores `obj`)."""
        return LocalKey(uuid4_str())

    def put(self, obj: BytesLike) -> LocalKey:
        """Store ``obj`` under a new key and return the key."""
        key = LocalKey(uuid4_str())
        self.set(key, obj)
        return key

    def put_parts(self, parts: Sequence[BytesLike]) -> LocalKey:
        """Store the concatenation of ``parts`` under a new key and return the key.

        When every part is an immutable ``bytes`` object, the parts are kept by
        reference, unjoined: storing them copies nothing (a 100 MB ``bytes``
        payload costs what a dict insert costs). Otherwise they are joined, which
        copies each part once, so later changes to a mutable part (a
        ``bytearray``, a view of a numpy array) cannot reach the stored object.
        """
        key = LocalKey(uuid4_str())
        if all(type(part) is bytes for part in parts):
            self._store[key] = (
                parts[0] if len(parts) == 1 else _Parts(parts)  # type: ignore[arg-type]
            )
        else:
            self._store[key] = b"".join(parts)
        self._notify()
        return key

    def put_batch(self, objs: Sequence[BytesLike]) -> list[LocalKey]:
        """Store each object under a new key; return the keys in order."""
        items = [(LocalKey(uuid4_str()), _as_bytes(obj)) for obj in objs]
        self._store.update(items)
        self._notify()
        return [key for key, _ in items]

    def set(self, key: LocalKey, obj: BytesLike) -> None:
        """Store ``obj`` at ``key``, replacing any object already there."""
        self._store[key] = _as_bytes(obj)
        self._notify()

    def _notify(self) -> None:
        # Called after the dict changed. A waiter counts itself (under the lock)
        # before it checks the dict, so either it sees the change or we see it.
        if self._waiting:
            with self._changed:
                self._changed.notify_all()

    def wait(self, key: LocalKey, timeout: float | None = None) -> bool:
        """Block until an object exists at ``key`` or ``timeout`` seconds pass.

        Args:
            key: Key to wait for (typically from `new_key`).
            timeout: Seconds to wait at most; ``None`` waits forever.

        Returns:
            Whether an object exists at ``key`` when the call returns.
        """
        if key in self._store:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            self._waiting += 1
            try:
                while key not in self._store:
                    if deadline is None:
                        remaining = _WAIT_RECHECK_S
                    else:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            return False
                    self._changed.wait(min(remaining, _WAIT_RECHECK_S))
                return True
            finally:
                self._waiting -= 1
