"""ZeroMQ publisher and subscriber shims (needs the ``pyzmq`` package).

There is no broker: the subscriber connects straight to the publisher's
socket, so the publisher must be bound first. As with any ZeroMQ PUB/SUB,
messages sent before a subscriber has connected and subscribed are not
delivered to it; `ZeroMQPublisher.wait_for_subscribers` closes that
window. Unlike a plain PUB socket, the publisher does not silently drop
messages for a slow subscriber: it blocks (``XPUB_NODROP``) once the
subscriber's queue is full, so a stream arrives complete and in order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import zmq

from proxystore.stream.events import event_to_bytes, parts_to_event
from proxystore.stream.shims._base import MessageIterator
from proxystore.utils._closeable import Closeable

__all__ = ["ZeroMQPublisher", "ZeroMQSubscriber"]

_SNDMORE = int(zmq.SNDMORE)
_RCVMORE = int(zmq.RCVMORE)


class ZeroMQPublisher(Closeable):
    """Publishes ``(topic, message)`` frames from a bound XPUB socket.

    Args:
        address: Interface to bind, as in ``tcp://{address}:{port}``.
        port: Port to bind.
        nodrop: Block instead of dropping when a subscriber is too slow.

    Raises:
        ConnectionError: If the address cannot be bound.
    """

    def __init__(self, address: str, port: int, *, nodrop: bool = True) -> None:
        self._endpoint = f"tcp://{address}:{port}"
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.XPUB)
        self._socket.setsockopt(zmq.LINGER, 1000)
        if nodrop:
            self._socket.setsockopt(zmq.XPUB_NODROP, 1)
        # Report every (un)subscription, not only the first per topic, so that
        # wait_for_subscribers() counts subscribers of the same topic.
        self._socket.setsockopt(zmq.XPUB_VERBOSER, 1)
        try:
            self._socket.bind(self._endpoint)
        except zmq.ZMQError as e:
            self.close()
            raise ConnectionError(f"Cannot bind {self._endpoint}: {e}") from e
        self._subscriptions = 0
        # pyzmq's `Socket.send` re-checks routing ids and groups and
        # `send_multipart` re-checks every frame's buffer type in Python, on
        # every message; the backend's send below them is the same call
        # without those checks (a third of the per-message cost at 10 KB).
        self._send: Callable[..., Any] = super(zmq.Socket, self._socket).send
        # Frames under the threshold are copied (cheaper than tracking a
        # reference), larger ones are sent without a copy, as pyzmq does.
        self._copy_threshold: int = self._socket.copy_threshold
        self._topics: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._endpoint!r})"

    def close(self) -> None:
        """Close the socket (waiting up to 1 s to send what is queued)."""
        self._socket.close()
        self._context.term()

    def wait_for_subscribers(self, count: int = 1, timeout: float = 10.0) -> None:
        """Block until ``count`` subscriptions have reached this publisher.

        Raises:
            TimeoutError: If fewer arrived within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        self._drain_subscriptions()
        while self._subscriptions < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._socket.poll(int(remaining * 1000) + 1):
                raise TimeoutError(
                    f"{self._subscriptions} of {count} subscribers connected to "
                    f"{self._endpoint} within {timeout} s.",
                )
            self._drain_subscriptions()

    def _drain_subscriptions(self) -> None:
        # XPUB delivers subscription changes as messages: b"\x01topic" / b"\x00topic".
        while self._socket.poll(0):
            frame = self._socket.recv()
            if frame[:1] == b"\x01":
                self._subscriptions += 1
            elif frame[:1] == b"\x00":
                self._subscriptions -= 1

    def _topic_frame(self, topic: str) -> bytes:
        frame = self._topics.get(topic)
        if frame is None:
            frame = topic.encode()
            if len(self._topics) < 1024:
                self._topics[topic] = frame
        return frame

    def send_message(self, topic: str, message: bytes) -> None:
        """Publish ``message`` under ``topic`` (two frames: topic, message)."""
        send = self._send
        send(self._topic_frame(topic), _SNDMORE)
        send(message, 0, len(message) < self._copy_threshold)

    def send_message_parts(self, topic: str, parts: Sequence[bytes]) -> None:
        """Publish a multipart message under ``topic`` (large parts not copied)."""
        send = self._send
        threshold = self._copy_threshold
        send(self._topic_frame(topic), _SNDMORE)
        last = len(parts) - 1
        for i, part in enumerate(parts):
            send(part, 0 if i == last else _SNDMORE, len(part) < threshold)


class ZeroMQSubscriber(MessageIterator):
    """Yields messages from a `ZeroMQPublisher`.

    Args:
        address: Publisher's address, as in ``tcp://{address}:{port}``.
        port: Publisher's port.
        topic: Topic to receive; ``''`` receives every topic. Matching is
            exact (a plain ZeroMQ subscription would also match longer topics
            sharing the prefix).
        timeout: Seconds to wait for a message (``None``: forever).
    """

    def __init__(
        self,
        address: str,
        port: int,
        *,
        topic: str = "",
        timeout: float | None = None,
    ) -> None:
        self._endpoint = f"tcp://{address}:{port}"
        self._topic = topic.encode()
        self._timeout_ms = -1 if timeout is None else int(timeout * 1000)
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.SUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.RCVTIMEO, self._timeout_ms)
        self._socket.connect(self._endpoint)
        self._socket.setsockopt(zmq.SUBSCRIBE, self._topic)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._endpoint!r}, topic={self._topic!r})"

    def next_message(self) -> bytes:
        """Return the next message of the subscribed topic.

        A multipart stream message (see `next_message_parts`) is joined
        into the equivalent single-buffer encoding.

        Raises:
            TimeoutError: If nothing arrived within ``timeout`` seconds.
            EventDecodeError: If a multipart message is not a stream event.
        """
        parts = self.next_message_parts()
        if len(parts) == 1:
            return parts[0]
        return event_to_bytes(parts_to_event(parts))

    def next_message_parts(self) -> list[bytes]:
        """Return the parts of the next message of the subscribed topic.

        Raises:
            TimeoutError: If nothing arrived within ``timeout`` seconds.
        """
        recv = self._socket.recv
        while True:
            try:
                head = recv()
            except zmq.Again as e:
                raise TimeoutError(
                    f"No message from {self._endpoint} within "
                    f"{self._timeout_ms / 1000} s.",
                ) from e
            # The rest of a message is there once its first frame is (ZeroMQ
            # delivers messages whole), so no more timeouts below.
            if head == self._topic and head:
                # A frame equal to the topic is a topic frame followed by the
                # message. Reading frames as `Frame`s tells whether more
                # follow: pyzmq's RCVMORE query costs more than the receive.
                frame = recv(copy=False)
                parts = [frame.bytes]
                while frame.more:
                    frame = recv(copy=False)
                    parts.append(frame.bytes)
                return parts
            # Other topics sharing the prefix, every topic of a wildcard
            # subscription, and malformed one-frame messages.
            frames = [head]
            while self._socket.get(_RCVMORE):
                frames.append(recv())
            if len(frames) >= 2 and (not self._topic or head == self._topic):
                return frames[1:]

    def close(self) -> None:
        """Close the socket."""
        self._socket.close()
        self._context.term()
