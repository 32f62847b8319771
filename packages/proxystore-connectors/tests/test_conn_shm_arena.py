"""Unit tests of the arena mode of proxystore.connectors.shm."""

from __future__ import annotations

import ctypes
import gc
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest

from proxystore.connectors import _arena
from proxystore.connectors.exceptions import CorruptPayloadError
from proxystore.connectors.shm import SharedMemoryConnector, SharedMemoryKey
from proxystore.store import Store
from tests.conformance.connector_suite import ConnectorSuite
from tests.conformance.subprocesses import kill_when_stalled, run_python

#: One namespace per test process (xdist worker), so parallel runs never meet.
UID = os.geteuid()
NAMESPACE = f"arena_{os.getpid()}_{secrets.token_hex(4)}"
ARENA = 4 << 20  # small, so tests fill it and reuse slots quickly
SLOTS = 64
_BIG = 300_000  # above the size from which get() returns a view


def _make(**options: object) -> SharedMemoryConnector:
    return SharedMemoryConnector(
        NAMESPACE,
        arena=True,
        arena_size=ARENA,
        arena_slots=SLOTS,
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture(autouse=True)
def _no_segment_left() -> Iterator[None]:
    yield
    gc.collect()
    left = SharedMemoryConnector(NAMESPACE, clear=False).segments()
    SharedMemoryConnector(NAMESPACE).close()  # do not let one failure cascade
    # The arena itself stays until a clearing close: only objects may not leak.
    assert [n for n in left if not n.endswith("-arena")] == [], left
    assert SharedMemoryConnector(NAMESPACE, clear=False).segments() == []


def _c_path_missing() -> None:
    message = "the C read path (_arenac) is not built here"
    if os.environ.get("CI") == "true":  # CI builds it: its absence is a failure
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(params=["c", "python"])
def connector(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SharedMemoryConnector]:
    # Each test runs on the C read path (when built) and on the pure-Python one.
    if request.param == "python":
        monkeypatch.setattr(_arena, "_hold_view", None)
    elif _arena._hold_view is None:
        _c_path_missing()
    with _make() as connector:
        yield connector


class TestArenaConformance(ConnectorSuite):
    @pytest.fixture
    def connector(self) -> Iterator[SharedMemoryConnector]:
        with _make() as connector:
            yield connector


def _payload(size: int, seed: int = 1) -> bytes:
    return bytes((seed + i) % 251 for i in range(256)) * (size // 256) + bytes(
        size % 256
    )


# ------------------------------------------------------------------ basics


def test_objects_live_in_one_arena(connector: SharedMemoryConnector) -> None:
    keys = connector.put_batch([b"a", b"bb", _payload(_BIG)])
    assert all(k.name.startswith(f"psshm-{UID}-{NAMESPACE}-~") for k in keys)
    assert connector.segments() == [f"psshm-{UID}-{NAMESPACE}-arena"]
    assert os.path.getsize(f"/dev/shm/psshm-{UID}-{NAMESPACE}-arena") == ARENA
    assert connector.config() == {
        "namespace": NAMESPACE,
        "clear": True,
        "arena": True,
        "arena_size": ARENA,
        "arena_slots": SLOTS,
        "writable": False,
    }
    assert [connector.get(k) for k in keys[:2]] == [b"a", b"bb"]
    for key in keys:
        connector.evict(key)
    assert not any(connector.exists(k) for k in keys)


def test_large_gets_are_read_only_zero_copy_views(
    connector: SharedMemoryConnector,
) -> None:
    payload = _payload(_BIG)
    key = connector.put(payload)
    view = connector.get(key)
    assert isinstance(view, memoryview)
    assert view.readonly
    assert view == payload
    with pytest.raises(TypeError):
        view[0] = 1
    copy = connector.get(key, writable=True)
    assert isinstance(copy, memoryview)
    assert not copy.readonly
    copy[0] = 255
    assert connector.get(key) == payload
    with _make(writable=True) as writer:
        private = writer.get(key)
        assert isinstance(private, memoryview)
        assert not private.readonly
    connector.evict(key)


def test_store_arrays_are_read_only_and_share_the_arena(
    connector: SharedMemoryConnector,
) -> None:
    arr = np.linspace(0, 1, 100_000)
    with Store("arena-arrays", connector, cache_size=0) as store:
        key = store.put(arr)
        assert isinstance(key, SharedMemoryKey)
        assert key.name.startswith(f"psshm-{UID}-{NAMESPACE}-~")
        got = store.get(key)
        assert np.array_equal(got, arr)
        assert not got.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            got[0] = 1.0
        address = got.__array_interface__["data"][0]
        arena = connector._arena()
        assert arena is not None
        assert arena.address <= address < arena.address + arena.size
        writable = Store("arena-writable", _make(writable=True), cache_size=0).get(key)
        assert writable.flags.writeable
        writable[:] = 0
        assert np.array_equal(store.get(key), arr)
        store.evict(key)


def test_evicting_a_viewed_object_defers_the_free(
    connector: SharedMemoryConnector,
) -> None:
    payload = _payload(_BIG, seed=7)
    key = connector.put(payload)
    view = connector.get(key)
    assert isinstance(view, memoryview)
    connector.evict(key)
    assert not connector.exists(key)
    assert connector.get(key) is None
    # Fill the arena: the viewed bytes must never be handed out again.
    fillers = []
    while True:
        filler = connector.put(_payload(_BIG, seed=9))
        fillers.append(filler)
        if not filler.name.startswith(f"psshm-{UID}-{NAMESPACE}-~"):
            break  # the arena is full: further objects get segments
    assert view == payload
    del view
    gc.collect()
    for filler in fillers:
        connector.evict(filler)
    again = connector.put(payload)
    assert again.name.startswith(f"psshm-{UID}-{NAMESPACE}-~")
    connector.evict(again)


def test_stale_key_never_sees_a_later_object(connector: SharedMemoryConnector) -> None:
    first = connector.put(b"first")
    connector.evict(first)
    second = connector.put(b"second")
    slot_first = first.name.rsplit("~", 1)[1].split(".")[0]
    slot_second = second.name.rsplit("~", 1)[1].split(".")[0]
    assert slot_first == slot_second  # the slot was reused...
    assert connector.get(first) is None  # ...under a new generation
    assert connector.get(second) == b"second"
    connector.evict(second)


def test_larger_than_arena_falls_back_to_a_segment(
    connector: SharedMemoryConnector,
) -> None:
    huge = _payload(ARENA + 1000)
    key = connector.put(huge)
    assert "~" not in key.name
    assert connector.get(key) == huge
    connector.evict(key)
    assert not connector.exists(key)


def test_set_on_an_arena_key_replaces_it(connector: SharedMemoryConnector) -> None:
    key = connector.put(b"old")
    connector.set(key, b"new value")
    assert connector.get(key) == b"new value"
    assert connector.exists(key)
    connector.evict(key)
    assert not connector.exists(key)
    assert connector.get(key) is None


def test_too_small_arena_options_are_refused() -> None:
    with pytest.raises(ValueError, match="arena_size"):
        SharedMemoryConnector(NAMESPACE, arena=True, arena_size=1000)
    with pytest.raises(ValueError, match="arena_slots"):
        SharedMemoryConnector(NAMESPACE, arena=True, arena_slots=0)


def test_invalid_arena_key_names_are_refused(connector: SharedMemoryConnector) -> None:
    with pytest.raises(ValueError, match="Invalid shared-memory segment name"):
        connector.evict(SharedMemoryKey(f"psshm-{UID}-{NAMESPACE}-arena", 1))
    odd = SharedMemoryKey(f"psshm-{UID}-{NAMESPACE}-~x.1", 1)
    assert connector.get(odd) is None
    assert not connector.exists(odd)
    assert (
        connector.get(SharedMemoryKey(f"psshm-{UID}-{NAMESPACE}-~{SLOTS + 5}.1", 1))
        is None
    )


def test_close_clear_removes_the_arena_and_views_survive() -> None:
    connector = _make()
    payload = _payload(_BIG)
    view = connector.get(connector.put(payload))
    connector.close()
    assert connector.segments() == []
    assert view == payload
    # The connector maps a new, empty arena on next use.
    key = connector.put(b"again")
    assert connector.get(key) == b"again"
    connector.close()


# ------------------------------------------------------------------ processes

_CHILD = """
import sys, numpy as np
from proxystore.connectors.exceptions import CorruptPayloadError
from proxystore.connectors.shm import SharedMemoryConnector, SharedMemoryKey
c = SharedMemoryConnector(sys.argv[1], arena=True, arena_size=1, clear=False)
view = c.get(SharedMemoryKey(sys.argv[2], int(sys.argv[3])))
print(float(np.frombuffer(view, dtype=np.float64).sum()))
mine = c.put(np.full(1000, 2.0).tobytes())
print(mine.name, mine.size)
"""


def test_other_process_reads_and_writes(connector: SharedMemoryConnector) -> None:
    arr = np.arange(50_000, dtype=np.float64)
    key = connector.put(arr.tobytes())
    out = run_python(
        _CHILD.replace("arena_size=1", f"arena_size={ARENA}"),
        NAMESPACE,
        key.name,
        str(key.size),
    ).split("\n")
    assert float(out[0]) == arr.sum()
    name, size = out[1].split()
    got = connector.get(SharedMemoryKey(name, int(size)))
    assert got is not None
    assert np.frombuffer(got, np.float64).sum() == 2000.0
    connector.evict(key)
    connector.evict(SharedMemoryKey(name, int(size)))


_STALL = """
import sys, time
from proxystore.connectors import _arena
from proxystore.connectors.shm import SharedMemoryConnector
where = sys.argv[2]
c = SharedMemoryConnector(sys.argv[1], arena=True, arena_size=__ARENA__,
                          arena_slots=__SLOTS__, clear=False)
def stall(*args, **kwargs):
    print("stalled", flush=True)
    time.sleep(60)
if where == "put-locked":  # inside the allocator, lock held
    _arena.Arena._find = stall
    c.put(b"x" * 1000)
elif where == "put-writing":  # slot allocated, payload half copied
    _arena.Arena.write = stall
    c.put(b"x" * 1000)
elif where == "evict-locked":  # inside evict, lock held
    key = c.put(b"y" * 1000)
    _arena.Arena._free = stall
    c.evict(key)
elif where == "viewing":  # a holder that dies with its view
    from proxystore.connectors.shm import SharedMemoryKey
    view = c.get(SharedMemoryKey(sys.argv[3], int(sys.argv[4])))
    print("stalled", flush=True)
    time.sleep(60)
"""


def _killed_while(where: str, *args: str) -> None:
    code = _STALL.replace("__ARENA__", str(ARENA)).replace("__SLOTS__", str(SLOTS))
    kill_when_stalled(code, NAMESPACE, where, *args)


def _fill_and_free(connector: SharedMemoryConnector) -> int:
    """Fill the arena with one-slot objects, count them, evict them all."""
    keys = []
    while True:
        key = connector.put(_payload(_BIG))
        if "~" not in key.name:
            connector.evict(key)
            break
        keys.append(key)
    for key in keys:
        connector.evict(key)
    return len(keys)


@pytest.mark.parametrize("where", ["put-locked", "put-writing", "evict-locked"])
def test_sigkill_inside_the_arena_never_blocks_or_leaks(
    connector: SharedMemoryConnector, where: str
) -> None:
    capacity = _fill_and_free(connector)
    _killed_while(where)
    # The kernel dropped the dead child's lock: this would hang otherwise.
    key = connector.put(b"after")
    assert connector.get(key) == b"after"
    connector.evict(key)
    # Whatever the child had reserved is reclaimed by the sweep.
    assert _fill_and_free(connector) == capacity


def test_dead_viewer_does_not_pin_its_slot(connector: SharedMemoryConnector) -> None:
    capacity = _fill_and_free(connector)
    key = connector.put(_payload(_BIG))
    _killed_while("viewing", key.name, str(key.size))
    connector.evict(key)  # held by the dead child: only marked evicted
    assert not connector.exists(key)
    assert _fill_and_free(connector) == capacity


def test_arena_full_of_holders_hands_out_copies(
    connector: SharedMemoryConnector,
) -> None:
    key = connector.put(_payload(_BIG))
    arena = connector._arena()
    assert arena is not None
    slot, _ = key.name.rsplit("~", 1)[1].split(".")
    first = arena.table + int(slot) * _arena.ENTRY_WORDS + _arena._E_HOLD
    holders = range(first, first + _arena.HOLDERS)
    for h in holders:  # every holder word taken by another live process (init)
        arena.words[h] = 1
    got = connector.get(key)
    assert isinstance(got, memoryview)
    assert not got.readonly
    assert got == _payload(_BIG)
    for h in holders:
        arena.words[h] = 0
    connector.evict(key)
    assert not connector.exists(key)


def test_fork_child_gets_its_own_lock(connector: SharedMemoryConnector) -> None:
    key = connector.put(b"before fork")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 0
        try:
            child = _make(clear=False)
            mine = child.put(b"child")
            code = 0 if child.get(key) == b"before fork" else 3
            child.evict(mine)
        except BaseException:
            code = 4
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert connector.get(key) == b"before fork"
    connector.evict(key)


def test_foreign_file_at_the_arena_path_is_refused() -> None:
    path = f"/dev/shm/psshm-{UID}-{NAMESPACE}-arena"
    # Private and ours (so not a squat): only the missing header is wrong.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b"not an arena")
    os.close(fd)
    try:
        with pytest.raises(
            CorruptPayloadError, match="not a proxystore shared-memory arena"
        ):
            _make().put(b"x")
    finally:
        os.unlink(path)


def test_c_held_view_is_read_only_and_releases_its_hold() -> None:
    if _arena._HeldView is None:
        _c_path_missing()
    released: list[tuple[int, int]] = []

    class _Arena:
        def release(self, slot: int, gen: int) -> None:
            released.append((slot, gen))

    memory = bytearray(b"abcdef")
    address = ctypes.addressof((ctypes.c_char * len(memory)).from_buffer(memory))
    held = _arena._HeldView(address, len(memory), _Arena(), 3, 9)
    assert held.proxystore_zero_copy is True
    view = memoryview(held)
    assert view.readonly
    assert view.tobytes() == b"abcdef"
    with pytest.raises((BufferError, TypeError)):
        ctypes.c_char.from_buffer(held)  # asks for a writable buffer
    del held
    assert released == []  # the view still exports it
    view.release()
    gc.collect()
    assert released == [(3, 9)]


_VIEW_OUTLIVES_CLOSE = """
import sys
from proxystore.connectors.shm import SharedMemoryConnector
c = SharedMemoryConnector(sys.argv[1], arena=True, arena_size=4 << 20)
key = c.put(bytes(1 << 20))
view = c.get(key)  # kept alive until the interpreter exits
c.close(clear=True)
print(len(view))
"""


@pytest.mark.parametrize("pure", ["0", "1"])
def test_view_alive_at_exit_releases_quietly(pure: str) -> None:
    namespace = f"exit{secrets.token_hex(4)}"
    env = {**os.environ, "PROXYSTORE_ARENA_PURE_PYTHON": pure}
    done = subprocess.run(
        [sys.executable, "-c", _VIEW_OUTLIVES_CLOSE, namespace],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(1 << 20)
    assert done.stderr == ""  # no "Exception ignored" from a late release
    assert SharedMemoryConnector(namespace, clear=False).segments() == []
