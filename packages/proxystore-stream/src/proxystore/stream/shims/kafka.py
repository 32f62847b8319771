"""Kafka publisher and subscriber shims (needs the ``confluent-kafka`` package).

The shims wrap clients the caller configures (brokers, consumer group,
``message.max.bytes`` for large messages, ...), so every Kafka feature,
including consumer groups, stays available.

Authenticated, encrypted brokers: build the clients with `kafka_client_config`
(or `KafkaPublisher.from_settings` / `KafkaSubscriber.from_settings`), which
passes every librdkafka setting through (``security.protocol``,
``sasl.mechanisms``, ``ssl.ca.location``, ...) and resolves secrets given by
reference: ``"sasl.password_env": "KAFKA_PASSWORD"`` or
``"sasl.password_credential": "kafka-prod"`` (see
`proxystore.utils.credentials`), so settings written to files or shared
between processes hold no secret.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Self

import confluent_kafka

from proxystore.stream.shims._base import MessageIterator
from proxystore.utils._closeable import Closeable
from proxystore.utils.credentials import (
    resolve_secret_options,
    split_secret_options,
)

__all__ = [
    "SECRET_SETTINGS",
    "KafkaPublisher",
    "KafkaSubscriber",
    "kafka_client_config",
]

#: librdkafka settings that are secrets: each may be given by reference as
#: ``<name>_env`` (environment variable) or ``<name>_credential``.
SECRET_SETTINGS = (
    "sasl.username",
    "sasl.password",
    "sasl.oauthbearer.client.secret",
    "ssl.key.password",
    "ssl.key.location",
    "ssl.key.pem",
    "ssl.keystore.password",
)


def kafka_client_config(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Return librdkafka settings with secret references resolved in this process.

    Every setting passes through unchanged, except the references
    ``<secret>_env`` / ``<secret>_credential`` of `SECRET_SETTINGS`, which are
    replaced by the secret they name.

    Raises:
        ValueError: if a reference is not a non-empty string.
        CredentialError: if a reference does not resolve here.
    """
    public, direct = split_secret_options(settings, SECRET_SETTINGS)
    return resolve_secret_options(public, direct, SECRET_SETTINGS)


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
        # Bound once: `self._on_delivery` would make a new bound method per message.
        self._delivered = self._on_delivery

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], **kwargs: Any) -> Self:
        """Build a publisher over a new producer (see `kafka_client_config`).

        Raises:
            CredentialError: if a secret reference does not resolve here.
            confluent_kafka.KafkaException: if librdkafka rejects a setting.
        """
        return cls(confluent_kafka.Producer(kafka_client_config(settings)), **kwargs)

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
                self.client.produce(topic, message, on_delivery=self._delivered)
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

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], topics: Sequence[str], **kwargs: Any
    ) -> Self:
        """Build a subscriber over a new consumer subscribed to ``topics``.

        Raises:
            CredentialError: if a secret reference does not resolve here.
            confluent_kafka.KafkaException: if librdkafka rejects a setting.
        """
        client = confluent_kafka.Consumer(kafka_client_config(settings))
        client.subscribe(list(topics))
        return cls(client, **kwargs)

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
