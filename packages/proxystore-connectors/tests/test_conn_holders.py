"""Holders of stored objects: the table, the DIM server ops, shared-memory records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from proxystore.connectors.dim.models import Op, Request, Status
from proxystore.connectors.dim.server import DIMStorage
from proxystore.connectors.file import FileConnector
from proxystore.connectors.holders import Hold, HolderTable, counting
from proxystore.connectors.local import LocalConnector
from proxystore.connectors.shm import SharedMemoryConnector


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_table_keeps_an_object_while_a_hold_is_live() -> None:
    clock = Clock()
    table = HolderTable(clock)
    table.hold("o", "a", 2.0, None)
    table.hold("o", "b", 2.0, None)
    assert not table.release("o", "a")
    assert set(table.holders("o")) == {"b"}
    assert table.release("o", "b")
    assert "o" not in table


def test_table_expires_lapsed_holds() -> None:
    clock = Clock()
    table = HolderTable(clock)
    table.hold("o", "a", 2.0, None)
    clock.now += 1.9
    assert table.expired() == []
    clock.now += 0.2
    assert table.expired() == ["o"]


def test_transfer_is_consumed_by_its_conversion() -> None:
    clock = Clock()
    table = HolderTable(clock)
    table.hold("o", "", 60.0, "tok")
    table.hold("o", "w", 2.0, "tok")
    assert set(table.holders("o")) == {"w", "c:tok"}
    # The transfer no longer keeps it: only its trace, for one interval.
    assert not table.release("o", "w")
    clock.now += 1.01
    assert table.expired() == ["o"]


def test_conversion_before_its_transfer_leaves_a_tombstone() -> None:
    clock = Clock()
    table = HolderTable(clock)
    table.hold("o", "w", 2.0, "tok")  # arrived first
    table.hold("o", "", 60.0, "tok")  # late transfer: dropped
    assert set(table.holders("o")) == {"w", "c:tok"}
    clock.now += 1.01  # the conversion's trace lapses
    assert table.release("o", "w")


def test_tombstone_keeps_the_object_until_its_transfer_arrives() -> None:
    # The producer's own hold and its transfer are still in its queue when the
    # receiver converts the copy and drops it again: the object must stay.
    clock = Clock()
    table = HolderTable(clock)
    table.hold("o", "w", 2.0, "tok", 60.0)
    assert not table.release("o", "w")
    table.hold("o", "p", 2.0, None)  # the producer's hold lands
    table.hold("o", "", 60.0, "tok")  # then its transfer: already converted
    clock.now += 1.01  # the conversion's trace lapses
    assert set(table.holders("o")) == {"p"}
    assert table.release("o", "p")
    # A tombstone whose transfer never comes (the sender died) lapses.
    table.hold("q", "w", 2.0, "lost", 5.0)
    assert not table.release("q", "w")
    clock.now += 5.1
    assert table.expired() == ["q"]


def test_a_short_tombstone_is_swept_on_time() -> None:
    # A transfer lease shorter than the holder's lease: the sweep must not wait
    # for the (longer) lease of the records it saw before.
    clock = Clock()
    table = HolderTable(clock)
    table.hold("o", "w", 0.8, "tok", 0.5)  # a trace of 0.4 s, a tombstone of 0.5
    assert not table.release("o", "w")
    clock.now += 0.6
    assert table.expired() == ["o"]


def test_copies_of_one_pickle_are_each_covered() -> None:
    # The same pickled bytes unpickled by two workers carry one token. The
    # first conversion consumes the transfer; the producer and that worker then
    # release before the second worker's conversion lands: the object must still
    # be there for it (it used to be evicted by the first worker's release).
    clock = Clock()
    table = HolderTable(clock)
    table.hold("o", "p", 2.0, None)
    table.hold("o", "", 60.0, "tok")
    table.hold("o", "w1", 2.0, "tok", 60.0)
    assert not table.release("o", "p")
    clock.now += 0.5
    assert not table.release("o", "w1")
    assert table.expired() == []
    table.hold("o", "w2", 2.0, "tok", 60.0)  # the second copy converts
    # It found the transfer converted: no tombstone keeps the object for 60 s.
    assert set(table.holders("o")) == {"w2", "c:tok"}
    clock.now += 1.01
    assert table.release("o", "w2")


def test_copies_of_one_pickle_converted_before_the_transfer() -> None:
    clock = Clock()
    table = HolderTable(clock)
    table.hold("o", "w1", 2.0, "tok", 60.0)
    table.hold("o", "w2", 2.0, "tok", 60.0)
    table.hold("o", "p", 2.0, None)
    table.hold("o", "", 60.0, "tok")  # consumes the one tombstone
    clock.now += 1.01
    assert set(table.holders("o")) == {"w1", "w2", "p"}
    assert not table.release("o", "p")
    assert not table.release("o", "w1")
    assert table.release("o", "w2")


def test_dim_storage_covers_copies_of_one_pickle() -> None:
    storage = DIMStorage()
    storage.put("o", [b"data"])

    def hold(*hold: object) -> list[bool]:
        body = json.dumps([["o", *hold]]).encode()
        response = storage.handle(Request(Op.HOLD, "", (body,)))
        return list(json.loads(b"".join(response.payload)))

    def release(holder: str) -> bytes:
        response = storage.handle(Request(Op.RELEASE, "o", (holder.encode(),)))
        return b"".join(response.payload)

    assert hold("p", 30.0, None) == [True]
    assert hold("", 60.0, "tok") == [True]
    assert hold("w1", 30.0, "tok", 60.0) == [True]
    assert release("p") == b"0"
    assert release("w1") == b"0"
    assert storage.sweep() == 0
    assert hold("w2", 30.0, "tok", 60.0) == [True]
    assert storage.get("o") == [b"data"]


def test_release_without_any_recorded_hold_evicts() -> None:
    # The releasing process's own creation hold was still queued behind it.
    assert HolderTable().release("never-held", "a")


def test_bad_holds_are_refused() -> None:
    table = HolderTable()
    with pytest.raises(ValueError, match="holder or a transfer token"):
        table.hold("o", "", 1.0, None)
    with pytest.raises(ValueError, match="positive"):
        table.hold("o", "a", 0.0, None)


def test_dim_storage_answers_hold_and_release() -> None:
    storage = DIMStorage()
    storage.put("o", [b"data"])
    body = json.dumps([["o", "a", 30.0, None], ["missing", "a", 30.0, None]])
    response = storage.handle(Request(Op.HOLD, "", (body.encode(),)))
    assert response.status is Status.OK
    assert json.loads(b"".join(response.payload)) == [True, False]
    response = storage.handle(Request(Op.RELEASE, "o", (b"a",)))
    assert b"".join(response.payload) == b"1"
    assert not storage.exists("o")
    malformed = storage.handle(Request(Op.HOLD, "", (b"{",)))
    assert malformed.status is Status.ERROR


def test_counting_finds_companions_and_refuses_others(tmp_path: object) -> None:
    local = LocalConnector()
    assert counting(local) is local
    with FileConnector(str(tmp_path)) as file:
        assert counting(file) is None


@pytest.fixture
def shm() -> Iterator[SharedMemoryConnector]:
    namespace = f"holders{os.getpid()}"
    connector = SharedMemoryConnector(namespace, arena=True, arena_size=1 << 20)
    try:
        yield connector
    finally:
        connector.close(clear=True)  # removes the holder records too


def _dead_pid() -> str:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_shm_hold_release_and_dead_holders(shm: SharedMemoryConnector) -> None:
    holders = counting(shm)
    assert holders is not None
    key = shm.put(b"payload")
    me = f"{os.getpid()}-abc"
    dead_pid = _dead_pid()
    assert holders.hold([Hold(key, me, 30.0), Hold(key, f"{dead_pid}-def", 30.0)]) == [
        True,
        True,
    ]
    assert not holders.release(key, "not-a-holder")
    assert shm.exists(key)
    # The other holder's process is gone: releasing ours evicts at once.
    assert holders.release(key, me)
    assert not shm.exists(key)
    assert holders.hold([Hold(key, me, 30.0)]) == [False]


def test_shm_killed_unreaped_holder_is_dead(shm: SharedMemoryConnector) -> None:
    # A SIGKILLed child stays a zombie until reaped; kill(pid, 0) still works.
    holders = counting(shm)
    assert holders is not None
    key = shm.put(b"payload")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        holders.hold([Hold(key, f"{child.pid}-w", 30.0)])
        child.kill()
        time.sleep(0.2)  # dead, not reaped yet
        assert holders.sweep_holds() == 1  # type: ignore[attr-defined]
        assert not shm.exists(key)
    finally:
        child.kill()
        child.wait()


def test_shm_sweep_evicts_objects_of_dead_holders(shm: SharedMemoryConnector) -> None:
    holders = counting(shm)
    assert holders is not None
    late, gone = shm.put(b"late"), shm.put(b"gone")
    holders.hold(
        [
            # Our own heartbeat is late, but we are alive: kept.
            Hold(late, f"{os.getpid()}-a", 0.05),
            # Deadline not even due, but the holder is dead: evicted.
            Hold(gone, f"{_dead_pid()}-b", 30.0),
        ]
    )
    time.sleep(0.3)
    assert holders.sweep_holds() == 1  # type: ignore[attr-defined]
    assert shm.exists(late)
    assert not shm.exists(gone)


def test_shm_copies_of_one_pickle_are_each_covered(
    shm: SharedMemoryConnector,
) -> None:
    holders = counting(shm)
    assert holders is not None
    key = shm.put(b"payload")
    me = os.getpid()
    assert holders.hold([Hold(key, f"{me}-p", 30.0), Hold(key, "", 60.0, "tok")]) == [
        True,
        True,
    ]
    assert holders.hold([Hold(key, f"{me}-w1", 30.0, "tok", 60.0)]) == [True]
    assert not holders.release(key, f"{me}-p")
    assert not holders.release(key, f"{me}-w1")
    assert holders.hold([Hold(key, f"{me}-w2", 30.0, "tok", 60.0)]) == [True]
    assert shm.exists(key)
    # The second copy found the transfer converted: no tombstone was left.
    assert not any(n.endswith("@x:tok") for n in os.listdir(holders.directory))  # type: ignore[attr-defined]
