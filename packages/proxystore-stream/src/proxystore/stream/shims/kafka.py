"""Kafka publisher and subscriber shims (needs the ``confluent-kafka`` package).

The shims wrap clients the caller configures (brokers, consumer group,
``message.max.bytes`` for large messages, ...), so every Kafka feature,
including consumer groups, stays available.
"""

from __future__ import annotations

import time
from typing import Any

import confluent_kafka

from proxystore.stream.shims._base import MessageIterator
from proxystore.utils._closeable import Closeable

__all__ = ["KafkaPublisher", "KafkaSubscriber"]


class KafkaPublisher(Closeable):
    """Produces each message to the Kafka topic of the same name.

    Messages are handed to the client's background sender and delivered in
    order per partition; `flush` (or `close`) waits until every
    message is acknowledged and raises if any delivery failed. Unlike the
    reference shim, `send_message` does not wait for each acknowledgement.
    Configure the client with ``enable.idempotence=True`` to keep the order
    even when the client retries a failed request (librdkafka may otherwise
    reorder retried messages).

    Args:
        client: A configured `confluent_kafka.Producer`.
        flush_timeout: Seconds `flush` waits for acknowledgements.
    """

    def __init__(
        self,
        client: confluent_kafka.Producer,
        *,
        flush_timeout: float = 60.0,
    ) -> None:
        self.client = client
        self._flush_timeout = flush_timeout
        self._errors: list[Any] = []

    def _on_delivery(self, error: Any, message: Any) -> None:
        if error is not None:
            self._errors.append(error)

    def _raise_errors(self) -> None:
        if self._errors:
            error, self._errors = self._errors[0], []
            raise confluent_kafka.KafkaException(error)

    def send_message(self, topic: str, message: bytes) -> None:
        """Queue ``message`` for ``topic``.

        Raises:
            confluent_kafka.KafkaException: If an earlier message failed to be
                delivered, or this one is rejected (e.g. too large).
        """
        self._raise_errors()
        while True:
            try:
                self.client.produce(topic, message, on_delivery=self._on_delivery)
                break
            except BufferError:
                # The client's local queue is full: let it send, then retry.
                self.client.poll(0.1)
        self.client.poll(0)

    def flush(self) -> None:
        """Wait until every queued message is delivered.

        Raises:
            TimeoutError: If messages remain undelivered after ``flush_timeout``.
            confluent_kafka.KafkaException: If a delivery failed.
        """
        left = self.client.flush(self._flush_timeout)
        self._raise_errors()
        if left:
            raise TimeoutError(
                f"{left} Kafka messages undelivered after {self._flush_timeout} s.",
            )

    def close(self) -> None:
        """Deliver queued messages (see `flush`)."""
        self.flush()


class KafkaSubscriber(MessageIterator):
    """Yields message values from a Kafka consumer.

    Args:
        client: A `confluent_kafka.Consumer` already subscribed to its
            topics (possibly as part of a consumer group).
        timeout: Seconds to wait for a message (``None``: forever).
    """

    def __init__(
        self,
        client: confluent_kafka.Consumer,
        *,
        timeout: float | None = None,
    ) -> None:
        self.client = client
        self._timeout = timeout
        self._closed = False

    def next_message(self) -> bytes:
        """Return the value of the next message.

        Raises:
            TimeoutError: If nothing arrived within ``timeout`` seconds.
            confluent_kafka.KafkaException: If the consumer reports an error.
        """
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        while True:
            # Short polls keep the call interruptible (Ctrl-C) while blocking.
            wait = 1.0
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    raise TimeoutError(
                        f"No Kafka message within {self._timeout} s.",
                    )
            message = self.client.poll(wait)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == confluent_kafka.KafkaError._PARTITION_EOF:
                    continue
                raise confluent_kafka.KafkaException(error)
            value = message.value()
            return b"" if value is None else value

    def close(self) -> None:
        """Leave the consumer group and close the client (idempotent)."""
        if not self._closed:
            self._closed = True
            self.client.close()
