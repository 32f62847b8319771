"""Behaviour shared by every subscriber shim: message iteration."""

from __future__ import annotations

import abc
from typing import Self

from proxystore.utils._closeable import Closeable


class MessageIterator(Closeable, abc.ABC):
    """A subscriber: iterating yields `next_message` until it stops."""

    @abc.abstractmethod
    def next_message(self) -> bytes:
        """Return the next message."""

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> bytes:
        return self.next_message()
