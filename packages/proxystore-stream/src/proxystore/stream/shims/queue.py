"""Publisher and subscriber over `queue` or `multiprocessing` queues.

One queue per topic: useful for tests and for streaming between threads or
processes of one machine without a broker.
"""

from __future__ import annotations

import multiprocessing.queues
import queue
from collections.abc import Mapping
from typing import TypeAlias

from proxystore.stream.shims._base import MessageIterator
from proxystore.utils._closeable import Closeable

__all__ = ["QueuePublisher", "QueueSubscriber"]

#: A thread queue or a multiprocessing queue of messages.
AnyQueue: TypeAlias = "queue.Queue[bytes] | multiprocessing.queues.Queue[bytes]"


def _close(q: AnyQueue) -> None:
    # Thread queues hold no OS resources; multiprocessing queues own a pipe.
    if isinstance(q, multiprocessing.queues.Queue):
        q.close()


class QueuePublisher(Closeable):
    """Puts each message on the queue of its topic.

    Args:
        queues: Queue per topic.
        block: Block when a queue is full.
        timeout: Seconds to block before giving up (``None``: forever).
    """

    def __init__(
        self,
        queues: Mapping[str, AnyQueue],
        *,
        block: bool = True,
        timeout: float | None = None,
    ) -> None:
        self._queues = dict(queues)
        self._block = block
        self._timeout = timeout

    def close(self) -> None:
        """Close multiprocessing queues (thread queues need no closing)."""
        for q in self._queues.values():
            _close(q)

    def send_message(self, topic: str, message: bytes) -> None:
        """Put ``message`` on the queue of ``topic``.

        Raises:
            ValueError: If no queue was given for ``topic``.
            TimeoutError: If the queue stayed full for ``timeout`` seconds (or
                was full and ``block`` is false).
        """
        try:
            q = self._queues[topic]
        except KeyError:
            raise ValueError(f'No queue for topic "{topic}".') from None
        try:
            q.put(message, block=self._block, timeout=self._timeout)
        except queue.Full as e:
            raise TimeoutError(f'Queue of topic "{topic}" is full.') from e


class QueueSubscriber(MessageIterator):
    """Yields messages from one queue.

    Args:
        queue: Queue to read.
        block: Block while the queue is empty.
        timeout: Seconds to block before giving up (``None``: forever).
    """

    def __init__(
        self,
        queue: AnyQueue,
        *,
        block: bool = True,
        timeout: float | None = None,
    ) -> None:
        self._queue = queue
        self._block = block
        self._timeout = timeout

    def close(self) -> None:
        """Close a multiprocessing queue (a thread queue needs no closing)."""
        _close(self._queue)

    def next_message(self) -> bytes:
        """Return the next message.

        Raises:
            StopIteration: If the queue has been closed.
            TimeoutError: If no message arrived within ``timeout`` seconds (or
                the queue is empty and ``block`` is false).
        """
        try:
            return self._queue.get(block=self._block, timeout=self._timeout)
        except ValueError:
            # multiprocessing queues raise ValueError once closed.
            raise StopIteration from None
        except queue.Empty as e:
            raise TimeoutError("No message arrived on the queue in time.") from e
