"""Unit tests of the shm arena's memory budget and tiered spill (connectors._spill)."""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from proxystore.connectors import _arena, _arena_ttl, _spill
from proxystore.connectors._sweeper import EXPIRES
from proxystore.connectors.exceptions import ForeignFileError
from proxystore.connectors.file import FileConnector
from proxystore.connectors.multi import MultiConnector, Policy
from proxystore.connectors.shm import (
    SHM_DIR,
    SharedMemoryConnector,
    SharedMemoryFullError,
    SharedMemoryKey,
)

MiB = 2**20
OBJ = 300 * 1024


def _data(seed: int, size: int = OBJ) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


@pytest.fixture
def config(tmp_path: Path) -> Iterator[dict[str, Any]]:
    options: dict[str, Any] = {
        "namespace": f"spill_{secrets.token_hex(5)}",
        "budget": 2 * MiB,
        "spill_directory": str(tmp_path / "spill"),
        "arena_slots": 256,
    }
    yield options
    SharedMemoryConnector(**options).close(clear=True)


def test_parse_budget() -> None:
    total = os.statvfs(SHM_DIR)
    size = total.f_blocks * total.f_frsize
    assert _spill.parse_budget(64 * MiB, SHM_DIR) == 64 * MiB
    assert _spill.parse_budget("50%", SHM_DIR) == size // 2
    assert _spill.parse_budget(0.25, SHM_DIR) == int(size * 0.25)
    for bad in ["50", "x%", "0%", "101%", 1024, True, 1.5]:
        with pytest.raises(ValueError, match="udget"):
            _spill.parse_budget(bad, SHM_DIR)  # type: ignore[arg-type]


def test_budget_sizes_the_arena_and_spills_lru(config: dict[str, Any]) -> None:
    with SharedMemoryConnector(**config) as connector:
        keys = [connector.put(_data(i)) for i in range(12)]
        # The budget covers the arena and the deadline table it may get.
        table = _arena_ttl.table_bytes(config["arena_slots"])
        assert os.stat(os.path.join(SHM_DIR, connector.segments()[0])).st_size == (
            2 * MiB - table
        )
        assert connector.segments() == [
            f"psshm-{os.geteuid()}-{config['namespace']}-arena"
        ]
        metrics = connector.spill_metrics()["0:directory"]
        assert metrics["objects_spilled"] >= 6
        # The oldest went first.
        arena = connector._arena()
        assert arena is not None
        assert _spill.spilled_tier(arena, *connector._slot(keys[0]) or (0, 0)) == 0
        assert _spill.spilled_tier(arena, *connector._slot(keys[-1]) or (0, 0)) is None
        for i, key in enumerate(keys):
            assert connector.exists(key)
            assert bytes(connector.get(key) or b"") == _data(i)
        connector.close(clear=True)
        assert connector.segments() == []
        assert not os.path.exists(config["spill_directory"])


def test_recently_used_objects_stay(config: dict[str, Any]) -> None:
    connector = SharedMemoryConnector(**config)
    first = connector.put(_data(0))
    for i in range(1, 12):
        assert bytes(connector.get(first) or b"") == _data(0)  # used: stays
        connector.put(_data(i))
    arena = connector._arena()
    assert arena is not None
    assert _spill.spilled_tier(arena, *connector._slot(first) or (0, 0)) is None


def test_keys_resolve_in_another_connector_from_config(config: dict[str, Any]) -> None:
    connector = SharedMemoryConnector(**config)
    keys = [connector.put(_data(i)) for i in range(10)]
    other = SharedMemoryConnector.from_config(connector.config())
    assert other.config() == connector.config()
    assert [bytes(other.get(k) or b"") for k in keys] == [_data(i) for i in range(10)]
    assert other.restore(keys[0])
    assert bytes(connector.get(keys[0]) or b"") == _data(0)
    assert other.spill(keys[0])
    assert bytes(connector.get(keys[0]) or b"") == _data(0)


def test_evict_spilled_removes_the_file(config: dict[str, Any]) -> None:
    connector = SharedMemoryConnector(**config)
    key = connector.put(_data(0))
    assert connector.spill(key)
    assert os.path.exists(os.path.join(config["spill_directory"], key.name))
    connector.evict(key)
    assert not connector.exists(key)
    assert connector.get(key) is None
    assert not os.path.exists(os.path.join(config["spill_directory"], key.name))
    assert not connector.spill(key)
    assert not connector.restore(key)


