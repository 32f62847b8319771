"""Contracts every connector satisfies structurally (no base class needed).

A connector moves *bytes*: ``put(bytes) -> key`` and ``get(key) -> bytes``. It knows
nothing about objects, proxies or serializers; `proxystore.store` joins those.

Keys are small ``NamedTuple`` values: hashable, picklable, and made only of plain data,
so a proxy that carries one stays small on the wire.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import (
    Any,
    NamedTuple,
    Protocol,
    Self,
    TypeVar,
    overload,
    runtime_checkable,
)

__all__ = [
    "BytesLike",
    "Connector",
    "DeferrableConnector",
    "EvictingConnector",
    "ExpiringConnector",
    "KeyInfo",
    "KeyT",
    "ListingConnector",
    "SweepingConnector",
    "WaitableConnector",
    "check_ttl",
]

#: What a connector accepts and may return: any contiguous bytes-like buffer. A
#: connector may return a ``memoryview`` over memory it owns (e.g. a shared-memory
#: mapping) so large objects reach the deserializer without a copy.
BytesLike = bytes | bytearray | memoryview

KeyT = TypeVar("KeyT", bound=NamedTuple)
KeyT_contra = TypeVar("KeyT_contra", bound=NamedTuple, contravariant=True)


@runtime_checkable
class Connector(Protocol[KeyT]):
    """Byte storage with typed keys."""

    def __enter__(self) -> Self: ...

    def __exit__(self, *args: object) -> None: ...

    def close(self) -> None:
        """Release resources (sockets, files, servers) held by this connector."""
        ...

    def config(self) -> dict[str, Any]:
        """Plain-data configuration from which `from_config` rebuilds it."""
        ...

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        """Create a connector from the output of `config`."""
        ...

    def evict(self, key: KeyT) -> None:
        """Remove the object at ``key``; a missing key is not an error."""
        ...

    def exists(self, key: KeyT) -> bool:
        """Return whether an object is stored at ``key``."""
        ...

    def get(self, key: KeyT) -> BytesLike | None:
        """Return the bytes at ``key``, or ``None`` when nothing is stored there."""
        ...

    def get_batch(self, keys: Sequence[KeyT]) -> list[BytesLike | None]:
        """Return the bytes for each key, ``None`` where missing (order kept)."""
        ...

    def put(self, obj: BytesLike) -> KeyT:
        """Store ``obj`` and return its new key."""
        ...

    def put_batch(self, objs: Sequence[BytesLike]) -> list[KeyT]:
        """Store each object; return their keys in order."""
        ...


@runtime_checkable
class DeferrableConnector(Connector[KeyT], Protocol[KeyT]):
    """A connector whose keys can be made before their object exists (futures)."""

    def new_key(self, obj: BytesLike | None = None) -> KeyT:
        """Return a fresh key for a later `set`; `obj` is a hint, not stored."""
        ...

    def set(self, key: KeyT, obj: BytesLike) -> None:
        """Store ``obj`` at a key made by `new_key` (overwriting)."""
        ...


@runtime_checkable
class WaitableConnector(Protocol[KeyT_contra]):
    """A connector that can block until an object appears at a key.

    Futures use this instead of polling when the backend can notify (a condition
    variable in-process, a Redis publish, ...).
    """

    def wait(self, key: KeyT_contra, timeout: float | None = None) -> bool:
        """Block until ``key`` exists or ``timeout`` seconds pass.

        Returns:
            Whether an object exists at ``key`` when the call returns.
        """
        ...


@runtime_checkable
class EvictingConnector(Protocol[KeyT_contra]):
    """A connector that can read and remove an object in one step.

    Stores use this for objects read once and then evicted (proxies made with
    ``evict=True``): one backend operation (a Redis ``GETDEL``, a dict ``pop``)
    instead of a ``get`` followed by an ``evict``.
    """

    def get_evict(self, key: KeyT_contra) -> BytesLike | None:
        """Return the bytes at ``key`` and remove them from the connector.

        Returns:
            The bytes, or ``None`` when nothing is stored at ``key`` (then
            nothing is changed).
        """
        ...


@runtime_checkable
class ExpiringConnector(Protocol[KeyT]):
    """A connector whose objects can carry a time-to-live (crash-safe expiry).

    An object stored with ``ttl=`` seconds is removed by the *backend side* once
    its deadline passes, whether or not the process that stored it is still
    alive: Redis expires the key itself (the expiry is set atomically with the
    value); connectors without a server that could do it (files, the shared
    memory arena) record the deadline with the object and let any process of
    the same namespace sweep expired objects (see `SweepingConnector`); servers
    (endpoints, DIM peers) sweep in their own process.

    Whatever the sweep interval, an expired object is never returned: ``get``,
    ``get_batch`` and ``exists`` check the deadline on read.

    ``ttl=None`` (the default everywhere) means no expiry and adds nothing to
    the plain path. A ``ttl`` must be a positive finite number of seconds;
    anything else raises ``ValueError``. Deadlines are wall-clock
    (``time.time()``) for backends shared between hosts, so hosts should keep
    their clocks synchronised to well under the TTLs used.

    Holders (distributed reference counting) build their heartbeat leases on
    `expire`: a holder re-arms the object's (or its own lease key's) TTL each
    interval, and the backend expires what nobody re-arms.
    """

    def put(self, obj: BytesLike, *, ttl: float | None = None) -> KeyT:
        """Store ``obj`` at a new key that expires ``ttl`` seconds from now."""
        ...

    def put_batch(
        self, objs: Sequence[BytesLike], *, ttl: float | None = None
    ) -> list[KeyT]:
        """Store each object, every one expiring ``ttl`` seconds from now."""
        ...

    def expire(self, key: KeyT, ttl: float | None) -> bool:
        """Set the object's remaining time-to-live (re-arm a lease).

        Args:
            key: Key of the object.
            ttl: Seconds from now after which the object expires; ``None``
                removes the expiry (the object is kept until evicted).

        Returns:
            Whether an (unexpired) object exists at ``key``; when not, nothing
            changed.
        """
        ...

    def ttl(self, key: KeyT) -> float | None:
        """Return the object's remaining time-to-live in seconds.

        Returns:
            Seconds left (``0.0`` at most once it is due), or ``None`` when the
            object has no expiry *or* does not exist (ask ``exists`` to tell
            them apart).
        """
        ...


@overload
def check_ttl(ttl: float) -> float: ...


@overload
def check_ttl(ttl: None) -> None: ...


def check_ttl(ttl: float | None) -> float | None:
    """Return ``ttl`` as a float, or raise ``ValueError`` unless positive and finite.

    ``None`` (no expiry) passes through. Shared by every `ExpiringConnector`.
    """
    if ttl is None:
        return None
    value = float(ttl)
    if not 0 < value < float("inf"):
        raise ValueError(
            f"ttl must be a positive, finite number of seconds (or None), got {ttl!r}."
        )
    return value


class KeyInfo(NamedTuple):
    """What a listing knows about one stored object (see `ListingConnector`).

    Every field but ``key`` may be ``None`` where the backend cannot tell it
    cheaply.
    """

    key: Any
    """The connector's key for the object (a ``NamedTuple`` of that connector)."""
    size: int | None
    """Stored size in bytes (the payload; a backend's own overhead may be added)."""
    age: float | None
    """Seconds since the object was stored (``None``: not recorded, e.g. Redis)."""
    ttl: float | None
    """Seconds until it expires; ``None`` when it has no expiry."""
    holders: tuple[str, ...] | None = None
    """Who holds the object (process ids, holder names), ``None`` when unknown."""


@runtime_checkable
class ListingConnector(Protocol):
    """A connector that can list what it stores (for ``proxystore-store``).

    A listing is a snapshot taken with as few backend round trips as the backend
    allows (Redis: ``SCAN`` with a large ``COUNT``, sizes and TTLs pipelined);
    objects stored or removed while it runs may or may not appear. Expired
    objects are left out.
    """

    def scan(self) -> Iterator[KeyInfo]:
        """Yield a `KeyInfo` for each stored object, in no particular order."""
        ...


@runtime_checkable
class SweepingConnector(Protocol):
    """A connector whose expired objects are removed by its clients, not a server.

    Any process of the namespace may call `sweep`; concurrent sweeps are excluded
    by a lock in the namespace (a sweep that finds it taken returns at once), so
    no single process has to survive for expired objects to go. Such connectors
    also sweep by themselves in the background while they hold objects with a
    TTL or find some when opened.
    """

    def sweep(self) -> int:
        """Remove every expired object now; return how many were removed."""
        ...
