"""StreamProducer -> queue shim -> StreamConsumer with a LocalConnector store."""

from __future__ import annotations

import queue
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from proxystore.connectors.local import LocalConnector
from proxystore.proxy import Proxy
from proxystore.store import Store
from proxystore.stream import StreamConsumer, StreamProducer
from proxystore.stream.events import (
    EndOfStreamEvent,
    EventBatch,
    NewObjectEvent,
    NewObjectKeyEvent,
    bytes_to_event,
)
from proxystore.stream.exceptions import EventDecodeError, TopicClosedError
from proxystore.stream.filters import NullFilter, SamplingFilter
from proxystore.stream.shims.queue import QueuePublisher, QueueSubscriber

pytestmark = pytest.mark.timeout(30)


class Counting(LocalConnector):
    """LocalConnector that counts reads, to prove what a consumer fetches."""

    gets = 0

    def get(self, key: Any) -> Any:
        type(self).gets += 1
        return super().get(key)


@pytest.fixture
def store() -> Iterator[Store[LocalConnector]]:
    with Store(f"stream-{uuid.uuid4()}", LocalConnector(), register=True) as s:
        yield s


@pytest.fixture
def q() -> queue.Queue[bytes]:
    return queue.Queue()


def _pair(
    q: queue.Queue[bytes], **producer_kwargs: Any
) -> tuple[StreamProducer[Any], StreamConsumer[Any]]:
    producer: StreamProducer[Any] = StreamProducer(
        QueuePublisher({"t": q}), **producer_kwargs
    )
    consumer: StreamConsumer[Any] = StreamConsumer(QueueSubscriber(q))
    return producer, consumer


def test_store_topic_yields_lazy_proxies_in_order(
    store: Store[LocalConnector], q: queue.Queue[bytes]
) -> None:
    producer, consumer = _pair(q, default_store=store)
    for i in range(10):
        producer.send("t", [i] * 3, metadata={"i": i})
    producer.close_topics("t")
    items = list(consumer.iter_with_metadata())
    assert [m["i"] for m, _ in items] == list(range(10))
    for metadata, item in items:
        assert isinstance(item, Proxy)
        assert item == [metadata["i"]] * 3
    # evict=True (the default): resolving the proxy removed the object.
    assert all(not store.connector.exists(k) for k in list(store.connector._store))
    producer.close()
    consumer.close()


def test_inline_topic_yields_objects(q: queue.Queue[bytes]) -> None:
    producer, consumer = _pair(q)
    objs: list[Any] = [b"bytes", "str", 7, 1.5, None, {"a": (1, 2)}, {1, 2}]
    for obj in objs:
        producer.send("t", obj)
    producer.close(topics=["t"])
    assert list(consumer) == objs
    assert q.empty()
    consumer.close()


def test_batching_sends_one_message_per_batch(
    store: Store[LocalConnector], q: queue.Queue[bytes]
) -> None:
    producer, consumer = _pair(q, default_store=store, batch_size=4)
    for i in range(10):
        producer.send("t", i)
    assert q.qsize() == 2  # two full batches of 4; 2 objects still buffered
    producer.flush()
    assert q.qsize() == 3
    producer.close_topics("t")
    assert q.qsize() == 4
    batch = bytes_to_event(q.queue[0])
    assert isinstance(batch, EventBatch)
    assert len(batch.events) == 4
    assert all(isinstance(e, NewObjectKeyEvent) for e in batch.events)
    assert list(consumer.iter_objects()) == list(range(10))
    consumer.close()
    producer.close()


def test_aggregator_merges_batch(q: queue.Queue[bytes]) -> None:
    producer, consumer = _pair(q, batch_size=3, aggregator=sum)
    for i in range(6):
        producer.send("t", i, metadata={f"k{i}": i})
    producer.close(topics=["t"])
    out = list(consumer.iter_objects_with_metadata())
    assert out == [
        ({"k0": 0, "k1": 1, "k2": 2}, 3),
        ({"k3": 3, "k4": 4, "k5": 5}, 12),
    ]
    consumer.close()


def test_per_topic_stores_and_none(store: Store[LocalConnector]) -> None:
    qa: queue.Queue[bytes] = queue.Queue()
    qb: queue.Queue[bytes] = queue.Queue()
    producer: StreamProducer[str] = StreamProducer(
        QueuePublisher({"a": qa, "b": qb}), stores={"a": store, "b": None}
    )
    producer.send("a", "via store")
    producer.send("b", "inline")
    producer.close(topics=["a", "b"])
    a = bytes_to_event(qa.get())
    b = bytes_to_event(qb.get())
    assert isinstance(a, EventBatch)
    assert isinstance(a.events[0], NewObjectKeyEvent)
    assert isinstance(b, EventBatch)
    assert isinstance(b.events[0], NewObjectEvent)
    assert isinstance(bytes_to_event(qa.get()), EventBatch)  # end of stream


