"""What the store's pattern modules need from a store.

Factories, futures, lifetimes, references and the registry work with any object that
has the few members of `StoreLike`; `proxystore.store.base.Store` has them all. The
pattern modules import this Protocol, never `base`, so imports only run one way:
`base` → patterns → `protocols`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from proxystore.connectors.protocols import Connector

if TYPE_CHECKING:
    from proxystore.store.cache import LRUCache
    from proxystore.store.types import ConnectorKeyT, DeserializerT, SerializerT

__all__ = ["StoreLike", "TimingRecorder"]

ConnectorT_co = TypeVar("ConnectorT_co", bound=Connector[Any], covariant=True)


class TimingRecorder(Protocol):
    """Where a store factory records how long a resolve took (`StoreMetrics`)."""

    def _time_since(self, name: str, key: Any, start_ns: int) -> None:
        """Record the time from `start_ns` (`time.perf_counter_ns`) until now."""
        ...


class StoreLike(Protocol[ConnectorT_co]):
    """The part of a store that proxies, futures, lifetimes and references use."""

    @property
    def name(self) -> str:
        """Name of the store (its key in the process-wide registry)."""
        ...

    @property
    def connector(self) -> ConnectorT_co:
        """The connector the store's bytes live in."""
        ...

    @property
    def cache(self) -> LRUCache[ConnectorKeyT, Any]:
        """Cache of deserialized objects, by key."""
        ...

    @property
    def metrics(self) -> TimingRecorder | None:
        """Recorded metrics, or `None` when metrics are off."""
        ...

    def get(
        self,
        key: ConnectorKeyT,
        *,
        deserializer: DeserializerT | None = None,
        default: Any = None,
    ) -> Any:
        """Return the object at `key`, or `default`."""
        ...

    def get_evict(
        self,
        key: ConnectorKeyT,
        *,
        deserializer: DeserializerT | None = None,
        default: Any = None,
    ) -> Any:
        """Return the object at `key` and evict it, or `default`."""
        ...

    def exists(self, key: ConnectorKeyT) -> bool:
        """Return whether an object is stored at `key`."""
        ...

    def evict(self, key: ConnectorKeyT) -> None:
        """Remove the object at `key`."""
        ...

    def close(self, *args: Any, **kwargs: Any) -> None:
        """Close the store and its connector."""
        ...

    def _set(
        self,
        key: ConnectorKeyT,
        obj: Any,
        *,
        serializer: SerializerT | None = None,
        **kwargs: Any,
    ) -> None:
        """Store `obj` at an existing `key` (deferrable connectors)."""
        ...
