"""Static conformance: every shim satisfies its protocol (checked by mypy --strict).

The assignments below are the proof; the runtime asserts repeat them with
``isinstance`` on the protocols that are ``runtime_checkable``.
"""

from __future__ import annotations

import queue
from typing import TYPE_CHECKING, Any, assert_type

from proxystore.proxy import Proxy
from proxystore.stream import StreamConsumer, StreamProducer
from proxystore.stream.filters import NullFilter, SamplingFilter
from proxystore.stream.protocols import (
    EventPublisher,
    EventSubscriber,
    Filter,
    MessagePublisher,
    MessageSubscriber,
    Publisher,
    Subscriber,
)
from proxystore.stream.shims.queue import QueuePublisher, QueueSubscriber

if TYPE_CHECKING:
    from proxystore.stream.shims.kafka import KafkaPublisher, KafkaSubscriber
    from proxystore.stream.shims.redis import (
        RedisPublisher,
        RedisQueuePublisher,
        RedisQueueSubscriber,
        RedisSubscriber,
    )
    from proxystore.stream.shims.zmq import ZeroMQPublisher, ZeroMQSubscriber


def _static_conformance(
    kafka_pub: KafkaPublisher,
    kafka_sub: KafkaSubscriber,
    redis_pub: RedisPublisher,
    redis_sub: RedisSubscriber,
    redisq_pub: RedisQueuePublisher,
    redisq_sub: RedisQueueSubscriber,
    zmq_pub: ZeroMQPublisher,
    zmq_sub: ZeroMQSubscriber,
) -> None:
    # Never called: mypy checks these assignments.
    publishers: list[MessagePublisher] = [kafka_pub, redis_pub, redisq_pub, zmq_pub]
    subscribers: list[MessageSubscriber] = [
        kafka_sub,
        redis_sub,
        redisq_sub,
        zmq_sub,
    ]
    any_pub: Publisher = kafka_pub
    any_sub: Subscriber = zmq_sub
    del publishers, subscribers, any_pub, any_sub


class _Events:
    def send_events(self, events: Any) -> None: ...
    def next_events(self) -> Any: ...
    def __iter__(self) -> _Events:
        return self

    def __next__(self) -> Any: ...
    def close(self) -> None: ...


def test_queue_shims_and_filters_conform() -> None:
    q: queue.Queue[bytes] = queue.Queue()
    pub: MessagePublisher = QueuePublisher({"t": q})
    sub: MessageSubscriber = QueueSubscriber(q)
    null: Filter = NullFilter()
    sampling: Filter = SamplingFilter(0.5)
    lam: Filter = lambda metadata: "x" in metadata  # noqa: E731
    events = _Events()
    epub: EventPublisher = events
    esub: EventSubscriber = events
    assert isinstance(pub, MessagePublisher)
    assert isinstance(sub, MessageSubscriber)
    assert isinstance(epub, EventPublisher)
    assert isinstance(esub, EventSubscriber)
    assert not isinstance(pub, EventPublisher)
    assert callable(null)
    assert callable(sampling)
    assert lam({"x": 1})


def test_generic_return_types() -> None:
    q: queue.Queue[bytes] = queue.Queue()
    with StreamProducer[int](QueuePublisher({"t": q})) as producer:
        producer.send("t", 3)
        producer.send("t", 4)
        producer.close_topics("t")
    consumer = StreamConsumer[int](QueueSubscriber(q))
    item = consumer.next()
    assert_type(item, "Proxy[int] | int")
    obj = consumer.next_object()
    assert_type(obj, int)
    assert (item, obj) == (3, 4)
    for metadata, value in consumer.iter_objects_with_metadata():
        assert_type(value, int)
        assert_type(metadata, dict[str, Any])
    consumer.close()
    assert Proxy is not None
