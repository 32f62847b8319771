"""Behaviour of each broker shim on a real server (single process)."""

from __future__ import annotations

import contextlib
import uuid

import pytest

from tests.integration.harness import ServerAddress
from tests.integration.harness.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _topic() -> str:
    return f"shim-{uuid.uuid4().hex[:8]}"


def test_redis_queue_timeout_and_prefetch_returned_on_close(
    redis_server: ServerAddress,
) -> None:
    from proxystore.stream.shims.redis import (
        RedisQueuePublisher,
        RedisQueueSubscriber,
    )

    topic = _topic()
    host, port = redis_server
    with RedisQueuePublisher(host, port) as publisher:
        for i in range(10):
            publisher.send_message(topic, b"%d" % i)
    with RedisQueueSubscriber(host, port, topic, prefetch=4) as sub:
        assert [sub.next_message() for _ in range(2)] == [b"0", b"1"]
    # Two prefetched-but-unread messages went back to the head, in order.
    with RedisQueueSubscriber(host, port, topic, timeout=0.2, prefetch=1) as sub:
        assert list(_take(sub, 8)) == [b"%d" % i for i in range(2, 10)]
        with pytest.raises(TimeoutError, match=topic):
            sub.next_message()


def _take(sub: object, n: int) -> list[bytes]:
    return [next(sub) for _ in range(n)]  # type: ignore[call-overload]


def test_redis_pubsub_delivers_to_every_subscriber(redis_server: ServerAddress) -> None:
    from proxystore.stream.shims.redis import RedisPublisher, RedisSubscriber

    a, b = _topic(), _topic()
    host, port = redis_server
    with (
        RedisSubscriber(host, port, [a, b]) as both,
        RedisSubscriber(host, port, a) as only_a,
        RedisPublisher(host, port) as publisher,
    ):
        publisher.send_message(a, b"1")
        publisher.send_message(b, b"2")
        assert [both.next_message(), both.next_message()] == [b"1", b"2"]
        assert only_a.next_message() == b"1"


