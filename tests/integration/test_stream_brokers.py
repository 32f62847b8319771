"""Streams through real brokers, producer and consumer in two processes.

For each shim (Redis pub/sub, Redis queue, ZeroMQ, Kafka via tansu; also a
multiprocessing queue with a file-backed store) the test
process produces and a spawned process consumes: 1 000 items per topic arrive
in order, each topic ends with its end-of-stream event, batching, aggregation
and filters behave, and bulk data travels through a Redis-backed store while
the broker only carries small key events. A consumer that reads only metadata
and filters never fetches the bulk bytes (store metrics in the consumer process
prove it) and evicts what it skips.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from proxystore.connectors.redis import RedisConnector
from proxystore.proxy import Proxy
from proxystore.store import Store
from proxystore.stream import StreamConsumer, StreamProducer
from proxystore.stream.protocols import MessagePublisher, MessageSubscriber
from tests.integration.harness import ServerAddress
from tests.integration.harness.ports import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

N_ITEMS = 1000
PAYLOAD = 2048
_ctx = multiprocessing.get_context("spawn")


# ------------------------------------------------------------------ shims
@dataclass(frozen=True)
class Broker:
    """How to build both ends of one shim (plain data: crosses to the child)."""

    kind: str
    host: str
    port: int


def make_publisher(broker: Broker, topics: list[str]) -> MessagePublisher:
    if broker.kind == "redis-pubsub":
        from proxystore.stream.shims.redis import RedisPublisher

        return RedisPublisher(broker.host, broker.port)
    if broker.kind == "redis-queue":
        from proxystore.stream.shims.redis import RedisQueuePublisher

        return RedisQueuePublisher(broker.host, broker.port)
    if broker.kind == "zmq":
        from proxystore.stream.shims.zmq import ZeroMQPublisher

        return ZeroMQPublisher(broker.host, broker.port)
    if broker.kind == "kafka":
        import confluent_kafka
        from confluent_kafka.admin import AdminClient
        from confluent_kafka.cimpl import NewTopic

        servers = f"{broker.host}:{broker.port}"
        admin = AdminClient({"bootstrap.servers": servers})
        futures = admin.create_topics([NewTopic(t, 1, 1) for t in topics])
        for future in futures.values():
            future.result(30)
        from proxystore.stream.shims.kafka import KafkaPublisher

        return KafkaPublisher(confluent_kafka.Producer({"bootstrap.servers": servers}))
    raise AssertionError(broker.kind)


def make_subscriber(broker: Broker, topic: str) -> MessageSubscriber:
    if broker.kind == "redis-pubsub":
        from proxystore.stream.shims.redis import RedisSubscriber

        return RedisSubscriber(broker.host, broker.port, topic)
    if broker.kind == "redis-queue":
        from proxystore.stream.shims.redis import RedisQueueSubscriber

        return RedisQueueSubscriber(broker.host, broker.port, topic, timeout=60)
    if broker.kind == "zmq":
        from proxystore.stream.shims.zmq import ZeroMQSubscriber

        return ZeroMQSubscriber(broker.host, broker.port, topic=topic, timeout=60)
    if broker.kind == "kafka":
        import confluent_kafka

        from proxystore.stream.shims.kafka import KafkaSubscriber

        client = confluent_kafka.Consumer(
            {
                "bootstrap.servers": f"{broker.host}:{broker.port}",
                "group.id": f"group-{topic}",
                "auto.offset.reset": "earliest",
                # tansu completes a group join after about half the session
                # timeout; librdkafka's default (45 s) would make that ~23 s.
                "session.timeout.ms": 6000,
                "heartbeat.interval.ms": 500,
            },
        )
        client.subscribe([topic])
        return KafkaSubscriber(client, timeout=60)
    raise AssertionError(broker.kind)


# ------------------------------------------------------------------ child side
def _keep(metadata: dict[str, Any]) -> bool:
    # Consumer-side filter: True drops, so items with i % 3 == 0 are skipped.
    return bool(metadata["i"] % 3 == 0)


def consume(
    broker: Broker,
    topics: list[str],
    mode: str,
    ready: Any,
    results: Any,
) -> None:
    """Child process: read every topic to its end, report what was seen."""
    try:
        subscribers = [make_subscriber(broker, topic) for topic in topics]
        ready.set()
        report: dict[str, Any] = {}
        for topic, subscriber in zip(topics, subscribers, strict=True):
            filter_ = _keep if mode == "metadata-only" else None
            with StreamConsumer[Any](subscriber, filter_=filter_) as consumer:
                seen: list[Any] = []
                for metadata, item in consumer.iter_with_metadata():
                    if mode == "metadata-only":
                        # Never touch the proxy: only the metadata is read.
                        seen.append((metadata["i"], type(item) is Proxy))
                    else:
                        seen.append((metadata, _summary(item)))
                report[topic] = seen
                stores = list(consumer._stores.values())
                report[f"{topic}:gets"] = sum(
                    _gets(store) for store in stores if store.metrics is not None
                )
                consumer.close(stores=True)
        results.put(("ok", report))
    except BaseException as e:  # reported to the parent, which fails the test
        results.put(("error", repr(e)))


def _summary(item: Any) -> Any:
    if isinstance(item, dict):
        return (item["i"], len(item["payload"]), item["payload"][:1])
    return item


def _gets(store: Store[Any]) -> int:
    assert store.metrics is not None
    times = store.metrics.aggregate_times()
    return times["store.get"].count if "store.get" in times else 0


# ------------------------------------------------------------------ parent side
@contextlib.contextmanager
def consumer_process(
    broker: Broker, topics: list[str], mode: str
) -> Iterator[Callable[[], dict[str, Any]]]:
    ready = _ctx.Event()
    results = _ctx.Queue()
    child = _ctx.Process(target=consume, args=(broker, topics, mode, ready, results))
    child.start()
    try:
        assert ready.wait(60), "consumer process did not start"

        def result() -> dict[str, Any]:
            try:
                status, value = results.get(timeout=150)
            except queue.Empty:
                pytest.fail("consumer process reported nothing")
            assert status == "ok", value
            return value  # type: ignore[no-any-return]

        yield result
    finally:
        child.join(30)
        if child.is_alive():
            child.kill()
            child.join()
        results.close()
        results.join_thread()


def _item(topic: str, i: int) -> dict[str, Any]:
    return {"i": i, "payload": bytes([i % 251]) * PAYLOAD, "topic": topic}


@pytest.fixture(params=["redis-pubsub", "redis-queue", "zmq", "kafka"])
def broker(request: pytest.FixtureRequest) -> Broker:
    kind: str = request.param
    if kind.startswith("redis"):
        address: ServerAddress = request.getfixturevalue("redis_server")
        return Broker(kind, address.host, address.port)
    if kind == "kafka":
        address = request.getfixturevalue("kafka_server")
        return Broker(kind, address.host, address.port)
    return Broker(kind, "127.0.0.1", free_port())


# The bulk store lives in its own Redis database of the session server, so
# counting its keys is not disturbed by other tests (xdist workers each have
# their own server; tests within a worker run one at a time).
_BULK_DB = 9


@pytest.fixture
def bulk_store(redis_server: ServerAddress) -> Iterator[Store[RedisConnector]]:
    """A Redis-backed store for bulk data (metrics on, so do consumers' copies)."""
    connector = RedisConnector(redis_server.host, redis_server.port, db=_BULK_DB)
    with Store(f"bulk-{uuid.uuid4().hex[:8]}", connector, metrics=True) as store:
        _bulk_db(store).flushdb()
        yield store
        _bulk_db(store).flushdb()


def _bulk_db(store: Store[RedisConnector]) -> redis.Redis:
    options = store.connector.config()
    return redis.Redis(options["hostname"], options["port"], db=_BULK_DB)


def _bulk_left(store: Store[RedisConnector]) -> int:
    client = _bulk_db(store)
    with contextlib.closing(client):
        return int(client.dbsize())


def _topics(n: int) -> list[str]:
    run = uuid.uuid4().hex[:8]
    return [f"stream-{run}-{i}" for i in range(n)]


def _wait_subscribed(publisher: MessagePublisher, broker: Broker, n: int) -> None:
    if broker.kind == "zmq":
        publisher.wait_for_subscribers(n)  # type: ignore[attr-defined]
    if broker.kind == "redis-pubsub":
        # The child set "ready" after SUBSCRIBE returned: nothing more to wait for.
        pass


def test_thousand_items_in_order_per_topic(
    broker: Broker, bulk_store: Store[RedisConnector]
) -> None:
    stored, inline = topics = _topics(2)
    publisher = make_publisher(broker, topics)
    with consumer_process(broker, topics, "objects") as result:
        _wait_subscribed(publisher, broker, 2)
        producer = StreamProducer[Any](
            publisher, stores={stored: bulk_store, inline: None}, batch_size=7
        )
        for i in range(N_ITEMS):
            producer.send(stored, _item(stored, i), metadata={"i": i})
            producer.send(inline, i, metadata={"i": i})
        producer.close(topics=topics)
        report = result()
    got = report[stored]
    assert [m["i"] for m, _ in got] == list(range(N_ITEMS))
    assert [s for _, s in got] == [
        (i, PAYLOAD, bytes([i % 251])) for i in range(N_ITEMS)
    ]
    assert report[inline] == [({"i": i}, i) for i in range(N_ITEMS)]
    # Each stored item was fetched exactly once by the consumer ...
    assert report[f"{stored}:gets"] == N_ITEMS
    # ... and evicted after resolving (evict=True is the default).
    assert _bulk_left(bulk_store) == 0


def test_aggregation_filters_and_metadata_only_reads(
    broker: Broker, bulk_store: Store[RedisConnector]
) -> None:
    (topic,) = _topics(1)
    publisher = make_publisher(broker, [topic])
    with consumer_process(broker, [topic], "metadata-only") as result:
        _wait_subscribed(publisher, broker, 1)
        producer = StreamProducer[list[int]](
            publisher,
            default_store=bulk_store,
            # Of each group of 4 sends, 3 pass the producer filter: one batch,
            # which the aggregator turns into one object (the concatenation).
            batch_size=3,
            aggregator=lambda parts: [x for part in parts for x in part],
            # Producer-side filter: drop items whose metadata says so.
            filter_=lambda metadata: bool(metadata.get("drop")),
        )
        for i in range(N_ITEMS * 4):
            drop = i % 4 == 3  # one of every four never leaves the producer
            producer.send(topic, [i] * 256, metadata={"i": i // 4, "drop": drop})
        producer.close(topics=[topic])
        report = result()
    seen = report[topic]
    # N_ITEMS aggregates were sent; the consumer skipped every third by
    # metadata and yielded the rest as unresolved proxies.
    assert seen == [(i, True) for i in range(N_ITEMS) if i % 3 != 0]
    assert report[f"{topic}:gets"] == 0
    # Skipped items were evicted by the consumer; kept ones are still stored.
    assert _bulk_left(bulk_store) == len(seen)


# ------------------------------------------------------------------ queue shim
def consume_queue(q: Any, results: Any) -> None:
    """Child process: read a multiprocessing-queue stream backed by files."""
    from proxystore.stream.shims.queue import QueueSubscriber

    try:
        with StreamConsumer[Any](QueueSubscriber(q, timeout=60)) as consumer:
            seen = [
                (m["i"], _summary(item)) for m, item in consumer.iter_with_metadata()
            ]
            consumer.close(stores=True, subscriber=False)
        results.put(("ok", seen))
    except BaseException as e:  # reported to the parent, which fails the test
        results.put(("error", repr(e)))


def test_multiprocessing_queue_with_file_store(tmp_path: Any) -> None:
    from proxystore.connectors.file import FileConnector
    from proxystore.stream.shims.queue import QueuePublisher

    topic = _topics(1)[0]
    q = _ctx.Queue()
    results = _ctx.Queue()
    child = _ctx.Process(target=consume_queue, args=(q, results))
    child.start()
    try:
        connector = FileConnector(str(tmp_path / "bulk"), clear=False)
        with Store(f"files-{topic}", connector) as store:
            producer = StreamProducer[Any](
                QueuePublisher({topic: q}), default_store=store, batch_size=16
            )
            for i in range(N_ITEMS):
                producer.send(topic, _item(topic, i), metadata={"i": i})
            producer.close(topics=[topic], publisher=False)
            status, seen = results.get(timeout=150)
            assert status == "ok", seen
            assert seen == [(i, (i, PAYLOAD, bytes([i % 251]))) for i in range(N_ITEMS)]
            # Every object was evicted by the consumer once resolved.
            assert not any((tmp_path / "bulk").iterdir())
    finally:
        child.join(30)
        if child.is_alive():
            child.kill()
            child.join()
        for mp_queue in (q, results):
            mp_queue.close()
            mp_queue.join_thread()