def test_closed_topic_raises(q: queue.Queue[bytes]) -> None:
    producer, _ = _pair(q)
    producer.close_topics("t")
    with pytest.raises(TopicClosedError, match='Topic "t" has been closed'):
        producer.send("t", b"late")
    # The end of stream is sent once even if flushed again.
    producer.flush()
    producer.close_topics("t")
    assert q.qsize() == 1
    batch = bytes_to_event(q.get())
    assert isinstance(batch, EventBatch)
    assert batch.events == [EndOfStreamEvent("t")]


def test_close_flushes_incomplete_batches(q: queue.Queue[bytes]) -> None:
    producer, consumer = _pair(q, batch_size=100)
    producer.send("t", b"x")
    producer.close()
    assert consumer.next() == b"x"
    consumer.close()


def test_producer_filter_drops(q: queue.Queue[bytes]) -> None:
    producer, consumer = _pair(q, filter_=lambda metadata: metadata.get("drop", False))
    producer.send("t", 1, metadata={"drop": True})
    producer.send("t", 2, metadata={"drop": False})
    producer.close(topics=["t"])
    assert list(consumer) == [2]
    consumer.close()


def test_consumer_filter_skips_and_evicts_without_fetching(
    q: queue.Queue[bytes],
) -> None:
    name = f"counting-{uuid.uuid4()}"
    with Store(name, Counting(), register=True, metrics=True) as store:
        producer: StreamProducer[bytes] = StreamProducer(
            QueuePublisher({"t": q}), default_store=store
        )
        for i in range(6):
            producer.send("t", b"x" * 1000, metadata={"i": i}, evict=True)
        producer.close(topics=["t"])
        consumer: StreamConsumer[bytes] = StreamConsumer(
            QueueSubscriber(q), filter_=lambda m: m["i"] % 2 == 1
        )
        Counting.gets = 0
        kept = [m["i"] for m, _ in consumer.iter_with_metadata()]
        assert kept == [0, 2, 4]
        # Reading metadata and filtering never fetched any object's bytes ...
        assert Counting.gets == 0
        assert store.metrics is not None
        assert "store.get" not in store.metrics.aggregate_times()
        # ... and the skipped objects were evicted; the kept ones are still there.
        assert len(store.connector._store) == 3
        consumer.close()


def test_next_object_fetches_and_evicts(
    store: Store[LocalConnector], q: queue.Queue[bytes]
) -> None:
    producer, consumer = _pair(q, default_store=store)
    producer.send("t", None, evict=True)
    producer.send("t", "keep", evict=False)
    producer.send("t", "gone", evict=True)
    producer.close(topics=["t"])
    assert consumer.next_object() is None
    metadata, obj = consumer.next_object_with_metadata()
    assert (metadata, obj) == ({}, "keep")
    assert len(store.connector._store) == 2
    store.connector._store.clear()
    with pytest.raises(ValueError, match="No object at key"):
        consumer.next_object()
    with pytest.raises(StopIteration):
        consumer.next_object()
    consumer.close()


def test_consumer_rejects_non_batch_messages(q: queue.Queue[bytes]) -> None:
    q.put(b"garbage")
    consumer: StreamConsumer[Any] = StreamConsumer(QueueSubscriber(q))
    with pytest.raises(EventDecodeError):
        consumer.next()
    from proxystore.stream.events import event_to_bytes

    q.put(event_to_bytes(EndOfStreamEvent("t")))
    with pytest.raises(EventDecodeError, match="EventBatch"):
        consumer.next()


class ListTransport:
    """In-process EventPublisher and EventSubscriber (no encoding at all)."""

    def __init__(self) -> None:
        self.batches: list[EventBatch] = []
        self.closed = 0

    def send_events(self, events: EventBatch) -> None:
        self.batches.append(events)

    def __iter__(self) -> ListTransport:
        return self

    def __next__(self) -> EventBatch:
        return self.next_events()

    def next_events(self) -> EventBatch:
        if not self.batches:
            raise StopIteration
        return self.batches.pop(0)

    def close(self) -> None:
        self.closed += 1


def test_event_transport_skips_encoding(store: Store[LocalConnector]) -> None:
    transport = ListTransport()
    producer: StreamProducer[object] = StreamProducer(transport, stores={"s": store})
    unpicklable = lambda: 1  # noqa: E731 (inline object never serialized)
    producer.send("t", unpicklable)
    producer.send("s", [1])
    producer.close(topics=["t", "s"])
    assert transport.closed == 1
    consumer: StreamConsumer[object] = StreamConsumer(transport)
    assert consumer.next() is unpicklable
    assert consumer.next() == [1]
    assert list(consumer) == []  # end of stream "t"
    assert list(consumer) == []  # end of stream "s"
    consumer.close()
    assert transport.closed == 2


