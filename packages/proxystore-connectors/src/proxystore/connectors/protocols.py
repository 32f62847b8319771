"""Contracts every connector satisfies structurally (no base class needed).

A connector moves *bytes*: ``put(bytes) -> key`` and ``get(key) -> bytes``. It knows
nothing about objects, proxies or serializers; `proxystore.store` joins those.

Keys are small ``NamedTuple`` values: hashable, picklable, and made only of plain data,
so a proxy that carries one stays small on the wire.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol, Self, TypeVar, runtime_checkable

__all__ = [
    "BytesLike",
    "Connector",
    "DeferrableConnector",
    "EvictingConnector",
    "KeyT",
    "WaitableConnector",
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
