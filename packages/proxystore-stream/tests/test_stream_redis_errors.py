"""The Redis shims name the server when it cannot be reached (no server needed)."""

from __future__ import annotations

import socket

import pytest
from redis.backoff import NoBackoff
from redis.retry import Retry

from proxystore.stream.shims.redis import RedisPublisher, RedisQueueSubscriber


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens once the socket is closed


def test_unreachable_server_raises_connection_error_naming_it() -> None:
    port = _closed_port()
    no_retry = Retry(NoBackoff(), 0)  # redis-py retries with backoff by default
    publisher = RedisPublisher("127.0.0.1", port, retry=no_retry)

    def publish() -> None:
        publisher.send_message("topic", b"x")
        publisher.flush()

    with pytest.raises(ConnectionError, match=rf"127\.0\.0\.1:{port}") as info:
        publish()
    assert type(info.value) is ConnectionError  # the builtin, not redis's
    publisher.close()
    subscriber = RedisQueueSubscriber(
        "127.0.0.1", port, "topic", timeout=1, retry=no_retry
    )
    with pytest.raises(ConnectionError, match=rf"127\.0\.0\.1:{port}"):
        subscriber.next_message()
    subscriber.close()
