"""Stream consumer: yields objects (or lazy proxies of them) from a stream."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Generic, Self, TypeAlias, TypeVar, cast

from proxystore.store import unregister_store
from proxystore.stream.events import (
    EndOfStreamEvent,
    Event,
    EventBatch,
    NewObjectEvent,
    NewObjectKeyEvent,
    SerializedObject,
    bytes_to_event,
    parts_to_event,
    single_bytes_object,
)
from proxystore.stream.exceptions import EventDecodeError
from proxystore.stream.protocols import (
    EventSubscriber,
    Filter,
    MessageSubscriber,
    MultipartSubscriber,
    Subscriber,
)
from proxystore.stream.trust import TrustPolicy, _ConsumerTrust
from proxystore.utils._closeable import Closeable

if TYPE_CHECKING:
    from proxystore.proxy import Proxy
    from proxystore.store import Store

__all__ = ["ProxyOr", "StreamConsumer"]

T = TypeVar("T")

#: What `StreamConsumer.next` returns: a proxy when the topic has a store,
#: else the object itself.
ProxyOr: TypeAlias = "Proxy[T] | T"

# A stored object may be None itself, so a private sentinel marks "missing".
_MISSING: Any = object()

_ObjectEvent: TypeAlias = NewObjectEvent | NewObjectKeyEvent


class StreamConsumer(Closeable, Generic[T]):
    """Iterates over the objects of a stream until its end-of-stream event.

    For objects the producer put in a store, `next` returns a lazy proxy
    (``store.proxy_from_key``): nothing is fetched until the proxy is used.
    Objects sent inline are returned as they are. Reading only metadata (and
    filtering on it) never fetches the objects' bytes.

    Not thread-safe: use one consumer per thread.

    Whoever can write to the stream's broker writes the events this consumer
    acts on. Without a ``policy`` it trusts them as the reference release
    does: stores are built from the configs events carry and objects are
    deserialized with whatever those configs name (by default pickle), and
    inline objects are unpickled, so a writer can run code in this process.
    What it never does, policy or not: resolve a credential named by an event,
    clear a store's data on `close`, or let an event replace a store
    registered in this process; under a policy, an event's ``evict`` deletes
    nothing from a store made from an event (see `proxystore.stream.trust`). Set
    ``policy`` when the broker's writers are not trusted that far.

    Args:
        subscriber: An `EventSubscriber` or
            [`MessageSubscriber`][proxystore.stream.protocols.MessageSubscriber].
        filter_: Called with each event's metadata; ``True`` skips the event
            (and evicts its object when the producer set ``evict``).
        policy: The [`TrustPolicy`][proxystore.stream.trust.TrustPolicy] every
            yielded object obeys (its deserializer, allow-list and signing
            key, whichever event or store it came from), or ``None`` for the
            reference behaviour described above.

    Raises:
        TypeError: If ``subscriber`` implements neither subscriber protocol.
        CredentialError: If the policy's ``auth_key_id`` does not resolve in
            this process.
    """

    def __init__(
        self,
        subscriber: Subscriber,
        *,
        filter_: Filter | None = None,
        policy: TrustPolicy | None = None,
    ) -> None:
        self._next_parts: Callable[[], list[bytes]] | None = None
        if isinstance(subscriber, MultipartSubscriber):
            self._next_parts = subscriber.next_message_parts
        if isinstance(subscriber, MessageSubscriber):
            self._decode = True
        elif isinstance(subscriber, EventSubscriber):
            self._decode = False
        else:
            raise TypeError(
                f"{type(subscriber).__qualname__} implements neither EventSubscriber "
                "nor MessageSubscriber.",
            )
        self.subscriber = subscriber
        self._filter = filter_
        # Every trust decision (stores, deserializer, signatures) is made there.
        self._trust = _ConsumerTrust(policy)
        self._load = self._trust.load
        self._plain_inline = self._trust.plain_inline
        # Pending events of the current batch, in reverse so pop() is O(1).
        self._pending: list[Event] = []

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> ProxyOr[T]:
        if not self._pending and self._filter is None and self._plain_inline:
            # The per-item path of a stream of small inline bytes objects: a
            # message of one such object gives it without building events.
            if self._next_parts is not None:
                parts = self._next_parts()
                if len(parts) == 1:
                    obj = single_bytes_object(parts[0])
                    if obj is not None:
                        return cast(T, obj)
                batch = parts_to_event(parts)
            elif self._decode:
                data = self.subscriber.next_message()  # type: ignore[union-attr]
                obj = single_bytes_object(data)
                if obj is not None:
                    return cast(T, obj)
                batch = bytes_to_event(data)
            else:
                return self.next()
            self._pending = list(reversed(self._checked(batch).events))
        return self.next()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(subscriber={self.subscriber!r})"

    @property
    def policy(self) -> TrustPolicy | None:
        """The consumer's trust policy (``None``: the reference behaviour)."""
        return self._trust.policy

    @property
    def _stores(self) -> dict[str, Store[Any]]:
        # The stores objects were resolved through so far, by name.
        return self._trust.stores

    def close(self, *, stores: bool = False, subscriber: bool = True) -> None:
        """Close the consumer.

        Args:
            stores: Also close and unregister the stores this consumer opened
                to resolve objects.
            subscriber: Also close the subscriber.
        """
        if stores:
            # Stores made from events never clear their data on close (see
            # proxystore.stream.trust): this releases connections only.
            for store in self._trust.stores.values():
                store.close()
                unregister_store(store)
            self._trust.forget_stores()
        if subscriber:
            self.subscriber.close()

    def _store(self, event: NewObjectKeyEvent) -> Store[Any]:
        return self._trust.store(event.store_config)

    def _inline(self, event: NewObjectEvent) -> Any:
        # Non-plain inline objects stay serialized until handed to the user.
        obj = event.obj
        if type(obj) is SerializedObject:
            return self._load(obj.data)
        if not self._plain_inline:
            raise self._trust.unsigned_inline(event.topic)
        return obj

    def _next_batch(self) -> EventBatch:
        if self._next_parts is not None:
            return self._checked(parts_to_event(self._next_parts()))
        if self._decode:
            return self._checked(bytes_to_event(self.subscriber.next_message()))  # type: ignore[union-attr]
        return self.subscriber.next_events()  # type: ignore[union-attr]

    @staticmethod
    def _checked(batch: Event | EventBatch) -> EventBatch:
        if not isinstance(batch, EventBatch):
            raise EventDecodeError(
                f"Expected an EventBatch message, got {type(batch).__name__}.",
            )
        return batch

    def _next_event(self) -> _ObjectEvent:
        while True:
            while not self._pending:
                self._pending = list(reversed(self._next_batch().events))
            event = self._pending.pop()
            if isinstance(event, EndOfStreamEvent):
                raise StopIteration
            if self._filter is None or not self._filter(event.metadata):
                return event
            if isinstance(event, NewObjectKeyEvent) and event.evict:
                # A dropped object would never be resolved, so free it now.
                store = self._store(event)
                if self._trust.may_evict(store):
                    store.evict(event.get_key(connector=store.connector))

    def next(self) -> ProxyOr[T]:
        """Return the next item: a proxy (store topics) or the inline object.

        May create and register a [`Store`][proxystore.store.Store] from the
        configuration carried by the event (once per store name; sanitised,
        see `proxystore.stream.trust`).

        Raises:
            StopIteration: On an end-of-stream event (the consumer stays open).
            EventDecodeError: If a message is not a valid event batch, or names
                a key type or store outside the trusted modules (see
                `proxystore.stream.trust.trust_modules`).
            UntrustedEventError: If the event asks for something the trust
                policy (or the rules every consumer keeps) refuses.
            proxystore.serialize.DisallowedTypeError: If an inline object needs
                a type outside the policy's allow-list.
            proxystore.serialize.PayloadAuthenticationError: If an inline
                object's signature does not verify under the policy's key.
        """
        return self.next_with_metadata()[1]

    def next_with_metadata(self) -> tuple[dict[str, Any], ProxyOr[T]]:
        """Return the next item's metadata and the item (see `next`).

        Raises:
            StopIteration: On an end-of-stream event.
            EventDecodeError: If a message is not a valid event batch.
        """
        event = self._next_event()
        if isinstance(event, NewObjectEvent):
            return event.metadata, cast(T, self._inline(event))
        store = self._store(event)
        proxy: Proxy[T] = store.proxy_from_key(
            event.get_key(connector=store.connector),
            evict=event.evict and self._trust.may_evict(store),
        )
        return event.metadata, proxy

    def next_object(self) -> T:
        """Return the next object itself, fetched from its store if needed.

        Raises:
            StopIteration: On an end-of-stream event.
            ValueError: If the store has no object at the event's key.
            EventDecodeError: If a message is not a valid event batch.
        """
        return self.next_object_with_metadata()[1]

    def next_object_with_metadata(self) -> tuple[dict[str, Any], T]:
        """Return the next object's metadata and the object itself.

        Raises:
            StopIteration: On an end-of-stream event.
            ValueError: If the store has no object at the event's key.
            EventDecodeError: If a message is not a valid event batch.
        """
        event = self._next_event()
        if isinstance(event, NewObjectEvent):
            return event.metadata, cast(T, self._inline(event))
        store = self._store(event)
        key = event.get_key(connector=store.connector)
        if event.evict and self._trust.may_evict(store):
            # One connector call (e.g. a Redis GETDEL) where the connector can.
            obj = store.get_evict(key, default=_MISSING)
        else:
            obj = store.get(key, default=_MISSING)
        if obj is _MISSING:
            raise ValueError(
                f"No object at key {key!r} in store {store.name!r} "
                f"(topic {event.topic!r}); was it evicted already?",
            )
        return event.metadata, cast(T, obj)

    def iter_with_metadata(
        self,
    ) -> Generator[tuple[dict[str, Any], ProxyOr[T]], None, None]:
        """Yield ``(metadata, item)`` pairs until the end of the stream."""
        while True:
            try:
                yield self.next_with_metadata()
            except StopIteration:
                return

    def iter_objects(self) -> Generator[T, None, None]:
        """Yield objects (fetched, not proxied) until the end of the stream."""
        while True:
            try:
                yield self.next_object()
            except StopIteration:
                return

    def iter_objects_with_metadata(
        self,
    ) -> Generator[tuple[dict[str, Any], T], None, None]:
        """Yield ``(metadata, object)`` pairs until the end of the stream."""
        while True:
            try:
                yield self.next_object_with_metadata()
            except StopIteration:
                return
