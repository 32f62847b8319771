"""`Closeable`: `with` support from `close()`."""

from __future__ import annotations

import pytest

from proxystore.utils._closeable import Closeable


class _Resource(Closeable):
    __slots__ = ("closed",)

    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def test_with_returns_the_object_and_closes_it_once() -> None:
    resource = _Resource()
    with resource as entered:
        assert entered is resource
        assert resource.closed == 0
    assert resource.closed == 1


def test_an_exception_in_the_block_closes_and_propagates() -> None:
    resource = _Resource()
    with pytest.raises(KeyError), resource:
        raise KeyError("boom")
    assert resource.closed == 1


def test_slots_are_kept() -> None:
    assert not hasattr(_Resource(), "__dict__")


def test_close_must_be_defined() -> None:
    with pytest.raises(NotImplementedError, match="must define close"):
        Closeable().close()
