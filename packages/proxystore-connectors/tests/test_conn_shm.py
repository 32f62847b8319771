"""Unit tests of proxystore.connectors.shm (POSIX shared-memory segments)."""

from __future__ import annotations

import errno
import json
import mmap
import os
import pickle
import secrets
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from proxystore.connectors import shm
from proxystore.connectors.exceptions import (
    ConnectorConnectionError,
    ConnectorError,
    CorruptPayloadError,
)
from proxystore.connectors.protocols import Connector, DeferrableConnector
from proxystore.connectors.shm import (
    SharedMemoryConnector,
    SharedMemoryFullError,
    SharedMemoryKey,
)
from proxystore.proxy import ProxyResolveError, extract
from proxystore.store import Store
from proxystore.store.exceptions import ProxyResolveMissingKeyError
from tests.conformance.connector_suite import ConnectorSuite
from tests.conformance.subprocesses import kill_when_stalled, run_python

#: One namespace per test process (xdist worker), so parallel runs never meet.
UID = os.geteuid()
NAMESPACE = f"test_{os.getpid()}_{secrets.token_hex(4)}"
_BIG = 1 << 20  # above the size from which get() maps instead of reading


def _static_contracts() -> None:
    # Never called: mypy proves the connector satisfies both contracts.
    _c: Connector[SharedMemoryKey] = SharedMemoryConnector()
    _d: DeferrableConnector[SharedMemoryKey] = SharedMemoryConnector()


def _leftovers(namespace: str = NAMESPACE) -> list[str]:
    return SharedMemoryConnector(namespace, clear=False).segments()


@pytest.fixture(autouse=True)
def _no_segment_left() -> Iterator[None]:
    yield
    left = _leftovers()
    SharedMemoryConnector(NAMESPACE).close()  # do not let one failure cascade
    assert left == [], f"segments left in /dev/shm: {left}"


@pytest.fixture
def connector() -> Iterator[SharedMemoryConnector]:
    with SharedMemoryConnector(NAMESPACE) as connector:
        yield connector


class TestSharedMemoryConformance(ConnectorSuite):
    @pytest.fixture
    def connector(self) -> Iterator[SharedMemoryConnector]:
        with SharedMemoryConnector(NAMESPACE) as connector:
            yield connector


# ------------------------------------------------------------------ basics


def test_names_repr_and_config(connector: SharedMemoryConnector) -> None:
    key = connector.put(b"abc")
    assert key.size == 3
    assert key.name.startswith(f"psshm-{UID}-{NAMESPACE}-")
    assert len(key.name.rsplit("-", 1)[1]) == 32
    assert os.path.exists(os.path.join("/dev/shm", key.name))
    assert connector.segments() == [key.name]
    assert repr(connector) == f"SharedMemoryConnector(namespace={NAMESPACE!r})"
    assert connector.config() == {"namespace": NAMESPACE, "clear": True}


def test_names_never_collide(connector: SharedMemoryConnector) -> None:
    keys = connector.put_batch([b"x"] * 200)
    assert len({k.name for k in keys}) == 200
    other = SharedMemoryConnector(NAMESPACE)
    assert not {k.name for k in other.put_batch([b"y"] * 50)} & {k.name for k in keys}


@pytest.mark.parametrize("namespace", ["", "a-b", "a/b", "x" * 65, "é"])
def test_invalid_namespace(namespace: str) -> None:
    with pytest.raises(ValueError, match="Invalid namespace"):
        SharedMemoryConnector(namespace)


def test_missing_shm_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shm, "SHM_DIR", "/nonexistent/shm")
    with pytest.raises(ConnectorConnectionError, match="/nonexistent/shm"):
        SharedMemoryConnector(NAMESPACE)


@pytest.mark.parametrize(
    "name", ["../etc/passwd", "other-name", "psshm-a/b", "psshm-x-0.tmp-1", ""]
)
def test_invalid_key_names(connector: SharedMemoryConnector, name: str) -> None:
    key = SharedMemoryKey(name, 1)
    for op in (connector.get, connector.exists, connector.evict):
        with pytest.raises(ValueError, match="Invalid shared-memory segment name"):
            op(key)
    with pytest.raises(ValueError, match="Invalid shared-memory segment name"):
        connector.set(key, b"x")