def test_object_larger_than_the_budget_goes_straight_down(
    config: dict[str, Any],
) -> None:
    connector = SharedMemoryConnector(**config)
    big = _data(1, 3 * MiB)
    key = connector.put(big)
    assert key.name.startswith(connector._arena_stem)
    assert connector.get(key) == big
    assert not connector.restore(key)  # cannot fit
    connector.evict(key)
    assert connector.get(key) is None


def test_get_restores_into_free_room(config: dict[str, Any]) -> None:
    connector = SharedMemoryConnector(**config)
    key = connector.put(_data(0))
    assert connector.spill(key)
    assert bytes(connector.get(key) or b"") == _data(0)
    metrics = connector.spill_metrics()["0:directory"]
    assert metrics["objects_restored"] == 1
    assert not os.path.exists(os.path.join(config["spill_directory"], key.name))


def test_writable_get_of_spilled_object(config: dict[str, Any]) -> None:
    connector = SharedMemoryConnector(**config)
    keys = [connector.put(_data(i)) for i in range(12)]
    view = connector.get(keys[0], writable=True)
    assert isinstance(view, memoryview)
    assert not view.readonly
    assert bytes(view) == _data(0)


def test_debug_line_per_move(
    config: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    connector = SharedMemoryConnector(**config)
    key = connector.put(_data(0))
    with caplog.at_level(logging.DEBUG, logger="proxystore.connectors._spill"):
        connector.spill(key)
        connector.restore(key)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith(f"spilled {key.name} ({OBJ} bytes")
    assert lines[1].startswith(f"restored {key.name} ({OBJ} bytes")


def test_compression_writes_less(config: dict[str, Any]) -> None:
    pytest.importorskip("zstandard")
    connector = SharedMemoryConnector(**config, spill_compress="zstd")
    counts = np.random.default_rng(0).poisson(3, OBJ // 8).astype(np.int64).tobytes()
    key = connector.put(counts)
    noise = connector.put(_data(7))
    assert connector.spill(key)
    assert connector.spill(noise)
    metrics = connector.spill_metrics()["0:directory"]
    # The counts shrink, the noise is stored raw (not worth compressing).
    assert metrics["bytes_written"] <= 0.5 * OBJ + OBJ + 2 * 64
    assert os.path.getsize(os.path.join(config["spill_directory"], key.name)) < OBJ / 2
    assert connector.get(key) == counts
    assert connector.get(noise) == _data(7)


def test_unknown_codec(config: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="codec"):
        SharedMemoryConnector(**config, spill_compress="snappy")


def test_next_tier_takes_the_directory_overflow(
    config: dict[str, Any], tmp_path: Path
) -> None:
    files = FileConnector(str(tmp_path / "files"))
    connector = SharedMemoryConnector(
        **config, spill_then=[files], spill_directory_budget=OBJ + 1024
    )
    keys = [connector.put(_data(i)) for i in range(14)]
    metrics = connector.spill_metrics()
    assert metrics["1:FileConnector"]["objects_spilled"] >= 1
    assert os.listdir(tmp_path / "files")
    for i, key in enumerate(keys):
        assert bytes(connector.get(key) or b"") == _data(i)
    connector.close(clear=True)
    assert not (tmp_path / "files").exists() or not os.listdir(tmp_path / "files")
    assert not os.path.exists(config["spill_directory"])


def test_held_object_is_not_spilled(config: dict[str, Any]) -> None:
    connector = SharedMemoryConnector(**config)
    key = connector.put(_data(0))
    view = connector.get(key)
    assert not connector.spill(key)
    for i in range(1, 12):
        connector.put(_data(i))
    assert bytes(view or b"") == _data(0)
    arena = connector._arena()
    assert arena is not None
    assert _spill.spilled_tier(arena, *connector._slot(key) or (0, 0)) is None
    del view
    assert connector.spill(key)


def _deadline_of_file(path: str) -> float | None:
    """Return a spill file's deadline (seconds since the epoch), if marked."""
    st = os.stat(path)
    return st.st_mtime if st.st_mode & EXPIRES else None


def test_expired_objects_are_dropped_not_spilled(config: dict[str, Any]) -> None:
    connector = SharedMemoryConnector(**config)
    living = connector.put(_data(0), ttl=600)
    doomed = connector.put(_data(1), ttl=0.05)
    plain = connector.put(_data(2))
    time.sleep(0.1)
    assert connector.spill(doomed)  # expired: dropped instead
    assert not connector.exists(doomed)
    assert not os.path.exists(os.path.join(config["spill_directory"], doomed.name))
    assert connector.spill_metrics()["0:directory"]["objects_dropped"] == 1
    # Filling the budget drops expired objects first, never spills them; the
    # living ones spill like any other (least recently used first).
    more = [connector.put(_data(i), ttl=0.05) for i in range(3, 6)]
    time.sleep(0.1)
    keys = [connector.put(_data(i)) for i in range(10, 20)]
    metrics = connector.spill_metrics()["0:directory"]
    assert metrics["objects_dropped"] >= 1 + len(more) - 1
    spilled = set(os.listdir(config["spill_directory"]))
    assert not spilled & {k.name for k in more}
    assert living.name in spilled
    assert plain.name in spilled
    assert bytes(connector.get(living) or b"") == _data(0)
    for i, key in zip(range(10, 20), keys, strict=True):
        assert bytes(connector.get(key) or b"") == _data(i)
    connector.close()


def test_ttl_objects_spill_with_their_deadline(config: dict[str, Any]) -> None:
    with SharedMemoryConnector(**config) as connector:
        key = connector.put(_data(0), ttl=600)
        assert connector.spill(key)
        path = os.path.join(config["spill_directory"], key.name)
        deadline = _deadline_of_file(path)
        assert deadline is not None
        assert 590 < deadline - time.time() <= 600
        left = connector.ttl(key)
        assert left is not None
        assert 590 < left <= 600
        assert bytes(connector.get(key) or b"") == _data(0)
        assert connector.restore(key)
        assert not os.path.exists(path)
        left = connector.ttl(key)  # back in memory, same deadline
        assert left is not None
        assert 590 < left <= 600


def test_budget_with_ttl_makes_no_overflow_segments(config: dict[str, Any]) -> None:
    with SharedMemoryConnector(**config) as connector:
        keys = [connector.put(_data(i), ttl=600) for i in range(20)]  # 3x budget
        assert [
            n for n in connector.segments() if not n.endswith(("-arena", ".ttl"))
        ] == []
        for i, key in enumerate(keys):
            assert bytes(connector.get(key) or b"") == _data(i)
        assert connector.spill_metrics()["0:directory"]["objects_spilled"] >= 10
        big = connector.put(_data(99, 3 * MiB), ttl=600)  # larger than the budget
        assert bytes(connector.get(big) or b"") == _data(99, 3 * MiB)
        assert len(connector.segments()) == 2  # the arena and its deadline table


def test_spilled_objects_expire_and_are_swept(config: dict[str, Any]) -> None:
    with SharedMemoryConnector(**config) as connector:
        keys = [connector.put(_data(i), ttl=0.5) for i in range(14)]
        big = connector.put(_data(99, 3 * MiB), ttl=0.5)  # no room in memory
        plain = [connector.put(_data(i)) for i in range(20, 22)]
        spilled = [n for n in os.listdir(config["spill_directory"]) if n[0] != "."]
        assert len(spilled) >= 7
        assert connector.exists(big)
        time.sleep(0.6)
        for key in [*keys, big]:
            assert connector.get(key) is None
            assert not connector.exists(key)
            assert connector.ttl(key) is None
        connector.sweep()  # (or the background sweep did it already)
        assert [n for n in os.listdir(config["spill_directory"]) if n[0] != "."] == [
            n.name for n in plain if _arena_has_spilled(connector, n)
        ]
        arena = connector._arena()
        assert arena is not None
        counts = _spill.resident(arena)
        assert sum(n for n, _ in counts.values()) == len(plain)
        for i, key in zip(range(20, 22), plain, strict=True):
            assert bytes(connector.get(key) or b"") == _data(i)


def _arena_has_spilled(connector: SharedMemoryConnector, key: SharedMemoryKey) -> bool:
    arena = connector._arena()
    slot = connector._slot(key)
    assert arena is not None
    assert slot is not None
    return _spill.spilled_tier(arena, *slot) is not None


def test_expire_reaches_spilled_objects(config: dict[str, Any]) -> None:
    with SharedMemoryConnector(**config) as connector:
        key = connector.put(_data(0))
        kept = connector.put(_data(1), ttl=0.2)
        assert connector.spill(key)
        assert connector.spill(kept)
        assert connector.expire(key, 0.2)
        assert connector.expire(kept, None)  # persist: no deadline any more
        assert (
            _deadline_of_file(os.path.join(config["spill_directory"], kept.name))
            is None
        )
        time.sleep(0.3)
        assert connector.get(key) is None
        assert bytes(connector.get(kept) or b"") == _data(1)


def test_connector_tier_gets_the_time_left(
    config: dict[str, Any], tmp_path: Path
) -> None:
    files = FileConnector(str(tmp_path / "files"))
    with SharedMemoryConnector(
        **config, spill_then=[files], spill_directory_budget=OBJ + 1024
    ) as connector:
        keys = [connector.put(_data(i), ttl=600) for i in range(14)]
        assert connector.spill_metrics()["1:FileConnector"]["objects_spilled"] >= 1
        stored = [n for n in os.listdir(tmp_path / "files") if n[0] != "."]
        assert stored
        for name in stored:
            deadline = _deadline_of_file(str(tmp_path / "files" / name))
            assert deadline is not None
            assert 590 < deadline - time.time() <= 600
        for i, key in enumerate(keys):
            assert bytes(connector.get(key) or b"") == _data(i)
    files.close()


def test_spill_without_tiers_raises() -> None:
    connector = SharedMemoryConnector(f"nospill_{secrets.token_hex(4)}", arena=True)
    try:
        with pytest.raises(_spill.SpillError, match="no spill tiers"):
            connector.spill(SharedMemoryKey(connector._arena_stem + "0.1", 1))
    finally:
        connector.close(clear=True)


def test_composes_with_multiconnector(config: dict[str, Any], tmp_path: Path) -> None:
    shm_connector = SharedMemoryConnector(**config)
    files = FileConnector(str(tmp_path / "multi-files"))
    multi = MultiConnector(
        {
            "shm": (shm_connector, Policy(max_size_bytes=MiB)),
            "file": (files, Policy(min_size_bytes=MiB)),
        }
    )
    keys = [multi.put(_data(i)) for i in range(12)]
    big = multi.put(_data(99, 2 * MiB))
    again = MultiConnector.from_config(multi.config())
    assert [bytes(again.get(k) or b"") for k in keys] == [_data(i) for i in range(12)]
    assert again.get(big) == _data(99, 2 * MiB)
    assert shm_connector.spill_metrics()["0:directory"]["objects_spilled"] > 0
    multi.close()


def test_small_shm_default_spills_instead_of_failing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A container's /dev/shm: 64 MiB in all (the budget is half of it).
    real = os.statvfs(SHM_DIR)

    class Small:
        f_frsize = real.f_frsize
        f_blocks = 64 * MiB // real.f_frsize
        f_bavail = 8 * MiB // real.f_frsize

    def statvfs(path: str) -> Any:
        return Small() if path == SHM_DIR else real

    monkeypatch.setattr(os, "statvfs", statvfs)
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    namespace = f"small_{secrets.token_hex(4)}"
    # Arena mode: the budget is half of /dev/shm.
    arena = SharedMemoryConnector(namespace, arena=True)
    assert arena.arena_size == 32 * MiB - _arena_ttl.table_bytes(arena.arena_slots)
    arena.close(clear=True)
    # Per-object segments: a put that finds /dev/shm full goes to disk.
    connector = SharedMemoryConnector(namespace + "s")
    big = _data(3, 9 * MiB)
    key = connector.put(big)
    assert connector.segments() == []
    assert connector.exists(key)
    assert connector.get(key) == big
    connector.evict(key)
    assert not connector.exists(key)
    # With a time-to-live too, and it keeps its deadline there.
    doomed = connector.put(big, ttl=0.2)
    assert connector.segments() == []
    assert connector.get(doomed) == big
    time.sleep(0.25)
    assert connector.get(doomed) is None
    assert not connector.exists(doomed)
    connector.close(clear=True)
    assert os.listdir(tmp_path) == []


def test_large_shm_keeps_failing_loudly_without_spill(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connector = SharedMemoryConnector(f"loud_{secrets.token_hex(4)}")
    assert connector._spill is None

    def full(*args: Any) -> None:
        raise SharedMemoryFullError("full", needed=1, free=0)

    monkeypatch.setattr(connector, "_write", full)
    with pytest.raises(SharedMemoryFullError):
        connector.put(b"x")


def test_foreign_spill_directory_is_refused(config: dict[str, Any]) -> None:
    os.makedirs(config["spill_directory"], mode=0o755)
    os.chmod(config["spill_directory"], 0o755)
    connector = SharedMemoryConnector(**config)
    key = connector.put(_data(0))
    with pytest.raises(Exception, match="other users may open it"):
        connector.spill(key)
    os.chmod(config["spill_directory"], 0o700)


def test_spill_directory_of_another_uid_is_refused(config: dict[str, Any]) -> None:
    # A local user who made the spill directory first would read every object
    # spilled into it: it is refused before anything is written there.
    if os.geteuid() != 0:
        pytest.skip("giving the directory to another uid needs root")
    directory = config["spill_directory"]
    os.makedirs(directory, mode=0o700)
    os.chown(directory, 65534, 65534)
    connector = SharedMemoryConnector(**config)
    key = connector.put(_data(0))
    with pytest.raises(ForeignFileError, match="belongs to uid 65534"):
        connector.spill(key)
    assert os.listdir(directory) == []
    assert connector.get(key) == _data(0)  # still in memory, nothing lost


def test_spill_directory_planted_as_a_symlink_is_refused(
    config: dict[str, Any], tmp_path: Path
) -> None:
    # A symlink (to a directory its planter can read) is not our directory,
    # even when what it points to passes every other check.
    target = tmp_path / "planted"
    target.mkdir(mode=0o700)
    os.symlink(target, config["spill_directory"])
    connector = SharedMemoryConnector(**config)
    key = connector.put(_data(0))
    with pytest.raises(ForeignFileError, match="not a directory"):
        connector.spill(key)
    assert os.listdir(target) == []
    assert connector.get(key) == _data(0)


def test_spilled_state_frees_the_data_room(config: dict[str, Any]) -> None:
    connector = SharedMemoryConnector(**config)
    arena = connector._arena()
    assert arena is not None
    key = connector.put(_data(0))
    slot = connector._slot(key)
    assert slot is not None
    assert connector.spill(key)
    e = arena._entry(slot[0])
    assert arena.words[e + _arena._E_STATE] == _arena.SPILLED
    # The room is reusable while the spilled slot keeps its key.
    found = arena.allocate(arena.size - arena.data_start - 64)
    assert found is not None
    arena.abort(found[0], found[1])
    assert bytes(connector.get(key) or b"") == _data(0)


def test_restore_never_removes_a_newer_spilled_copy(
    config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = SharedMemoryConnector(**config)
    key = connector.put(_data(0))
    assert connector.spill(key)
    real = _spill.commit_restore

    def commit_then_spill_again(*args: Any, **kwargs: Any) -> bool:
        ok = real(*args, **kwargs)
        monkeypatch.setattr(_spill, "commit_restore", real)
        # Another process spills the restored object again, to the same name,
        # before the restorer removes the copy it restored from.
        assert ok
        assert connector.spill(key)
        return ok

    monkeypatch.setattr(_spill, "commit_restore", commit_then_spill_again)
    assert connector.restore(key)
    assert bytes(connector.get(key) or b"") == _data(0)


def test_set_within_a_budget(config: dict[str, Any]) -> None:
    connector = SharedMemoryConnector(**config)
    key = connector.new_key()
    connector.set(key, _data(1))
    assert [n for n in connector.segments() if not n.endswith("-arena")] == []
    assert connector.exists(key)
    assert connector.get(key) == _data(1)
    connector.evict(key)
    assert not connector.exists(key)
    # Replacing a spilled arena object drops its spilled copy.
    old = connector.put(_data(2))
    assert connector.spill(old)
    connector.set(old, _data(3))
    assert bytes(connector.get(old) or b"") == _data(3)
    assert not os.path.exists(os.path.join(config["spill_directory"], old.name))
    connector.evict(old)
    assert connector.get(old) is None


def test_namespace_wide_resident_counts(config: dict[str, Any]) -> None:
    connector = SharedMemoryConnector(**config)
    keys = [connector.put(_data(i)) for i in range(12)]
    other = SharedMemoryConnector.from_config(connector.config())
    metrics = other.spill_metrics()  # another connector: no moves of its own
    assert metrics["0:directory"]["objects_spilled"] == 0
    in_memory, on_disk = metrics["shm"], metrics["0:directory"]
    assert in_memory["objects_now"] + on_disk["objects_now"] == len(keys)
    assert in_memory["bytes_now"] + on_disk["bytes_now"] == len(keys) * OBJ
    assert in_memory["bytes_now"] <= 2 * MiB
    assert (
        on_disk["objects_now"]
        == connector.spill_metrics()["0:directory"]["objects_spilled"]
    )
