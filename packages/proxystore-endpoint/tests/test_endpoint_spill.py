"""BudgetedStorage: endpoint objects in memory within a budget, spilling to disk."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import uuid
from pathlib import Path

import pytest

from proxystore.endpoint.config import (
    EndpointConfig,
    EndpointStorageConfig,
    read_config,
    write_config,
)
from proxystore.endpoint.exceptions import ObjectSizeExceededError
from proxystore.endpoint.serve import _make_storage
from proxystore.endpoint.spill import BudgetedStorage, memory_budget


def _blob(i: int, size: int = 1000) -> bytes:
    return random.Random(i).randbytes(size)


def test_memory_budget() -> None:
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert memory_budget(4096) == 4096
    assert memory_budget("4096") == 4096
    assert memory_budget("50%") == ram // 2
    for bad in ["x", "0%", "150%", 0, "-3", True]:
        with pytest.raises(ValueError, match="budget"):
            memory_budget(bad)  # type: ignore[arg-type]


def test_operations_within_and_over_budget(tmp_path: Path) -> None:
    storage = BudgetedStorage(
        budget=3500, directory=str(tmp_path / "spill"), max_object_size=5000
    )

    async def run() -> None:
        for i in range(10):
            await storage.set(f"k{i}", _blob(i))
            assert storage.memory_used() <= 3500
        assert storage.metrics()["objects_spilled"] == 7
        assert len(os.listdir(tmp_path / "spill")) == 7
        # Every object resolves, old ones are restored (others spill for them).
        for i in range(10):
            assert await storage.exists(f"k{i}")
            assert await storage.get(f"k{i}") == _blob(i)
            assert storage.memory_used() <= 3500
        assert storage.metrics()["objects_restored"] >= 7
        assert {o.key for o in await storage.listing()} == {f"k{i}" for i in range(10)}
        # Larger than the budget: straight to disk, still readable.
        await storage.set("big", _blob(99, 4000))
        assert await storage.get("big") == _blob(99, 4000)
        with pytest.raises(ObjectSizeExceededError):
            await storage.set("huge", b"x" * 5001)
        await storage.evict("k0")
        assert await storage.get("k0") is None
        assert not await storage.exists("k0")
        await storage.set("k1", b"replaced")
        assert await storage.get("k1") == b"replaced"
        await storage.close()
        assert not (tmp_path / "spill").exists()

    asyncio.run(run())


def test_recently_used_objects_stay_in_memory(tmp_path: Path) -> None:
    storage = BudgetedStorage(budget=3500, directory=str(tmp_path / "spill"))

    async def run() -> None:
        await storage.set("hot", _blob(0))
        for i in range(1, 10):
            assert await storage.get("hot") == _blob(0)
            await storage.set(f"k{i}", _blob(i))
        assert "hot" in storage._sizes
        await storage.close()

    asyncio.run(run())


def test_expired_objects_are_dropped_not_spilled(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = BudgetedStorage(budget=2500, directory=str(tmp_path / "spill"))

    async def run() -> None:
        await storage.set("doomed", _blob(0), ttl=0.05)
        await storage.set("living", _blob(1), ttl=600)
        await asyncio.sleep(0.1)
        with caplog.at_level(logging.DEBUG, logger="proxystore.endpoint.spill"):
            await storage.set("new", _blob(2))
            await storage.set("newer", _blob(3))
        assert storage.metrics()["objects_dropped"] == 1
        assert not await storage.exists("doomed")
        # The living object kept its deadline on disk.
        ttl = await storage.ttl("living")
        assert ttl is not None
        assert 500 < ttl <= 600
        assert await storage.expire("living", 0.05)
        await asyncio.sleep(0.1)
        assert await storage.get("living") is None
        assert await storage.sweep() == 0
        await storage.close()

    asyncio.run(run())
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("dropped expired 'doomed'") for m in messages)
    assert any(m.startswith("spilled 'living'") for m in messages)


def test_expired_objects_go_before_live_ones_are_spilled(tmp_path: Path) -> None:
    storage = BudgetedStorage(budget=2500, directory=str(tmp_path / "spill"))

    async def run() -> None:
        await storage.set("live", _blob(0))  # the least recently used
        await storage.set("doomed", _blob(1), ttl=0.05)
        await asyncio.sleep(0.1)
        await storage.set("new", _blob(2))  # over budget without "doomed"
        metrics = storage.metrics()
        assert metrics["objects_dropped"] == 1
        assert metrics["objects_spilled"] == 0  # "live" stayed in memory
        assert storage.memory_used() == 2000
        assert await storage.get("live") == _blob(0)
        assert await storage.get("doomed") is None
        await storage.close()

    asyncio.run(run())


def test_compressed_spill_writes_less(tmp_path: Path) -> None:
    pytest.importorskip("zstandard")
    storage = BudgetedStorage(
        budget=200_000, directory=str(tmp_path / "spill"), compress="zstd"
    )
    text = b"the same words again and again " * 5000

    async def run() -> None:
        await storage.set("a", text)
        await storage.set("b", text)
        metrics = storage.metrics()
        assert metrics["bytes_spilled"] == len(text)
        assert metrics["bytes_written"] <= 0.5 * len(text)
        assert await storage.get("a") == text
        await storage.close()

    asyncio.run(run())


def test_unknown_codec(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="codec"):
        BudgetedStorage(budget=100, directory=str(tmp_path), compress="lzma")


def test_endpoint_config_selects_the_budgeted_storage(tmp_path: Path) -> None:
    cfg = EndpointConfig(
        name="ep-spill",
        uuid=str(uuid.uuid4()),
        port=1234,
        host="127.0.0.1",
        storage=EndpointStorageConfig(
            memory_budget="4096", spill_directory=str(tmp_path / "s")
        ),
    )
    write_config(cfg, str(tmp_path / "ep"))
    again = read_config(str(tmp_path / "ep"))
    assert again.storage == cfg.storage
    storage = _make_storage(again)
    assert isinstance(storage, BudgetedStorage)
    assert storage.budget == 4096
    plain = EndpointConfig(name="ep-plain", uuid=str(uuid.uuid4()), port=1234)
    assert not isinstance(_make_storage(plain), BudgetedStorage)
