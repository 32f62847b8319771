"""Reference counting on an endpoint: holds, releases, sweeps, and their races."""

from __future__ import annotations

import asyncio
import uuid

from proxystore.endpoint.endpoint import Endpoint
from proxystore.endpoint.storage import DictStorage


class _YieldingStorage(DictStorage):
    """A storage whose reads give way to other requests (as SQLite's do)."""

    async def exists(self, key: str) -> bool:
        # Answers, then lets other requests run before the caller sees it.
        found = await super().exists(key)
        await asyncio.sleep(0)
        return found


def test_a_hold_never_lands_on_an_evicted_object() -> None:
    async def main() -> None:
        storage = _YieldingStorage()
        async with Endpoint("ep", uuid.uuid4(), storage=storage) as endpoint:
            await storage.set("k", b"x")
            assert await endpoint.hold([["k", "a", 30.0, None]]) == [True]
            # B's hold and A's release race; whichever goes first, a hold that
            # answered True must leave the object in place.
            found, evicted = await asyncio.gather(
                endpoint.hold([["k", "b", 30.0, None]]),
                endpoint.release("k", "a"),
            )
            if found == [True]:
                assert not evicted
                assert await storage.exists("k")
            else:
                assert evicted

    asyncio.run(main())


def test_lapsed_holds_are_swept_by_the_endpoint() -> None:
    async def main() -> None:
        storage = DictStorage()
        async with Endpoint("ep", uuid.uuid4(), storage=storage) as endpoint:
            await storage.set("k", b"x")
            await storage.set("plain", b"y")
            assert await endpoint.hold([["k", "a", 0.1, None]]) == [True]
            assert await endpoint.hold([["gone", "a", 0.1, None]]) == [False]
            for _ in range(100):
                if not await storage.exists("k"):
                    break
                await asyncio.sleep(0.01)
            assert not await storage.exists("k")
            assert await storage.exists("plain")  # never held: left alone

    asyncio.run(main())
