"""The queue shims with thread and multiprocessing queues."""

from __future__ import annotations

import multiprocessing
import queue

import pytest

from proxystore.stream.shims.queue import QueuePublisher, QueueSubscriber


def test_thread_queue_round_trip_and_errors() -> None:
    q: queue.Queue[bytes] = queue.Queue(maxsize=1)
    with QueuePublisher({"t": q}, timeout=0.01) as publisher:
        publisher.send_message("t", b"a")
        with pytest.raises(TimeoutError, match='"t" is full'):
            publisher.send_message("t", b"b")
        with pytest.raises(ValueError, match='No queue for topic "u"'):
            publisher.send_message("u", b"c")
    with QueueSubscriber(q, timeout=0.01) as subscriber:
        assert next(iter(subscriber)) == b"a"
        with pytest.raises(TimeoutError):
            subscriber.next_message()


def test_multiprocessing_queue_closed_means_stop() -> None:
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    publisher = QueuePublisher({"t": q})
    publisher.send_message("t", b"x")
    subscriber = QueueSubscriber(q, timeout=10)
    assert subscriber.next_message() == b"x"
    subscriber.close()
    with pytest.raises(StopIteration):
        subscriber.next_message()
    publisher.close()
    q.join_thread()
