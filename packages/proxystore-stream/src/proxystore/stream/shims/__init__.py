"""Adapters between stream producers/consumers and message brokers.

Each module implements `MessagePublisher`
and `MessageSubscriber` for one transport
and is the only place its client library is imported:
`kafka` (``confluent-kafka``),
`redis` (``redis``),
`zmq` (``pyzmq``) and
`queue` (standard library queues).
"""

from __future__ import annotations

__all__: list[str] = []
