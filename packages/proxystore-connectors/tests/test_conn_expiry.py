"""Objects with a time-to-live in connectors without a server (files, shm)."""

from __future__ import annotations

import fcntl
import os
import pathlib
import time
from collections.abc import Iterator

import pytest

from proxystore.connectors.file import FileConnector, FileKey
from proxystore.connectors.protocols import (
    ExpiringConnector,
    KeyInfo,
    ListingConnector,
    SweepingConnector,
    check_ttl,
)
from proxystore.connectors.shm import SharedMemoryConnector


@pytest.fixture
def connector(tmp_path: pathlib.Path) -> Iterator[FileConnector]:
    with FileConnector(str(tmp_path / "store"), sweep_interval=3600) as c:
        yield c


def _wait_until(condition: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.01)
    return False


def test_file_connector_meets_the_contracts(connector: FileConnector) -> None:
    assert isinstance(connector, ExpiringConnector)
    assert isinstance(connector, ListingConnector)
    assert isinstance(connector, SweepingConnector)


@pytest.mark.parametrize("bad", [0, -2.5, float("inf"), float("nan")])
def test_check_ttl_refuses_non_positive_or_infinite(bad: float) -> None:
    with pytest.raises(ValueError, match="ttl"):
        check_ttl(bad)


def test_expired_object_is_never_read_and_sweep_removes_it(
    connector: FileConnector,
) -> None:
    key = connector.put(b"short", ttl=0.3)
    kept = connector.put(b"plain")
    left = connector.ttl(key)
    assert left is not None
    assert 0 < left <= 0.3
    assert connector.ttl(kept) is None
    assert connector.get(key) == b"short"
    time.sleep(0.35)
    # Before any sweep: the file is there but never returned.
    path = os.path.join(connector.store_dir, key.filename)
    assert os.path.exists(path)
    assert connector.get(key) is None
    assert connector.get_batch([key, kept]) == [None, b"plain"]
    assert not connector.exists(key)
    assert connector.ttl(key) is None
    assert not connector.expire(key, 10)
    assert connector.sweep() == 1
    assert not os.path.exists(path)
    assert connector.get(kept) == b"plain"
    assert connector.sweep() == 0


def test_large_object_with_ttl_is_mapped_then_expires(
    connector: FileConnector,
) -> None:
    data = os.urandom(3 << 20)
    key = connector.put(data, ttl=0.3)
    got = connector.get(key)
    assert got is not None
    assert bytes(got) == data
    time.sleep(0.35)
    assert connector.get(key) is None


def test_expire_extends_and_persist_removes_the_deadline(
    connector: FileConnector,
) -> None:
    key = connector.put(b"x", ttl=0.3)
    assert connector.expire(key, 30)
    left = connector.ttl(key)
    assert left is not None
    assert left > 20
    assert connector.expire(key, None)
    assert connector.ttl(key) is None
    time.sleep(0.35)
    assert connector.get(key) == b"x"
    assert connector.sweep() == 0
    # A plain object can be given a deadline later.
    plain = connector.put(b"y")
    assert connector.expire(plain, 0.02)
    time.sleep(0.04)
    assert connector.get(plain) is None
    assert not connector.expire(FileKey("missing"), 1)


def test_put_batch_and_set_take_ttl(connector: FileConnector) -> None:
    keys = connector.put_batch([b"a", b"b"], ttl=0.3)
    future = connector.new_key()
    connector.set(future, b"c", ttl=0.3)
    assert all(connector.ttl(k) is not None for k in [*keys, future])
    time.sleep(0.35)
    assert connector.get_batch([*keys, future]) == [None, None, None]
    assert connector.sweep() == 3


def test_scan_lists_sizes_ages_and_ttls(connector: FileConnector) -> None:
    plain = connector.put(b"12345")
    leased = connector.put(b"abc", ttl=30)
    gone = connector.put(b"z", ttl=0.01)
    time.sleep(0.02)
    infos = {info.key: info for info in connector.scan()}
    assert set(infos) == {plain, leased}
    assert all(isinstance(info, KeyInfo) for info in infos.values())
    assert infos[plain].size == 5
    assert infos[plain].ttl is None
    assert infos[leased].size == 3
    leased_ttl = infos[leased].ttl
    assert leased_ttl is not None
    assert 25 < leased_ttl <= 30
    for info in infos.values():
        assert info.age is not None
        assert 0 <= info.age < 5
        assert info.holders is None
    assert gone not in infos


def test_another_connector_of_the_directory_sweeps_in_the_background(
    tmp_path: pathlib.Path,
) -> None:
    store_dir = str(tmp_path / "shared")
    writer = FileConnector(store_dir, clear=False, sweep_interval=3600)
    key = writer.put(b"x", ttl=0.3)
    path = os.path.join(store_dir, key.filename)
    writer.close()  # stops its sweeper; the object is still on disk
    time.sleep(0.06)
    assert os.path.exists(path)
    # Any process opening the directory (here: a new connector) sweeps it.
    with FileConnector(store_dir, clear=True, sweep_interval=0.02):
        assert _wait_until(lambda: not os.path.exists(path))