@pytest.mark.parametrize("protocol", [2, 3, None])
def test_redis_pubsub_passes_push_messages_as_they_are(
    redis_server: ServerAddress,
    protocol: int | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Under RESP3, redis-py's default push handler formats every message into
    # a debug line, logging on or off (a per-message cost as large as the
    # message); ours never calls it, and messages arrive unchanged under both
    # protocols and the client's default.
    from redis._parsers.resp3 import _RESP3Parser

    from proxystore.stream.shims.redis import RedisPublisher, RedisSubscriber

    def default_handler(self: object, response: object) -> object:
        raise AssertionError("redis-py's default push handler was called")

    monkeypatch.setattr(_RESP3Parser, "handle_pubsub_push_response", default_handler)
    topic = _topic()
    host, port = redis_server
    messages = [bytes([i]) * (1000 * i) for i in range(1, 6)]
    kwargs = {} if protocol is None else {"protocol": protocol}
    with (
        RedisSubscriber(host, port, topic, **kwargs) as sub,
        RedisPublisher(host, port, **kwargs) as publisher,
    ):
        for message in messages:
            publisher.send_message(topic, message)
        publisher.flush()
        assert [sub.next_message() for _ in messages] == messages


def test_redis_unreachable_names_address() -> None:
    from proxystore.stream.shims.redis import RedisQueuePublisher

    port = free_port()
    with (
        RedisQueuePublisher("127.0.0.1", port) as publisher,
        pytest.raises(ConnectionError, match=f"127.0.0.1:{port}"),
    ):
        publisher.send_message("t", b"x")


def test_zmq_exact_topics_and_timeout() -> None:
    from proxystore.stream.shims.zmq import ZeroMQPublisher, ZeroMQSubscriber

    port = free_port()
    with (
        ZeroMQPublisher("127.0.0.1", port) as publisher,
        ZeroMQSubscriber("127.0.0.1", port, topic="ab", timeout=0.5) as ab,
        ZeroMQSubscriber("127.0.0.1", port, timeout=0.5) as every,
    ):
        publisher.wait_for_subscribers(2)
        publisher.send_message("abc", b"prefix only")
        publisher.send_message("ab", b"exact")
        assert ab.next_message() == b"exact"
        assert [every.next_message(), every.next_message()] == [
            b"prefix only",
            b"exact",
        ]
        with pytest.raises(TimeoutError):
            ab.next_message()
    with (
        ZeroMQPublisher("127.0.0.1", free_port()) as lonely,
        pytest.raises(TimeoutError, match="0 of 1"),
    ):
        lonely.wait_for_subscribers(1, timeout=0.2)


def test_zmq_subscriber_skips_frames_that_are_not_messages() -> None:
    # A plain PUB socket may send anything; one-frame messages and other topics
    # are skipped without pairing frames of different messages, and a message
    # of several parts keeps them all.
    import zmq

    from proxystore.stream.shims.zmq import ZeroMQSubscriber

    port = free_port()
    context = zmq.Context()
    pub = context.socket(zmq.PUB)
    pub.bind(f"tcp://127.0.0.1:{port}")
    try:
        with (
            ZeroMQSubscriber("127.0.0.1", port, topic="t", timeout=1) as exact,
            ZeroMQSubscriber("127.0.0.1", port, timeout=1) as every,
        ):
            # No subscription feedback on a plain PUB: send probes until both
            # subscribers see one, then drain the probes still queued.
            for sub in (exact, every):
                while True:
                    pub.send_multipart([b"t", b"probe"])
                    with contextlib.suppress(TimeoutError):
                        assert sub.next_message_parts() == [b"probe"]
                        break
            for sub in (exact, every):
                with contextlib.suppress(TimeoutError):
                    while True:
                        assert sub.next_message_parts() == [b"probe"]
            pub.send(b"tjunk")
            pub.send_multipart([b"tt", b"other topic"])
            pub.send_multipart([b"t", b"a", b"b", b"c"])
            pub.send_multipart([b"t", b"last"])
            assert exact.next_message_parts() == [b"a", b"b", b"c"]
            assert exact.next_message_parts() == [b"last"]
            assert every.next_message_parts() == [b"other topic"]
            assert every.next_message_parts() == [b"a", b"b", b"c"]
            assert every.next_message_parts() == [b"last"]
    finally:
        pub.close(0)
        context.term()


def test_zmq_bind_conflict_is_connection_error() -> None:
    from proxystore.stream.shims.zmq import ZeroMQPublisher

    port = free_port()
    with (
        ZeroMQPublisher("127.0.0.1", port),
        pytest.raises(ConnectionError, match=str(port)),
    ):
        ZeroMQPublisher("127.0.0.1", port)


def test_kafka_subscriber_timeout_and_close(kafka_server: ServerAddress) -> None:
    import confluent_kafka

    from proxystore.stream.shims.kafka import KafkaPublisher, KafkaSubscriber

    topic = _topic()
    servers = f"{kafka_server.host}:{kafka_server.port}"
    publisher = KafkaPublisher(confluent_kafka.Producer({"bootstrap.servers": servers}))
    publisher.send_message(topic, b"hello")
    publisher.close()
    client = confluent_kafka.Consumer(
        {
            "bootstrap.servers": servers,
            "group.id": topic,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 500,
        },
    )
    client.subscribe([topic])
    with KafkaSubscriber(client, timeout=30) as sub:
        assert sub.next_message() == b"hello"
        sub._timeout = 0.5
        with pytest.raises(TimeoutError):
            sub.next_message()
    sub.close()  # idempotent


def test_zmq_large_inline_objects_travel_as_parts() -> None:
    from proxystore.stream import StreamConsumer, StreamProducer
    from proxystore.stream.events import EventBatch, bytes_to_event
    from proxystore.stream.shims.zmq import ZeroMQPublisher, ZeroMQSubscriber

    port = free_port()
    big = [bytes([i]) * 300_000 for i in range(5)]
    with (
        ZeroMQPublisher("127.0.0.1", port) as publisher,
        ZeroMQSubscriber("127.0.0.1", port, topic="t", timeout=10) as sub,
        ZeroMQSubscriber("127.0.0.1", port, topic="t", timeout=10) as raw,
    ):
        publisher.wait_for_subscribers(2)
        producer = StreamProducer[bytes](publisher, batch_size=5)
        for obj in big:
            producer.send("t", obj)
        producer.close(topics=["t"], publisher=False)
        # The batch went as one head plus one part per large object ...
        parts = raw.next_message_parts()
        assert len(parts) == 6
        assert parts[1:] == big
        # ... and a plain next_message() still gets one decodable buffer.
        batch = bytes_to_event(raw.next_message())
        assert isinstance(batch, EventBatch)
        consumer = StreamConsumer[bytes](sub)
        assert list(consumer) == big


def test_redis_pipelined_publisher_confirms_on_flush(
    redis_server: ServerAddress,
) -> None:
    import redis

    from proxystore.stream.shims.redis import RedisQueuePublisher

    topic, wrong = _topic(), _topic()
    host, port = redis_server
    client = redis.Redis(host, port)
    client.set(wrong, b"not a list")
    with pytest.raises(ValueError, match="window"):
        RedisQueuePublisher(host, port, window=0)
    publisher = RedisQueuePublisher(host, port, window=8)
    for i in range(20):
        publisher.send_message(topic, b"%d" % i)
    publisher.flush()
    assert client.llen(topic) == 20
    # A refused message surfaces at the latest on flush(), in order.
    publisher.send_message(wrong, b"x")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        publisher.flush()
    publisher.send_message(topic, b"after")
    publisher.close()
    assert client.lindex(topic, -1) == b"after"
    client.delete(topic, wrong)
    client.close()
