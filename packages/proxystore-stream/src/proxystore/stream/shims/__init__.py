"""Adapters between stream producers/consumers and message brokers.

Each module implements :class:`~proxystore.stream.protocols.MessagePublisher`
and :class:`~proxystore.stream.protocols.MessageSubscriber` for one transport
and is the only place its client library is imported:
:mod:`~proxystore.stream.shims.kafka` (``confluent-kafka``),
:mod:`~proxystore.stream.shims.redis` (``redis``),
:mod:`~proxystore.stream.shims.zmq` (``pyzmq``) and
:mod:`~proxystore.stream.shims.queue` (standard library queues).
"""

from __future__ import annotations

__all__: list[str] = []
