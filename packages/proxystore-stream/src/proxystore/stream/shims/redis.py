"""Redis publisher and subscriber shims (needs the ``redis`` package).

Two flavours:

* Pub/sub (`RedisPublisher`, `RedisSubscriber`): every active
  subscriber receives every message; messages published while nobody is
  subscribed are lost.
* Queue (`RedisQueuePublisher`, `RedisQueueSubscriber`): a Redis
  list per topic; messages persist until read and each is read by exactly one
  subscriber.

Connection failures raise `ConnectionError` naming ``host:port``.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Sequence
from typing import Any

import redis

from proxystore.stream.shims._base import MessageIterator
from proxystore.utils._closeable import Closeable

__all__ = [
    "RedisPublisher",
    "RedisQueuePublisher",
    "RedisQueueSubscriber",
    "RedisSubscriber",
]


class _ErrorBoundary:
    """Turns a `redis.ConnectionError` into a `ConnectionError` naming the server."""

    __slots__ = ("address",)

    def __init__(self, address: str) -> None:
        self.address = address

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: object,
    ) -> None:
        if kind is not None and issubclass(kind, redis.ConnectionError):
            raise ConnectionError(
                f"Cannot reach the Redis server at {self.address}: {error}",
            ) from error


def _as_is(response: Any) -> Any:
    return response


def _protocol(client: redis.Redis) -> int:
    """RESP version the connections of ``client`` speak."""
    chosen: Any = client.connection_pool.connection_kwargs.get("protocol")
    if chosen is None:
        # 3 since redis-py 8.0; older releases default to RESP2.
        chosen = getattr(redis.utils, "DEFAULT_RESP_VERSION", 2)
    return int(chosen)


class _RedisClient(Closeable):
    """Owns one Redis client and maps its connection errors (shared plumbing)."""

    def __init__(self, hostname: str, port: int, **kwargs: Any) -> None:
        self._address = f"{hostname}:{port}"
        self._redis_client = redis.Redis(host=hostname, port=port, **kwargs)
        # One reusable object, entered once per message (no generator-based
        # context manager built each time).
        self._errors = _ErrorBoundary(self._address)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._address!r})"

    def close(self) -> None:
        """Close the connection to the Redis server."""
        self._redis_client.close()


class _PipelinedPublisher(_RedisClient):
    """Sends one command per message on a dedicated connection, pipelined.

    Up to ``window - 1`` commands (and about ``window_bytes`` of messages) may
    await their replies, so sending does not pay a network round trip per
    message; replies are read as the window fills and by `flush` /
    `close`. Commands travel in order on one connection, so the order of
    messages is kept. ``window=1`` waits for each reply before returning (fully
    synchronous). The byte bound keeps a producer of large messages from
    racing ahead of the server (and of consumers sharing its CPUs).
    """

    _command: str

    def __init__(
        self,
        hostname: str,
        port: int,
        *,
        window: int = 64,
        window_bytes: int = 1_000_000,
        **kwargs: Any,
    ) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}.")
        super().__init__(hostname, port, **kwargs)
        self._window = window
        self._window_bytes = window_bytes
        # Sizes of the messages whose replies are still unread, oldest first.
        self._in_flight: deque[int] = deque()
        self._in_flight_bytes = 0
        self._connection: Any = None

    def _connect(self) -> Any:
        pool = self._redis_client.connection_pool
        try:
            return pool.get_connection()
        except TypeError:  # redis-py < 5.3 requires a command name
            return pool.get_connection(self._command)

    def _drop(self) -> None:
        # After a connection error the replies in flight are lost with it.
        if self._connection is not None:
            self._connection.disconnect()
            self._redis_client.connection_pool.release(self._connection)
            self._connection = None
        self._in_flight.clear()
        self._in_flight_bytes = 0

    def _confirm_one(self) -> None:
        self._in_flight_bytes -= self._in_flight.popleft()
        self._connection.read_response()

    def send_message(self, topic: str, message: bytes) -> None:
        """Send ``message`` to ``topic``.

        Raises:
            ConnectionError: If the server cannot be reached.
            redis.ResponseError: If the server refused this or an earlier,
                still unconfirmed message (e.g. the key holds another type).
        """
        with self._errors:
            try:
                if self._connection is None:
                    self._connection = self._connect()
                self._connection.send_command(self._command, topic, message)
                self._in_flight.append(len(message))
                self._in_flight_bytes += len(message)
                while len(self._in_flight) >= self._window or (
                    self._in_flight_bytes > self._window_bytes
                ):
                    self._confirm_one()
            except redis.ConnectionError:
                self._drop()
                raise

    def flush(self) -> None:
        """Wait until the server has confirmed every message sent so far.

        Raises:
            ConnectionError: If the server cannot be reached.
            redis.ResponseError: If the server refused a message.
        """
        with self._errors:
            try:
                while self._in_flight:
                    self._confirm_one()
            except redis.ConnectionError:
                self._drop()
                raise

    def close(self) -> None:
        """Confirm pending messages (see `flush`), then disconnect."""
        try:
            self.flush()
        finally:
            if self._connection is not None:
                self._redis_client.connection_pool.release(self._connection)
                self._connection = None
            super().close()


class RedisPublisher(_PipelinedPublisher):
    """Publishes messages with Redis ``PUBLISH`` (pub/sub), pipelined.

    Args:
        hostname: Redis server host.
        port: Redis server port.
        window: Most messages in flight before waiting for replies (1: wait
            for each); see `flush`.
        window_bytes: Most bytes of messages in flight before waiting.
        kwargs: Passed to `redis.Redis`.

    Raises:
        ValueError: If ``window`` is smaller than 1.
    """

    _command = "PUBLISH"


class RedisSubscriber(_RedisClient, MessageIterator):
    """Yields messages published on one or more Redis pub/sub channels.

    Subscribes in the constructor: messages published before that are not seen.

    Args:
        hostname: Redis server host.
        port: Redis server port.
        topic: Channel or channels to subscribe to.
        kwargs: Passed to `redis.Redis`.

    Raises:
        ConnectionError: If the server cannot be reached.
    """

    def __init__(
        self,
        hostname: str,
        port: int,
        topic: str | Sequence[str],
        **kwargs: Any,
    ) -> None:
        super().__init__(hostname, port, **kwargs)
        self._topics = [topic] if isinstance(topic, str) else list(topic)
        # Under RESP3 (redis-py's default protocol since 8.0) every message is
        # a push response, and redis-py's default push handler builds a debug
        # log line from the whole message, logging on or off: for 10 KB
        # messages that is most of the cost of receiving one. Messages are
        # passed on as they are instead.
        resp3 = _protocol(self._redis_client) >= 3
        self._pubsub = self._redis_client.pubsub(  # type: ignore[no-untyped-call]
            ignore_subscribe_messages=True,
            # redis-py rejects a push handler on RESP2 connections.
            **({"push_handler_func": _as_is} if resp3 else {}),
        )
        try:
            with self._errors:
                self._pubsub.subscribe(*self._topics)
        except ConnectionError:
            self.close()
            raise

    def next_message(self) -> bytes:
        """Block until the next message and return it.

        Raises:
            StopIteration: If the subscription was cancelled.
            ConnectionError: If the server cannot be reached.
        """
        with self._errors:
            while True:
                message = self._pubsub.get_message(timeout=None)
                if message is None:
                    continue
                kind = message["type"]
                if kind in ("message", "pmessage"):
                    data: bytes = message["data"]
                    return data
                if kind in ("unsubscribe", "punsubscribe"):
                    raise StopIteration

    def close(self) -> None:
        """Unsubscribe and close the connections."""
        with contextlib.suppress(redis.ConnectionError):
            self._pubsub.unsubscribe()
        self._pubsub.close()
        super().close()


class RedisQueuePublisher(_PipelinedPublisher):
    """Appends messages to a Redis list per topic (``RPUSH``), pipelined.

    Args:
        hostname: Redis server host.
        port: Redis server port.
        window: Most messages in flight before waiting for replies (1: wait
            for each); see `flush`.
        window_bytes: Most bytes of messages in flight before waiting.
        kwargs: Passed to `redis.Redis`.

    Raises:
        ValueError: If ``window`` is smaller than 1.
    """

    _command = "RPUSH"


class RedisQueueSubscriber(_RedisClient, MessageIterator):
    """Pops messages from the Redis list of one topic.

    Each round trip takes up to ``prefetch`` waiting messages at once and hands
    them out one at a time: ``BLMPOP`` (Redis 7+) blocks while the list is empty
    and otherwise pops a whole run of messages; older servers get ``LPOP key
    count`` followed, when the list is empty, by ``BLPOP``. Messages taken but
    not yet handed out are pushed back to the head of the list by `close`,
    so none is lost. The number taken per round trip adapts to the message size
    so that one reply stays near ``prefetch_bytes`` (large replies cost more to
    parse than they save in round trips).

    Args:
        hostname: Redis server host.
        port: Redis server port.
        topic: Topic (list key) to read.
        timeout: Seconds to wait for a message (whole seconds or fractions);
            ``None`` waits forever.
        prefetch: Most messages taken per round trip (1 disables prefetching).
        prefetch_bytes: Target size of one prefetching reply.
        kwargs: Passed to `redis.Redis`.

    Raises:
        ValueError: If ``prefetch`` is smaller than 1.
    """

    def __init__(
        self,
        hostname: str,
        port: int,
        topic: str,
        *,
        timeout: float | None = None,
        prefetch: int = 32,
        prefetch_bytes: int = 1_000_000,
        **kwargs: Any,
    ) -> None:
        if prefetch < 1:
            raise ValueError(f"prefetch must be at least 1, got {prefetch}.")
        super().__init__(hostname, port, **kwargs)
        self.topic = topic
        self._timeout = timeout
        self._prefetch = prefetch
        self._prefetch_bytes = prefetch_bytes
        # Messages to ask for next time; starts at one until sizes are known.
        self._count = 1
        self._buffer: deque[bytes] = deque()
        # Switched off on the first "unknown command" from a pre-7.0 server.
        self._blmpop = True

    def next_message(self) -> bytes:
        """Return the next message, blocking while the list is empty.

        Raises:
            TimeoutError: If no message arrived within ``timeout`` seconds.
            ConnectionError: If the server cannot be reached.
        """
        if not self._buffer:
            with self._errors:
                self._fill()
            if not self._buffer:
                raise TimeoutError(
                    f'No message on topic "{self.topic}" at {self._address} '
                    f"within {self._timeout} s.",
                )
        return self._buffer.popleft()

    def _fill(self) -> None:
        self._pop()
        if self._buffer:
            average = sum(map(len, self._buffer)) // len(self._buffer)
            self._count = max(
                1, min(self._prefetch, self._prefetch_bytes // max(average, 1))
            )

    def _pop(self) -> None:
        timeout = 0 if self._timeout is None else self._timeout
        if self._blmpop:
            try:
                # Replies are bytes: the client is created without decoding.
                popped: Any = self._redis_client.blmpop(
                    timeout, 1, self.topic, direction="LEFT", count=self._count
                )
            except redis.ResponseError as e:
                if "unknown command" not in str(e).lower():
                    raise
                self._blmpop = False
            else:
                if popped is not None:
                    self._buffer.extend(popped[1])
                return
        if self._count > 1:
            batch: Any = self._redis_client.lpop(self.topic, self._count)
            if batch:
                self._buffer.extend(batch)
                return
        single: Any = self._redis_client.blpop([self.topic], timeout=timeout)
        if single is not None:
            self._buffer.append(single[1])

    def close(self) -> None:
        """Return prefetched, unread messages to the list; close the connection."""
        if self._buffer:
            with contextlib.suppress(redis.ConnectionError):
                # LPUSH inserts in reverse order, so reverse first to keep order.
                self._redis_client.lpush(self.topic, *reversed(self._buffer))
            self._buffer.clear()
        super().close()