def test_close_stores_unregisters(q: queue.Queue[bytes]) -> None:
    from proxystore.store import get_store

    name = f"close-{uuid.uuid4()}"
    store = Store(name, LocalConnector(), register=True)
    producer, consumer = _pair(q, default_store=store)
    producer.send("t", "x")
    producer.close(topics=["t"], stores=True)
    assert get_store(name) is None
    # The consumer re-creates (and registers) the store from the event's config.
    # (A LocalConnector rebuilt from config is empty, so only the key is checked.)
    (item,) = consumer.iter_with_metadata()
    assert isinstance(item[1], Proxy)
    assert get_store(name) is not None
    consumer.close(stores=True)
    assert get_store(name) is None


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        StreamProducer(QueuePublisher({}), batch_size=0)
    with pytest.raises(TypeError, match="neither"):
        StreamProducer(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="neither"):
        StreamConsumer(object())  # type: ignore[arg-type]


def test_filters() -> None:
    assert NullFilter()({"anything": 1}) is False
    assert SamplingFilter(1.0)({}) is True
    assert SamplingFilter(0.0)({}) is False
    for p in (-0.1, 1.1):
        with pytest.raises(ValueError, match="probability"):
            SamplingFilter(p)


def test_context_managers(q: queue.Queue[bytes]) -> None:
    with StreamProducer[int](QueuePublisher({"t": q})) as producer:
        producer.send("t", 1)
    with StreamConsumer[int](QueueSubscriber(q)) as consumer:
        assert consumer.next() == 1
        assert "StreamConsumer" in repr(consumer)


def test_import_warns_experimental() -> None:
    import importlib

    import proxystore.stream
    from proxystore.warnings import ExperimentalWarning

    with pytest.warns(ExperimentalWarning, match="experimental"):
        importlib.reload(proxystore.stream)
    assert proxystore.stream.__all__ == [
        "StreamConsumer",
        "StreamProducer",
        "TrustPolicy",
    ]


def test_failed_publish_keeps_objects_buffered(q: queue.Queue[bytes]) -> None:
    class Flaky(QueuePublisher):
        fail = True

        def send_message(self, topic: str, message: bytes) -> None:
            if self.fail:
                raise ConnectionError("broker down")
            super().send_message(topic, message)

    publisher = Flaky({"t": q})
    producer = StreamProducer[int](publisher, batch_size=2)
    producer.send("t", 1)
    with pytest.raises(ConnectionError, match="broker down"):
        producer.send("t", 2)
    publisher.fail = False
    producer.close(topics=["t"])
    consumer = StreamConsumer[int](QueueSubscriber(q))
    assert list(consumer) == [1, 2]


class _Recording:
    """Multipart publisher that records messages, failing while ``down``."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[bytes]]] = []
        self.down = False

    def send_message(self, topic: str, message: bytes) -> None:
        self.send_message_parts(topic, [message])

    def send_message_parts(self, topic: str, parts: Any) -> None:
        if self.down:
            raise ConnectionError("broker down")
        self.sent.append((topic, list(parts)))

    def close(self) -> None:
        pass


def test_single_bytes_fast_path_sends_what_the_batch_encoder_makes() -> None:
    from proxystore.stream.events import event_to_parts

    publisher = _Recording()
    producer: StreamProducer[Any] = StreamProducer(publisher)
    producer.send("t", b"x" * 10_000)
    producer.send("t", b"meta", metadata={"k": 1})  # general path
    producer.send("t", 7)  # not bytes: general path
    expected = [
        event_to_parts(EventBatch("t", [NewObjectEvent("t", b"x" * 10_000, {})])),
        event_to_parts(EventBatch("t", [NewObjectEvent("t", b"meta", {"k": 1})])),
        event_to_parts(EventBatch("t", [NewObjectEvent("t", 7, {})])),
    ]
    assert [parts for _, parts in publisher.sent] == expected
    assert bytes_to_event(publisher.sent[0][1][0]) == EventBatch(
        "t", [NewObjectEvent("t", b"x" * 10_000, {})]
    )


def test_fast_path_keeps_the_object_when_the_broker_fails() -> None:
    publisher = _Recording()
    producer: StreamProducer[Any] = StreamProducer(publisher)
    publisher.down = True
    with pytest.raises(ConnectionError):
        producer.send("t", b"first")
    publisher.down = False
    producer.send("t", b"second")  # the buffered object goes first, in order
    producer.close_topics("t")
    with pytest.raises(TopicClosedError):
        producer.send("t", b"late")
    batches = [bytes_to_event(parts[0]) for _, parts in publisher.sent]
    objs = [
        event.obj
        for batch in batches
        if isinstance(batch, EventBatch)
        for event in batch.events
        if isinstance(event, NewObjectEvent)
    ]
    assert objs == [b"first", b"second"]


def test_consumer_fast_path_matches_the_general_decoder() -> None:
    from proxystore.stream.events import single_bytes_message, single_bytes_object

    message = single_bytes_message("fast", "fast", b"payload")
    batch = bytes_to_event(message)  # seen once: the prefix is known from now on
    assert batch == EventBatch("fast", [NewObjectEvent("fast", b"payload", {})])
    assert single_bytes_object(message) == b"payload"
    assert single_bytes_object(memoryview(message)) == b"payload"
    assert single_bytes_object(message[:-1]) is None  # truncated: general path
    assert single_bytes_object(message + b"x") is None
    other = single_bytes_message("fast", "fast", b"")
    assert single_bytes_object(other) == b""
