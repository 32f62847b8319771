"""`Endpoint.set(key, None, endpoint=peer)` is refused, as the reference refuses it
(there an `AssertionError` raised by the peer reaches the caller)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from proxystore.endpoint import exceptions
from proxystore.endpoint.endpoint import Endpoint, EndpointMode


class _RecordingManager:
    """A peer manager that records what it is asked to send (and sends nothing)."""

    def __init__(self) -> None:
        self.uuid = uuid.uuid4()
        self.name = "a"
        self.sent: list[tuple[uuid.UUID, bytes | str]] = []

    async def async_init(self) -> None:
        pass

    async def send(self, peer: uuid.UUID, message: bytes | str) -> None:
        self.sent.append((peer, message))

    async def recv(self) -> tuple[uuid.UUID, bytes | str]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def close(self) -> None:
        pass


def test_set_none_on_a_peer_is_refused_before_sending() -> None:
    async def body() -> None:
        manager = _RecordingManager()
        peer = uuid.uuid4()
        endpoint = Endpoint(
            peer_manager=manager,  # type: ignore[arg-type]
            direct=False,
            request_timeout=2.0,
        )
        async with endpoint:
            assert endpoint.mode is EndpointMode.PEERING
            with pytest.raises(AssertionError) as info:
                await endpoint.set("k", None, endpoint=peer)  # type: ignore[arg-type]
            assert isinstance(info.value, exceptions.MissingDataError)
            assert isinstance(info.value, TypeError)
            assert isinstance(info.value, exceptions.EndpointError)
            assert "'k'" in str(info.value)
            assert str(peer) in str(info.value)
            assert manager.sent == []  # nothing was forwarded

    asyncio.run(body())
