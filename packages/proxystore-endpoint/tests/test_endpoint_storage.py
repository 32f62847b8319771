from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
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


@pytest.fixture
def loose_umask() -> Iterator[None]:
    # The umask the endpoint daemon used to set: group-writable files.
    old = os.umask(0o002)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("loose_umask")
@pytest.mark.parametrize(("mode", "dir_mode"), [(0o600, 0o700), (0o644, 0o755)])
def test_sqlite_files_get_the_asked_mode(
    tmp_path: Path, mode: int, dir_mode: int
) -> None:
    path = tmp_path / "db" / "blobs.db"
    storage = SQLiteStorage(path, file_mode=mode)

    async def run() -> None:
        await storage.set("k", b"v" * 10_000)
        assert await storage.get("k") == b"v" * 10_000
        files = sorted(p.name for p in path.parent.iterdir())
        assert files == ["blobs.db", "blobs.db-shm", "blobs.db-wal"]
        for file in path.parent.iterdir():
            assert stat.S_IMODE(file.stat().st_mode) == mode, file
        await storage.close()

    asyncio.run(run())
    assert stat.S_IMODE(path.parent.stat().st_mode) == dir_mode


@pytest.mark.usefixtures("loose_umask")
def test_existing_database_is_narrowed_to_private(tmp_path: Path) -> None:
    path = tmp_path / "blobs.db"
    path.touch(mode=0o666)
    path.chmod(0o666)
    storage = SQLiteStorage(path)

    async def run() -> None:
        await storage.set("k", b"v")
        await storage.close()

    asyncio.run(run())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
