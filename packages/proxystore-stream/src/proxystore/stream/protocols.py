"""Contracts between stream producers/consumers and message brokers.

A broker adapter (a *shim*) implements one side of one pair:

* `MessagePublisher` / `MessageSubscriber` move opaque ``bytes``
  per topic. The stream encodes events with
  `proxystore.stream.events.event_to_bytes` before publishing and decodes
  them with `proxystore.stream.events.bytes_to_event` after receiving.
* `EventPublisher` / `EventSubscriber` move
  [`EventBatch`][proxystore.stream.events.EventBatch] objects directly, for transports
  that do their own encoding (or none, in-process).

* `MultipartPublisher` / `MultipartSubscriber` optionally extend
  the message pair for transports with native multipart messages, so that large
  payloads are never joined into one buffer.

Implementations satisfy these structurally; no base class is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, Self, TypeAlias, runtime_checkable

from proxystore.stream.events import EventBatch

__all__ = [
    "EventPublisher",
    "EventSubscriber",
    "Filter",
    "MessagePublisher",
    "MessageSubscriber",
    "MultipartPublisher",
    "MultipartSubscriber",
    "Publisher",
    "Subscriber",
]


# runtime_checkable: the producer and consumer dispatch on these with isinstance.
@runtime_checkable
class EventPublisher(Protocol):
    """Publishes batches of events."""

    def close(self) -> None:
        """Release the connection to the broker."""
        ...

    def send_events(self, events: EventBatch, /) -> None:
        """Publish one batch of events (all for ``events.topic``)."""
        ...


@runtime_checkable
class EventSubscriber(Protocol):
    """Yields batches of events, blocking until the next one arrives."""

    def __iter__(self) -> Self: ...

    def __next__(self) -> EventBatch: ...

    def close(self) -> None:
        """Release the connection to the broker."""
        ...

    def next_events(self) -> EventBatch:
        """Return the next batch of events.

        Raises:
            StopIteration: When the underlying transport is closed.
        """
        ...


@runtime_checkable
class MessagePublisher(Protocol):
    """Publishes opaque messages to topics."""

    def close(self) -> None:
        """Release the connection to the broker."""
        ...

    def send_message(self, topic: str, message: bytes, /) -> None:
        """Publish ``message`` to ``topic``."""
        ...


@runtime_checkable
class MessageSubscriber(Protocol):
    """Yields opaque messages, blocking until the next one arrives."""

    def __iter__(self) -> Self: ...

    def __next__(self) -> bytes: ...

    def close(self) -> None:
        """Release the connection to the broker."""
        ...

    def next_message(self) -> bytes:
        """Return the next message.

        Raises:
            StopIteration: When the underlying transport is closed.
        """
        ...


@runtime_checkable
class MultipartPublisher(MessagePublisher, Protocol):
    """A message publisher that also sends multipart messages without joining.

    The producer then publishes `event_to_parts`
    output, so large inline ``bytes`` objects are never copied into one buffer.
    """

    def send_message_parts(self, topic: str, parts: Sequence[bytes], /) -> None:
        """Publish the parts of one message to ``topic``, in order."""
        ...


@runtime_checkable
class MultipartSubscriber(MessageSubscriber, Protocol):
    """A message subscriber that also returns multipart messages as parts."""

    def next_message_parts(self) -> list[bytes]:
        """Return the parts of the next message.

        Raises:
            StopIteration: When the underlying transport is closed.
        """
        ...


class Filter(Protocol):
    """Decides from an event's metadata whether the event is dropped.

    Returning ``True`` drops the event (it is *filtered out*).
    """

    def __call__(self, metadata: dict[str, Any], /) -> bool: ...


#: Anything a [`StreamProducer`][proxystore.stream.StreamProducer] can publish through.
Publisher: TypeAlias = EventPublisher | MessagePublisher
#: Anything a [`StreamConsumer`][proxystore.stream.StreamConsumer] can read from.
Subscriber: TypeAlias = EventSubscriber | MessageSubscriber