def test_small_objects_are_bytes_large_ones_private_maps(
    connector: SharedMemoryConnector,
) -> None:
    small = connector.get(connector.put(b"small"))
    assert small == b"small"
    assert type(small) is bytes
    payload = bytes(range(256)) * (_BIG // 256)
    view = connector.get(connector.put(payload))
    assert isinstance(view, memoryview)
    assert isinstance(view.obj, mmap.mmap)
    assert not view.readonly
    assert view == payload
    view[0] = 255  # copy-on-write: private to this view
    assert view[0] == 255
    key = connector.put_batch([payload])[0]
    again = connector.get(key)
    assert again is not None
    assert again[0] == 0


def test_mapping_outlives_evict_and_set(connector: SharedMemoryConnector) -> None:
    payload = b"\x07" * _BIG
    key = connector.put(payload)
    view = connector.get(key)
    connector.set(key, b"\x09" * _BIG)
    assert view == payload
    connector.evict(key)
    assert not connector.exists(key)
    assert connector.get(key) is None
    assert view == payload


def test_set_with_other_size_and_empty_new_key(
    connector: SharedMemoryConnector,
) -> None:
    key = connector.new_key()
    assert key.size == 0
    assert not connector.exists(key)
    connector.set(key, b"\x01" * _BIG)
    assert connector.get(key) == b"\x01" * _BIG
    connector.set(key, b"")
    assert connector.get(key) == b""
    assert not connector.exists(connector.new_key(b"abc"))


def test_close_clear_flag_and_other_namespaces() -> None:
    other_ns = f"{NAMESPACE}.b"
    keeper = SharedMemoryConnector(NAMESPACE, clear=False)
    neighbour = SharedMemoryConnector(other_ns)
    try:
        key = keeper.put(b"kept")
        theirs = neighbour.put(b"theirs")
        keeper.close()
        assert keeper.get(key) == b"kept"
        keeper.close(clear=True)
        assert keeper.get(key) is None
        assert neighbour.get(theirs) == b"theirs"
    finally:
        neighbour.close()
    assert _leftovers(other_ns) == []


# ------------------------------------------------------------------ errors


def _segment_path(key: SharedMemoryKey) -> str:
    return os.path.join("/dev/shm", key.name)


@pytest.mark.parametrize("size", [10, _BIG])
def test_truncated_segment_is_corrupt(
    connector: SharedMemoryConnector, size: int
) -> None:
    key = connector.put(b"z" * size)
    os.truncate(_segment_path(key), 64 + size // 2)
    with pytest.raises(CorruptPayloadError, match="truncated") as info:
        connector.get(key)
    assert key.name in str(info.value)
    os.truncate(_segment_path(key), 10)
    with pytest.raises(CorruptPayloadError, match="header"):
        connector.get(key)
    with (
        Store("shm-corrupt", connector, cache_size=0) as store,
        pytest.raises(CorruptPayloadError),
    ):
        store.get(key)


def test_foreign_segment_is_corrupt(connector: SharedMemoryConnector) -> None:
    key = connector.put(b"x" * 100)
    with open(_segment_path(key), "r+b") as f:
        f.write(b"NOTOURS!")
    with pytest.raises(CorruptPayloadError, match="no valid header"):
        connector.get(key)


def test_missing_key_through_store(connector: SharedMemoryConnector) -> None:
    with Store("shm-missing", connector, register=True) as store:
        key = store.put([1, 2, 3])
        store.evict(key)
        assert store.get(key, default="absent") == "absent"
        with pytest.raises(ProxyResolveError) as info:
            extract(store.proxy_from_key(key))
        assert isinstance(info.value.__cause__, ProxyResolveMissingKeyError)


def test_object_larger_than_free_space(
    connector: SharedMemoryConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.statvfs("/dev/shm")

    class Small:
        f_frsize = real.f_frsize
        f_bavail = 2
        f_blocks = 4

    monkeypatch.setattr(os, "statvfs", lambda path: Small)
    with pytest.raises(SharedMemoryFullError) as info:
        connector.put(b"x" * (4 * real.f_frsize))
    message = str(info.value)
    assert f"{2 * real.f_frsize} bytes are free" in message
    assert "/dev/shm" in message
    assert info.value.needed == 64 + 4 * real.f_frsize
    assert isinstance(info.value, ConnectorError)
    assert connector.segments() == []


@pytest.mark.parametrize(
    ("code", "error", "match"),
    [
        # Another writer took the space between the free-space check and the write.
        (errno.ENOSPC, SharedMemoryFullError, "bytes are free"),
        (errno.EIO, ConnectorConnectionError, "Input/output error"),
    ],
)
def test_write_errors_are_translated(
    connector: SharedMemoryConnector,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    error: type[Exception],
    match: str,
) -> None:
    def failing(fd: int, buffers: Any) -> int:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "writev", failing)
    with pytest.raises(error, match=match):
        connector.put(b"data")
    assert connector.segments() == []


def test_short_writes_are_completed(
    connector: SharedMemoryConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_writev = os.writev

    def short(fd: int, buffers: Any) -> int:
        # At most 10 bytes per call: forces both retry branches.
        first = bytes(memoryview(buffers[0])[:10])
        return real_writev(fd, [first])

    monkeypatch.setattr(os, "writev", short)
    monkeypatch.setattr(os, "write", lambda fd, b: real_writev(fd, [b[:10]]))
    payload = bytes(range(100))
    assert connector.get(connector.put(payload)) == payload


# ------------------------------------------------------------------ processes

_CHILD_READ = """
import sys, numpy as np
from proxystore.connectors.shm import SharedMemoryConnector, SharedMemoryKey
c = SharedMemoryConnector(sys.argv[1], clear=False)
view = c.get(SharedMemoryKey(sys.argv[2], int(sys.argv[3])))
arr = np.frombuffer(view, dtype=np.float64)
arr[:] = -1.0  # private copy-on-write pages: the stored object must not change
mine = c.put(b"from child " + sys.argv[2].encode())
print(float(np.frombuffer(c.get(SharedMemoryKey(sys.argv[2], 0)), np.float64).sum()))
print(mine.name, mine.size)
"""


def test_other_process_reads_and_writes(connector: SharedMemoryConnector) -> None:
    arr = np.arange(200_000, dtype=np.float64)
    key = connector.put(arr.tobytes())
    out = run_python(_CHILD_READ, NAMESPACE, key.name, str(key.size)).split("\n")
    assert float(out[0]) == arr.sum()
    name, size = out[1].split()
    got = connector.get(SharedMemoryKey(name, int(size)))
    assert got == b"from child " + key.name.encode()
    view = connector.get(key)
    assert view is not None
    assert np.array_equal(np.frombuffer(view, dtype=np.float64), arr)


_CHILD_STORE = """
import json, sys
from proxystore.store import Store
from proxystore.connectors.shm import SharedMemoryConnector
key = tuple(json.loads(sys.argv[2]))
with Store("child", SharedMemoryConnector(sys.argv[1], clear=False)) as store:
    from proxystore.connectors.shm import SharedMemoryKey
    arr = store.get(SharedMemoryKey(*key))
    owner = arr.base
    while getattr(owner, "base", None) is not None:
        owner = owner.base
    print(json.dumps({
        "sum": float(arr.sum()), "writeable": bool(arr.flags.writeable),
        "owner": type(getattr(owner, "obj", owner)).__name__,
    }))
    arr *= 0
"""


def test_store_get_is_zero_copy_and_writes_stay_private(
    connector: SharedMemoryConnector,
) -> None:
    arr = np.linspace(0, 1, 300_000)
    with Store("shm-zero-copy", connector, cache_size=0) as store:
        key = store.put(arr)
        assert isinstance(key, SharedMemoryKey)
        got = store.get(key)
        assert got.flags.writeable
        assert not got.flags.owndata
        raw = connector.get(key)
        assert isinstance(raw, memoryview)
        assert isinstance(raw.obj, mmap.mmap)
        got[:] = 7.0
        assert np.array_equal(store.get(key), arr)
        report = json.loads(run_python(_CHILD_STORE, NAMESPACE, json.dumps(list(key))))
        assert report == {"sum": float(arr.sum()), "writeable": True, "owner": "mmap"}
        assert np.array_equal(store.get(key), arr)


def test_travelled_proxy_resolves_onto_the_mapping(
    connector: SharedMemoryConnector,
) -> None:
    arr = np.arange(100_000, dtype=np.int64)
    with Store("shm-proxy", connector, cache_size=0, register=True) as store:
        proxy = pickle.loads(pickle.dumps(store.proxy(arr)))
        resolved = extract(proxy)
        owner: Any = resolved
        while getattr(owner, "base", None) is not None:
            owner = owner.base
        # The array's memory is the mapping (numpy may keep the view or its owner).
        if isinstance(owner, memoryview):
            owner = owner.obj
        assert isinstance(owner, mmap.mmap)
        assert np.array_equal(resolved, arr)


_CHILD_KILLED = """
import os, sys, time
from proxystore.connectors import shm
real = os.writev
def stall(fd, buffers):
    n = real(fd, [bytes(buffers[0])])  # the header only, then stop mid-put
    print("stalled", flush=True)
    time.sleep(60)
    return n
shm.os.writev = stall
shm.SharedMemoryConnector(sys.argv[1], clear=False).put(b"x" * (1 << 20))
"""


def test_writer_killed_mid_put_leaves_nothing_valid() -> None:
    kill_when_stalled(_CHILD_KILLED, NAMESPACE)
    left = _leftovers()
    assert len(left) == 1
    assert ".tmp-" in left[0]
    final = SharedMemoryKey(left[0].split(".tmp-")[0], 1 << 20)
    with SharedMemoryConnector(NAMESPACE) as reader:
        assert not reader.exists(final)
        assert reader.get(final) is None
    assert _leftovers() == []
