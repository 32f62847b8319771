"""Hypothesis laws over the shared-memory connector.

The store laws (tests/conformance/store_laws.py) and the connector model machine of
test_connectors_laws.py run over ``SharedMemoryConnector``; one more law checks that
numpy arrays of any size (below and above the size from which segments are mapped
instead of read) come back equal and writable, and that writing to them never changes
the stored object. After every test no segment of this module's namespace is left in
``/dev/shm``.

The same laws run in arena mode, plus a state machine driving put/get/evict and
zero-copy views from two processes on one small arena against a dict model. A last
law plants files at an arena's name (links, FIFOs, files open to others or of
another uid, headers with damaged words): the connector attaches exactly the
private files of its uid whose header is consistent, and neither crashes nor
hands out bytes of any other.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from proxystore.connectors import _arena
from proxystore.connectors.exceptions import CorruptPayloadError, ForeignFileError
from proxystore.connectors.shm import SharedMemoryConnector, SharedMemoryKey
from proxystore.store import Store
from tests.conformance.store_laws import StoreLaws
from tests.property.test_connectors_laws import ConnectorModelMachine

#: One namespace per test process (xdist worker), per-object and arena mode.
NAMESPACE = f"laws_{os.getpid()}_{secrets.token_hex(4)}"
ARENA_NAMESPACE = f"lawsa_{os.getpid()}_{secrets.token_hex(4)}"
ARENA_OPTIONS: dict[str, Any] = {
    "arena": True,
    "arena_size": 8 << 20,
    "arena_slots": 256,
}


def _arena_connector(**options: Any) -> SharedMemoryConnector:
    return SharedMemoryConnector(ARENA_NAMESPACE, **ARENA_OPTIONS, **options)


@pytest.fixture(autouse=True)
def _no_segment_left() -> Iterator[None]:
    yield
    left = SharedMemoryConnector(NAMESPACE, clear=False).segments()
    SharedMemoryConnector(NAMESPACE).close()
    assert left == [], f"segments left in /dev/shm: {left}"
    gc.collect()
    left = SharedMemoryConnector(ARENA_NAMESPACE, clear=False).segments()
    SharedMemoryConnector(ARENA_NAMESPACE).close()
    assert [n for n in left if not n.endswith("-arena")] == [], left
    assert SharedMemoryConnector(ARENA_NAMESPACE, clear=False).segments() == []


class TestSharedMemoryStoreLaws(StoreLaws):
    @pytest.fixture(scope="class")
    @classmethod
    def store_connector(cls) -> Iterator[SharedMemoryConnector]:
        with SharedMemoryConnector(NAMESPACE) as connector:
            yield connector


class SharedMemoryMachine(ConnectorModelMachine):
    def __init__(self) -> None:
        super().__init__()
        self.connector.close()  # the parent's default (local) connector
        self.connector = SharedMemoryConnector(NAMESPACE)


TestSharedMemoryMachine = settings(stateful_step_count=25)(SharedMemoryMachine).TestCase


class TestArenaStoreLaws(StoreLaws):
    @pytest.fixture(scope="class")
    @classmethod
    def store_connector(cls) -> Iterator[SharedMemoryConnector]:
        with _arena_connector() as connector:
            yield connector


class ArenaMachine(ConnectorModelMachine):
    def __init__(self) -> None:
        super().__init__()
        self.connector.close()  # the parent's default (local) connector
        self.connector = _arena_connector()


TestArenaMachine = settings(stateful_step_count=25)(ArenaMachine).TestCase

_DTYPES = st.sampled_from([np.float64, np.int32, np.uint8, np.complex128])


@settings(max_examples=20)
@given(
    length=st.one_of(st.integers(0, 100), st.integers(30_000, 200_000)),
    dtype=_DTYPES,
)
def test_arrays_round_trip_writable_and_private(length: int, dtype: type) -> None:
    original: np.ndarray[Any, Any] = (np.arange(length) % 251).astype(dtype)
    with Store(
        f"shm-arrays-{secrets.token_hex(4)}",
        SharedMemoryConnector(NAMESPACE),
        cache_size=0,
    ) as store:
        key = store.put(original)
        first = store.get(key)
        assert first.dtype == original.dtype
        assert np.array_equal(first, original)
        assert first.flags.writeable
        first += 1
        assert np.array_equal(store.get(key), original)
        store.evict(key)
        assert store.get(key) is None


@settings(max_examples=20)
@given(length=st.integers(30_000, 200_000), dtype=_DTYPES)
def test_arena_arrays_are_read_only_unless_asked(length: int, dtype: type) -> None:
    original: np.ndarray[Any, Any] = (np.arange(length) % 251).astype(dtype)
    with Store(
        f"shm-arena-arrays-{secrets.token_hex(4)}", _arena_connector(), cache_size=0
    ) as store:
        key = store.put(original)
        shared = store.get(key)
        assert np.array_equal(shared, original)
        # Small objects are copied out (writable); large ones are shared views.
        assert shared.flags.writeable == (original.nbytes < 256 * 1024)
        private = Store("private", _arena_connector(writable=True), cache_size=0).get(
            key
        )
        assert private.flags.writeable
        private += 1
        assert np.array_equal(store.get(key), original)
        store.evict(key)
        assert store.get(key) is None
        assert np.array_equal(shared, original)  # a view outlives the eviction


# ------------------------------------------------------- two processes, one arena

#: The other process: runs the operations it reads (one JSON list per line) on
#: its own connector of the arena, keeps the views it is asked to keep, and answers
#: with one JSON value per line. Payloads travel as (size, seed).
_PEER = r"""
import hashlib, json, sys
from proxystore.connectors import _arena
from proxystore.connectors.exceptions import CorruptPayloadError, ForeignFileError
from proxystore.connectors.shm import SharedMemoryConnector, SharedMemoryKey
options = json.loads(sys.argv[2])
c = SharedMemoryConnector(sys.argv[1], clear=False, **options)
views = {}
def payload(size, seed):
    return (seed.to_bytes(4, "little") * (size // 4 + 1))[:size]
def digest(data):
    return None if data is None else hashlib.sha1(data).hexdigest()
for line in sys.stdin:
    op, *args = json.loads(line)
    if op == "put":
        out = list(c.put(payload(*args)))
    elif op == "get":
        out = digest(c.get(SharedMemoryKey(*args)))
    elif op == "exists":
        out = c.exists(SharedMemoryKey(*args))
    elif op == "evict":
        out = c.evict(SharedMemoryKey(*args))
    elif op == "view":
        view = c.get(SharedMemoryKey(*args[1:]))
        views[args[0]] = view
        out = digest(view)
    elif op == "drop":
        view = views.pop(args[0])
        if isinstance(view, memoryview):
            view.release()
        out = None
    elif op == "views":
        out = {k: digest(v) for k, v in views.items()}
    print(json.dumps(out), flush=True)
"""

_SIZES = st.sampled_from([0, 7, 1000, 70_000, 300_000, 600_000, 1_200_000])


def _payload_of(size: int, seed: int) -> bytes:
    return (seed.to_bytes(4, "little") * (size // 4 + 1))[:size]


def _digest(data: Any) -> str | None:
    return None if data is None else hashlib.sha1(data).hexdigest()


class TwoProcessArenaMachine(RuleBasedStateMachine):
    """put/get/evict/views from two processes on one small arena vs a dict model.

    The arena (2 MiB, 8 slots) is small, so slots and space are reused often; the
    model records each live key's payload, and every view ever taken must keep its
    bytes until it is dropped, whatever was evicted or stored meanwhile.
    """

    keys = Bundle("arena_keys")

    def __init__(self) -> None:
        super().__init__()
        self.options: dict[str, Any] = {
            "arena": True,
            "arena_size": 2 << 20,
            "arena_slots": 8,
        }
        self.local = SharedMemoryConnector(ARENA_NAMESPACE, clear=False, **self.options)
        # The peer takes the pure-Python read path and this process the C one
        # (when built): both follow one protocol on one arena.
        self.peer = subprocess.Popen(
            [sys.executable, "-c", _PEER, ARENA_NAMESPACE, json.dumps(self.options)],
            env={**os.environ, "PROXYSTORE_ARENA_PURE_PYTHON": "1"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.model: dict[SharedMemoryKey, str] = {}
        self.views: dict[
            str, tuple[int, Any, str]
        ] = {}  # id -> (process, view, digest)
        self.counter = 0

    def _ask(self, *request: Any) -> Any:
        assert self.peer.stdin is not None
        assert self.peer.stdout is not None
        self.peer.stdin.write(json.dumps(request) + "\n")
        self.peer.stdin.flush()
        return json.loads(self.peer.stdout.readline())

    def teardown(self) -> None:
        for view_id, (process, view, _) in list(self.views.items()):
            if process == 0:
                if isinstance(view, memoryview):
                    view.release()
            else:
                self._ask("drop", view_id)
        self.views.clear()
        for key in self.model:
            self.local.evict(key)
        assert self.peer.stdin is not None
        assert self.peer.stdout is not None
        self.peer.stdin.close()
        self.peer.wait(timeout=30)
        self.peer.stdout.close()

    @rule(target=keys, process=st.integers(0, 1), size=_SIZES, seed=st.integers(0, 999))
    def put(self, process: int, size: int, seed: int) -> SharedMemoryKey:
        if process == 0:
            key = self.local.put(_payload_of(size, seed))
        else:
            key = SharedMemoryKey(*self._ask("put", size, seed))
        assert key not in self.model
        self.model[key] = hashlib.sha1(_payload_of(size, seed)).hexdigest()
        return key

    @rule(process=st.integers(0, 1), key=keys)
    def get(self, process: int, key: SharedMemoryKey) -> None:
        if process == 0:
            got = _digest(self.local.get(key))
        else:
            got = self._ask("get", *key)
        assert got == self.model.get(key)

    @rule(process=st.integers(0, 1), key=keys)
    def exists(self, process: int, key: SharedMemoryKey) -> None:
        found = self.local.exists(key) if process == 0 else self._ask("exists", *key)
        assert found == (key in self.model)

    @rule(process=st.integers(0, 1), key=keys)
    def evict(self, process: int, key: SharedMemoryKey) -> None:
        if process == 0:
            self.local.evict(key)
        else:
            self._ask("evict", *key)
        self.model.pop(key, None)

    @precondition(lambda self: len(self.views) < 6)
    @rule(process=st.integers(0, 1), key=keys)
    def view(self, process: int, key: SharedMemoryKey) -> None:
        if key not in self.model:
            return
        self.counter += 1
        view_id = str(self.counter)
        if process == 0:
            view = self.local.get(key)
            digest = _digest(view)
        else:
            view = None
            digest = self._ask("view", view_id, *key)
        assert digest == self.model[key]
        self.views[view_id] = (process, view, digest)

    @precondition(lambda self: bool(self.views))
    @rule(data=st.data())
    def drop(self, data: st.DataObject) -> None:
        view_id = data.draw(st.sampled_from(sorted(self.views)))
        process, view, _ = self.views.pop(view_id)
        if process == 0:
            if isinstance(view, memoryview):
                view.release()
        else:
            self._ask("drop", view_id)

    @invariant()
    def views_keep_their_bytes(self) -> None:
        remote = self._ask("views")
        for view_id, (process, view, digest) in self.views.items():
            seen = _digest(view) if process == 0 else remote[view_id]
            assert seen == digest


TestTwoProcessArena = settings(stateful_step_count=30, deadline=None, max_examples=15)(
    TwoProcessArenaMachine
).TestCase


# ------------------------------------------------------- files planted at the arena

#: Its own namespace: each example plants a file at this arena's name.
PLANT_NAMESPACE = f"lawsp_{os.getpid()}_{secrets.token_hex(4)}"
_PLANT_SIZE = 4 << 20
_PLANT_SLOTS = 16
_BIG_LAW = b"law!" * 100_000  # read through the view path (C when built)
_HEADER_VALUES = st.one_of(
    st.integers(-2, 2),
    st.sampled_from([8, 4096, 8192, _PLANT_SLOTS + 1, _PLANT_SIZE, 1 << 40]),
    st.integers(-(1 << 63), (1 << 63) - 1),
)


@settings(max_examples=60)
@given(
    kind=st.sampled_from(["file", "symlink", "fifo"]),
    mode=st.integers(0, 0o077).map(lambda bits: 0o600 | bits),
    other_owner=st.booleans() if os.geteuid() == 0 else st.just(False),
    edits=st.lists(st.tuples(st.integers(0, 6), _HEADER_VALUES), max_size=3),
)
def test_arena_attaches_only_to_private_consistent_files(
    kind: str, mode: int, other_owner: bool, edits: list[tuple[int, int]]
) -> None:
    connector = SharedMemoryConnector(
        PLANT_NAMESPACE,
        arena=True,
        arena_size=_PLANT_SIZE,
        arena_slots=_PLANT_SLOTS,
    )
    path = connector._arena_path
    planted = [path]
    try:
        if kind == "fifo":
            os.mkfifo(path, mode)
        else:
            real = path if kind == "file" else path + ".elsewhere"
            planted.append(real)
            fd = _arena._create(real, _PLANT_SIZE, _PLANT_SLOTS)
            assert fd is not None
            try:
                for word, value in edits:
                    os.pwrite(fd, value.to_bytes(8, "little", signed=True), 8 * word)
            finally:
                os.close(fd)
            if kind == "symlink":
                os.symlink(real, path)
        if kind != "symlink":
            os.chmod(path, mode)
        if other_owner:
            os.chown(path, 65534, -1, follow_symlinks=False)
        foreign = kind != "file" or other_owner or bool(mode & 0o077)
        refused: ForeignFileError | CorruptPayloadError | None = None
        try:
            small, big = connector.put(b"law"), connector.put(_BIG_LAW)
        except (ForeignFileError, CorruptPayloadError) as exc:
            refused = exc
        if foreign:
            assert isinstance(refused, ForeignFileError), refused
            assert refused.path == path
        elif refused is not None:
            assert isinstance(refused, CorruptPayloadError), refused
            assert edits, refused  # a header as the library writes it is never refused
        else:
            assert connector.get(small) == b"law"
            view = connector.get(big)
            assert view == _BIG_LAW
            if isinstance(view, memoryview):
                view.release()
            del view
            connector.evict(small)
            connector.evict(big)
    finally:
        gc.collect()
        _arena.forget_arena(path)
        names = {os.path.join("/dev/shm", n) for n in connector.segments()}
        for name in names.union(planted):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
