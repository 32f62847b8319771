"""`Closeable` and `AsyncStartable`: context-manager support from `close()`."""

from __future__ import annotations

import asyncio

import pytest

from proxystore.utils._closeable import AsyncStartable, Closeable


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


class _Service(AsyncStartable):
    def __init__(self) -> None:
        self.events: list[str] = []

    async def _astart(self) -> None:
        self.events.append("start")

    async def close(self) -> None:
        self.events.append("close")


def test_async_startable_await_starts_and_async_with_closes() -> None:
    async def main() -> list[str]:
        service = await _Service()
        assert service.events == ["start"]

        async def fail_inside() -> None:
            async with service as entered:
                assert entered is service
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            await fail_inside()
        return service.events

    assert asyncio.run(main()) == ["start", "start", "close"]


def test_async_startable_base_requires_overrides() -> None:
    async def main() -> None:
        async with AsyncStartable():
            pass

    with pytest.raises(NotImplementedError, match="_astart"):
        asyncio.run(main())
