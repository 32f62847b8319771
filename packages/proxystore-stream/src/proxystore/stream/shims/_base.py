"""Behaviour shared by every shim: context management and message iteration."""

from __future__ import annotations

import abc
from typing import Self


class Closeable(abc.ABC):
    """Gives ``with`` support to anything with a ``close()`` method."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection to the broker."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()


class MessageIterator(Closeable):
    """A subscriber: iterating yields :meth:`next_message` until it stops."""

    @abc.abstractmethod
    def next_message(self) -> bytes:
        """Return the next message."""

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> bytes:
        return self.next_message()
