"""Stream producer: buffers objects per topic and publishes event batches."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from proxystore.serialize import ALGORITHMS, serialize_signed
from proxystore.store import unregister_store
from proxystore.stream.events import (
    PART_MIN_SIZE,
    EndOfStreamEvent,
    Event,
    EventBatch,
    NewObjectEvent,
    NewObjectKeyEvent,
    SerializedObject,
    event_to_bytes,
    event_to_parts,
    single_bytes_message,
)
from proxystore.stream.exceptions import TopicClosedError
from proxystore.stream.protocols import (
    EventPublisher,
    Filter,
    MessagePublisher,
    MultipartPublisher,
    Publisher,
)
from proxystore.utils._closeable import Closeable
from proxystore.utils.credentials import resolve_secret_bytes

if TYPE_CHECKING:
    from proxystore.store import Store
    from proxystore.store.config import StoreConfig

__all__ = ["StreamProducer"]

T = TypeVar("T")


@dataclasses.dataclass(slots=True)
class _Item(Generic[T]):
    obj: T
    evict: bool
    metadata: dict[str, Any]


@dataclasses.dataclass(slots=True)
class _TopicBuffer(Generic[T]):
    items: list[_Item[T]] = dataclasses.field(default_factory=list)
    closed: bool = False
    end_sent: bool = False


class StreamProducer(Closeable, Generic[T]):
    """Publishes objects to topics of a stream.

    Objects are buffered per topic and published as one
    [`EventBatch`][proxystore.stream.events.EventBatch] once ``batch_size`` objects are
    waiting (or on `flush`). When a topic has a store, the objects are put
    in it with one ``put_batch`` call and the batch carries only their keys
    (`NewObjectKeyEvent`), so bulk data bypasses
    the broker; without a store the objects travel inline.

    Args:
        publisher: An [`EventPublisher`][proxystore.stream.protocols.EventPublisher]
            (receives batches) or a
            [`MessagePublisher`][proxystore.stream.protocols.MessagePublisher] (receives
            ``event_to_bytes(batch)``).
        aggregator: Combines the objects of one batch into a single object
            before publishing (their ``evict`` flags are OR-ed and their
            metadata dicts merged in order).
        batch_size: Objects buffered per topic before an automatic flush.
        default_store: Store for topics not named in ``stores``; ``None`` sends
            objects inline.
        filter_: Called with each object's metadata in `send`; ``True``
            drops the object.
        stores: Store per topic; a topic mapped to ``None`` sends inline.
        auth_key_id: Sign every inline object with the key this reference
            names (``"env:VAR"`` or a credentials-file entry, resolved in this
            process), for consumers whose
            [`TrustPolicy`][proxystore.stream.trust.TrustPolicy] requires it.
            Objects in stores are signed by their store (its ``auth_key_id``).
        auth_algorithm: MAC of those signatures (``"hmac-sha256"`` or
            ``"blake3"``).

    Raises:
        TypeError: If ``publisher`` implements neither publisher protocol.
        ValueError: If ``batch_size`` is smaller than 1 or ``auth_algorithm``
            is unknown.
        CredentialError: If ``auth_key_id`` does not resolve in this process.
    """

    def __init__(
        self,
        publisher: Publisher,
        *,
        aggregator: Callable[[list[T]], T] | None = None,
        batch_size: int = 1,
        default_store: Store[Any] | None = None,
        filter_: Filter | None = None,
        stores: Mapping[str, Store[Any] | None] | None = None,
        auth_key_id: str | None = None,
        auth_algorithm: str = "hmac-sha256",
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
        if auth_algorithm not in ALGORITHMS:
            raise ValueError(
                f"auth_algorithm must be one of {sorted(ALGORITHMS)}, "
                f"got {auth_algorithm!r}."
            )
        self._auth_key = (
            None if auth_key_id is None else resolve_secret_bytes(auth_key_id)
        )
        self._auth_algorithm = auth_algorithm
        # Dispatch is decided once here instead of on every batch.
        self._send_parts: Callable[[str, list[bytes]], None] | None = None
        if isinstance(publisher, MultipartPublisher):
            self._send_parts = publisher.send_message_parts
        if isinstance(publisher, MessagePublisher):
            self._send_message: Callable[[str, bytes], None] | None = (
                publisher.send_message
            )
        elif isinstance(publisher, EventPublisher):
            self._send_message = None
        else:
            raise TypeError(
                f"{type(publisher).__qualname__} implements neither EventPublisher "
                "nor MessagePublisher.",
            )
        self.publisher = publisher
        # One object per message, published as sent (the `send` fast path).
        self._unbatched = (
            batch_size == 1
            and aggregator is None
            and filter_ is None
            and self._auth_key is None
            and (self._send_parts is not None or self._send_message is not None)
        )
        self._aggregator = aggregator
        self._batch_size = batch_size
        self._default_store = default_store
        self._filter = filter_
        self._stores: dict[str, Store[Any] | None] = dict(stores or {})
        self._buffers: dict[str, _TopicBuffer[T]] = {}
        # Store.config() is computed once per store: the same object is then
        # shared by every key event, which the wire encoder deduplicates by id.
        self._configs: dict[int, StoreConfig] = {}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(publisher={self.publisher!r}, "
            f"batch_size={self._batch_size})"
        )

    def _store_for(self, topic: str) -> Store[Any] | None:
        if topic in self._stores:
            return self._stores[topic]
        return self._default_store

    def _config_of(self, store: Store[Any]) -> StoreConfig:
        config = self._configs.get(id(store))
        if config is None:
            config = self._configs[id(store)] = store.config()
        return config

    def send(
        self,
        topic: str,
        obj: T,
        *,
        evict: bool = True,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Queue ``obj`` on ``topic``; publish when the batch is full.

        Args:
            topic: Topic to send to.
            obj: Object to send.
            evict: Whether the consumer evicts the object from the store after
                resolving it (ignored for inline objects).
            metadata: Plain-data dict sent with the object and given to filters.

        Raises:
            TopicClosedError: If ``topic`` was closed with `close_topics`.
        """
        buffer = self._buffers.get(topic)
        if buffer is None:
            buffer = self._buffers[topic] = _TopicBuffer()
        elif buffer.closed:
            raise TopicClosedError(f'Topic "{topic}" has been closed.')
        if (
            isinstance(obj, bytes)  # narrows for the type checker
            and type(obj) is bytes  # exact: subclasses take the general path
            and not metadata
            and self._unbatched
            and not buffer.items
            and len(obj) < PART_MIN_SIZE
            and self._store_for(topic) is None
        ):
            # The common case (one small inline bytes object per message, no
            # filter, aggregator or store): the message is encoded straight
            # from a cached prefix, the bytes `flush_topic` would publish.
            message = single_bytes_message(topic, topic, obj)
            try:
                if self._send_message is not None:
                    self._send_message(topic, message)
                else:
                    self._send_parts(topic, [message])  # type: ignore[misc]
            except BaseException:
                # As in `flush_topic`: unpublished objects stay buffered.
                buffer.items.append(_Item(obj, evict, {}))
                raise
            return
        metadata = {} if metadata is None else metadata
        if self._filter is not None and self._filter(metadata):
            return
        buffer.items.append(_Item(obj, evict, metadata))
        if len(buffer.items) >= self._batch_size:
            self.flush_topic(topic)

    def flush_topic(self, topic: str) -> None:
        """Publish the objects buffered on ``topic`` (and its end of stream).

        Does nothing when there is nothing new to publish. If the store or the
        publisher raises, the objects stay buffered (the error propagates).
        """
        buffer = self._buffers.get(topic)
        if buffer is None:
            return
        items = buffer.items
        send_end = buffer.closed and not buffer.end_sent
        if not items and not send_end:
            return
        if self._aggregator is not None and items:
            merged: dict[str, Any] = {}
            for item in items:
                merged.update(item.metadata)
            items = [
                _Item(
                    self._aggregator([item.obj for item in items]),
                    any(item.evict for item in items),
                    merged,
                ),
            ]
        events: list[Event] = []
        store = self._store_for(topic) if items else None
        if store is not None:
            config = self._config_of(store)
            keys = store.put_batch([item.obj for item in items])
            events.extend(
                NewObjectKeyEvent.from_key(
                    key,
                    evict=item.evict,
                    metadata=item.metadata,
                    store_config=config,
                    topic=topic,
                )
                for key, item in zip(keys, items, strict=True)
            )
        elif self._auth_key is not None:
            events.extend(
                NewObjectEvent(topic, self._signed(i.obj), i.metadata) for i in items
            )
        else:
            events.extend(NewObjectEvent(topic, i.obj, i.metadata) for i in items)
        if send_end:
            events.append(EndOfStreamEvent(topic))
        self._publish(EventBatch(topic, events))
        # Cleared only once published: if the store or the broker fails, the
        # objects stay buffered and the next flush tries again.
        buffer.items = []
        if send_end:
            buffer.end_sent = True

    def _signed(self, obj: Any) -> SerializedObject:
        assert self._auth_key is not None
        return SerializedObject(
            serialize_signed(obj, self._auth_key, algorithm=self._auth_algorithm)
        )

    def _publish(self, batch: EventBatch) -> None:
        if self._send_parts is not None:
            self._send_parts(batch.topic, event_to_parts(batch))
        elif self._send_message is not None:
            self._send_message(batch.topic, event_to_bytes(batch))
        else:
            self.publisher.send_events(batch)  # type: ignore[union-attr]

    def flush(self) -> None:
        """Publish the objects buffered on every topic.

        If the publisher has a ``flush()`` method (the Kafka and pipelined Redis
        publishers do), it is called too, so every message sent so far has
        been confirmed by the broker when this returns.
        """
        for topic in list(self._buffers):
            self.flush_topic(topic)
        publisher_flush = getattr(self.publisher, "flush", None)
        if callable(publisher_flush):
            publisher_flush()

    def close_topics(self, *topics: str) -> None:
        """Close ``topics``: publish what is buffered, then an end of stream.

        Further `send` calls on these topics raise
        [`TopicClosedError`][proxystore.stream.exceptions.TopicClosedError].
        """
        for topic in topics:
            buffer = self._buffers.get(topic)
            if buffer is None:
                buffer = self._buffers[topic] = _TopicBuffer()
            buffer.closed = True
            self.flush_topic(topic)

    def close(
        self,
        *,
        topics: Iterable[str] = (),
        publisher: bool = True,
        stores: bool = False,
    ) -> None:
        """Close the producer.

        Unlike the reference implementation, objects still buffered in
        incomplete batches are published (not lost) before closing.

        Args:
            topics: Topics to close first (see `close_topics`).
            publisher: Also close the publisher.
            stores: Also close and unregister every store of this producer.
        """
        self.close_topics(*topics)
        self.flush()
        if stores:
            seen: dict[int, Store[Any]] = {}
            for store in (self._default_store, *self._stores.values()):
                if store is not None:
                    seen[id(store)] = store
            for store in seen.values():
                store.close()
                unregister_store(store)
        if publisher:
            self.publisher.close()
