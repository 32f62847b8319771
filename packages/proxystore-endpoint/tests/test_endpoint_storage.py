from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from proxystore.endpoint.exceptions import ObjectSizeExceededError
from proxystore.endpoint.storage import DictStorage, SQLiteStorage, Storage


def _storages(tmp_path: Path) -> list[Storage]:
    return [
        DictStorage(max_object_size=100),
        SQLiteStorage(max_object_size=100),
        SQLiteStorage(tmp_path / "db" / "blobs.db", max_object_size=100),
    ]


@pytest.mark.parametrize("index", [0, 1, 2])
def test_storage_operations(tmp_path: Path, index: int) -> None:
    storage = _storages(tmp_path)[index]

    async def run() -> None:
        assert not await storage.exists("k")
        assert await storage.get("k") is None
        assert await storage.get("k", b"default") == b"default"
        await storage.set("k", b"value")
        assert await storage.exists("k")
        assert await storage.get("k") == b"value"
        await storage.set("k", b"")
        assert await storage.get("k") == b""
        await storage.evict("k")
        await storage.evict("k")
        assert not await storage.exists("k")
        with pytest.raises(ObjectSizeExceededError, match="exceeds"):
            await storage.set("big", b"x" * 101)
        assert not await storage.exists("big")
        await storage.close()

    asyncio.run(run())


def test_sqlite_persists_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "blobs.db"

    async def write() -> None:
        storage = SQLiteStorage(path)
        await storage.set("k", b"kept")
        await storage.close()
        await storage.close()  # idempotent

    async def read() -> bytes | None:
        storage = SQLiteStorage(str(path))
        try:
            return await storage.get("k")
        finally:
            await storage.close()

    asyncio.run(write())
    assert asyncio.run(read()) == b"kept"


def test_no_size_limit() -> None:
    async def run() -> None:
        storage = DictStorage(max_object_size=None)
        await storage.set("k", b"x" * 1000)
        assert await storage.exists("k")
        await storage.close()
        assert not await storage.exists("k")

    asyncio.run(run())