def test_sweeps_do_not_race(connector: FileConnector) -> None:
    key = connector.put(b"x", ttl=0.01)
    time.sleep(0.02)
    lock = os.path.join(connector.store_dir, ".sweep.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        # Another sweeper holds the lock: this one leaves at once.
        assert connector.sweep() == 0
    finally:
        os.close(fd)
    assert connector.sweep() == 1
    assert not connector.exists(key)


def test_objects_without_ttl_are_never_swept(connector: FileConnector) -> None:
    keys = [connector.put(b"x") for _ in range(3)]
    connector.put(b"y", ttl=0.01)
    time.sleep(0.02)
    assert connector.sweep() == 1
    assert all(connector.get(k) == b"x" for k in keys)


# ---------------------------------------------------------------- shared memory
@pytest.fixture
def shm() -> Iterator[SharedMemoryConnector]:
    namespace = f"ttl{os.getpid()}_{time.monotonic_ns()}"
    with SharedMemoryConnector(namespace, arena=True, arena_size=8 << 20) as c:
        yield c


def test_shm_meets_the_contracts(shm: SharedMemoryConnector) -> None:
    assert isinstance(shm, ExpiringConnector)
    assert isinstance(shm, ListingConnector)
    assert isinstance(shm, SweepingConnector)


@pytest.mark.parametrize("size", [10, 512 << 10])
def test_arena_object_expires_and_is_swept(
    shm: SharedMemoryConnector, size: int
) -> None:
    data = os.urandom(size)
    key = shm.put(data, ttl=0.3)
    plain = shm.put(b"plain")
    assert key.name.startswith(shm._arena_stem)  # in the arena
    left = shm.ttl(key)
    assert left is not None
    assert 0 < left <= 0.3
    assert shm.ttl(plain) is None
    got = shm.get(key)
    assert got is not None
    assert bytes(got) == data
    del got
    time.sleep(0.35)
    # Due: never read (the C read path included), before any sweep.
    assert shm.get(key) is None
    assert not shm.exists(key)
    assert not shm.expire(key, 10)
    arena = shm._arena()
    assert arena is not None
    assert shm.sweep() == 1
    slot = shm._slot(key)
    assert slot is not None
    assert not arena.exists(*slot)
    assert shm.get(plain) == b"plain"


def test_arena_expire_extends_and_persists(shm: SharedMemoryConnector) -> None:
    key = shm.put(b"x", ttl=0.3)
    assert shm.expire(key, 30)
    left = shm.ttl(key)
    assert left is not None
    assert left > 20
    assert shm.expire(key, None)
    assert shm.ttl(key) is None
    plain = shm.put(b"y")
    assert shm.expire(plain, 0.02)
    time.sleep(0.35)
    assert shm.get(key) == b"x"
    assert shm.get(plain) is None
    assert shm.sweep() == 1


def test_segment_objects_expire_like_files() -> None:
    namespace = f"ttlseg{os.getpid()}_{time.monotonic_ns()}"
    with SharedMemoryConnector(namespace) as seg:
        key = seg.put(b"s" * 100, ttl=0.3)
        path = os.path.join("/dev/shm", key.name)
        assert os.path.exists(path)
        assert seg.ttl(key) is not None
        time.sleep(0.35)
        assert seg.get(key) is None
        assert not seg.exists(key)
        assert seg.sweep() == 1
        assert not os.path.exists(path)


def test_another_process_of_the_namespace_sweeps(
    shm: SharedMemoryConnector,
) -> None:
    key = shm.put(b"x", ttl=0.3)
    slot = shm._slot(key)
    arena = shm._arena()
    assert slot is not None
    assert arena is not None
    # As if the writer had died: its sweeper stops.
    assert shm._sweeping is not None
    shm._sweeping()
    shm._sweeping = None
    time.sleep(0.35)
    assert arena.exists(*slot)  # due, but nobody swept yet
    # A second connector of the namespace stands for any other process:
    # attaching to an arena with deadlines starts its sweeper.
    other = SharedMemoryConnector(shm.namespace, arena=True, arena_size=8 << 20)
    try:
        other._arena()
        assert other._sweeping is not None
        assert _wait_until(lambda: not arena.exists(*slot))
    finally:
        other.close(clear=False)


def test_shm_scan_lists_sizes_ttls_and_holders(shm: SharedMemoryConnector) -> None:
    big = shm.put(os.urandom(512 << 10), ttl=30)
    small = shm.put(b"abc")
    gone = shm.put(b"z", ttl=0.01)
    view = shm.get(big)  # a zero-copy view: this process holds the slot
    time.sleep(0.02)
    infos = {info.key.name: info for info in shm.scan()}
    assert set(infos) == {big.name, small.name}
    assert infos[small.name].size == 3
    assert infos[small.name].ttl is None
    big_ttl = infos[big.name].ttl
    assert big_ttl is not None
    assert 25 < big_ttl <= 30
    assert infos[big.name].holders == (f"pid:{os.getpid()}",)
    assert gone.name not in infos
    del view
