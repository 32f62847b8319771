"""Memory budget and tiered spill of the shm arena, on real processes.

* Producers put 3x the budget while workers resolve proxies made before, during
  and after the spills: every object resolves bit-identical, the namespace's
  ``/dev/shm`` use (sampled all along) never exceeds the budget plus one object,
  and ``close(clear=True)`` leaves no segment and no spill file.
* An object a worker holds zero-copy is never moved under it.
* A process SIGKILLed at each crash point of a spill or restore (mid-copy down,
  right after the commit, with a restored copy written but not committed, right
  after a restore's commit) loses no object whose put had returned; the namespace
  keeps working and leaves nothing behind after clearing.
* In a private mount namespace with Docker's default 64 MiB ``/dev/shm``, a
  default connector (per-object segments, and arena mode) stores 3x that and
  workers resolve it all (the code before the spill raised
  ``SharedMemoryFullError``).
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from proxystore.connectors.shm import SHM_DIR, SharedMemoryConnector
from proxystore.proxy import extract
from proxystore.store import Store

BUDGET = 4 * 2**20
MAX_OBJECT = 400 * 1024
CTX = multiprocessing.get_context("spawn")


def _payload(seed: int) -> bytes:
    """Deterministic bytes of 256-400 KiB (zero-copy sized) for ``seed``."""
    size = 256 * 1024 + (seed * 7919) % (MAX_OBJECT - 256 * 1024)
    block = hashlib.sha256(str(seed).encode()).digest()
    return (block * (size // len(block) + 1))[:size]


def _config(namespace: str, directory: str) -> dict[str, Any]:
    return {
        "namespace": namespace,
        "budget": BUDGET,
        "spill_directory": directory,
        "arena_slots": 512,
    }


def _producer(config: dict[str, Any], seeds: list[int], out: Any) -> None:
    store = Store(
        f"spill-producer-{os.getpid()}",
        SharedMemoryConnector(**config),
        cache_size=0,
        register=True,
    )
    for seed in seeds:
        # Every third object has a (long) time-to-live: it spills like the rest.
        ttl = 600.0 if seed % 3 == 0 else None
        out.put((seed, store.proxy(_payload(seed), ttl=ttl)))
    out.put(None)


def _worker(inbox: Any, results: Any) -> None:
    checked = 0
    bad: list[int] = []
    while True:
        item = inbox.get()
        if item is None:
            break
        seed, proxy = item
        if extract(proxy) != _payload(seed):
            bad.append(seed)
        checked += 1
    results.put((checked, bad))


def _shm_use(connector: SharedMemoryConnector) -> int:
    total = 0
    for name in connector.segments():
        with contextlib.suppress(FileNotFoundError):
            total += os.stat(os.path.join(SHM_DIR, name)).st_blocks * 512
    return total


@pytest.fixture
def spill_config(tmp_path: Path) -> Iterator[dict[str, Any]]:
    config = _config(f"itspill_{secrets.token_hex(4)}", str(tmp_path / "spill"))
    yield config
    SharedMemoryConnector(**config).close(clear=True)


def test_producers_and_workers_over_three_budgets(
    spill_config: dict[str, Any],
) -> None:
    connector = SharedMemoryConnector(**spill_config)
    store = Store("spill-main", connector, cache_size=0, register=True)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _shm_use(connector))
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        # Proxies made before any spill.
        before = [(seed, store.proxy(_payload(seed))) for seed in range(8)]
        total = 3 * BUDGET
        seeds = list(range(100, 100 + total // (300 * 1024) + 1))
        halves = [seeds[0::2], seeds[1::2]]
        inbox = CTX.Queue()
        results = CTX.Queue()
        workers = [CTX.Process(target=_worker, args=(inbox, results)) for _ in range(2)]
        for process in workers:
            process.start()
        for item in before:
            inbox.put(item)
        channel = CTX.Queue()
        producers = [
            CTX.Process(target=_producer, args=(spill_config, half, channel))
            for half in halves
        ]
        for process in producers:
            process.start()
        done = 0
        made: list[tuple[int, Any]] = []
        while done < len(producers):
            item = channel.get(timeout=120)
            if item is None:
                done += 1
                continue
            made.append(item)
            inbox.put(item)  # resolved during the spills
        for process in producers:
            process.join(60)
            assert process.exitcode == 0
        # After every spill: all of them again, and the early ones.
        for item in made + before:
            inbox.put(item)
        for _ in workers:
            inbox.put(None)
        outcomes = [results.get(timeout=120) for _ in workers]
        for process in workers:
            process.join(60)
            assert process.exitcode == 0
        assert sum(n for n, _ in outcomes) == 2 * (len(before) + len(made))
        assert [bad for _, bad in outcomes] == [[], []]
        assert len(made) * 256 * 1024 > 2 * BUDGET  # really 3x the budget
        stop.set()
        sampler.join()
        assert 0 < peak <= BUDGET + MAX_OBJECT, peak
        spill_dir = spill_config["spill_directory"]
        assert len(os.listdir(spill_dir)) > 1  # objects were spilled
    finally:
        stop.set()
        sampler.join()
        store.close()
    connector.close(clear=True)
    assert connector.segments() == []
    assert not os.path.exists(spill_config["spill_directory"])


HOLDER = r"""
import hashlib, sys
from proxystore.connectors.shm import SharedMemoryConnector, SharedMemoryKey
import json
config, name, size = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = SharedMemoryConnector(**config)
view = c.get(SharedMemoryKey(name, size))
print(hashlib.sha256(view).hexdigest(), flush=True)
sys.stdin.readline()  # the others flood the arena meanwhile
print(hashlib.sha256(view).hexdigest(), flush=True)
"""


def test_object_being_read_is_never_moved(spill_config: dict[str, Any]) -> None:
    import json

    connector = SharedMemoryConnector(**spill_config)
    data = _payload(1)
    key = connector.put(data)
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, json.dumps(spill_config), key.name,
         str(key.size)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    ) as holder:  # fmt: skip
        assert holder.stdout is not None
        assert holder.stdin is not None
        first = holder.stdout.readline().strip()
        assert first == hashlib.sha256(data).hexdigest()
        flood = [connector.put(_payload(seed)) for seed in range(2, 40)]
        assert not connector.spill(key)  # held: refused
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == first
        assert holder.wait(30) == 0
        for seed, other in zip(range(2, 40), flood, strict=True):
            assert connector.get(other) == _payload(seed)
        assert connector.spill(key)  # let go: movable again
        assert bytes(connector.get(key) or b"") == data


CRASHER = r"""
import json, os, sys, time
from proxystore.connectors import _spill
from proxystore.connectors.shm import SharedMemoryConnector

config, point = json.loads(sys.argv[1]), sys.argv[2]

def pause():
    print("AT", flush=True)
    time.sleep(60)

if point == "write":
    real_write = _spill.DirectoryTier.write
    def write(self, name, parts):
        half = [memoryview(parts[0])[: len(parts[0]) // 2]]
        fd = os.open(os.path.join(self.path, "." + name + ".tmp-crash"),
                     os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"".join(bytes(p) for p in half))
        pause()
    _spill.DirectoryTier.write = write
elif point == "commit":
    real = _spill.commit_spill
    def commit(*a, **k):
        ok = real(*a, **k)
        pause()
        return ok
    _spill.commit_spill = commit
elif point == "restore":
    def commit_restore(*a, **k):
        pause()
    _spill.commit_restore = commit_restore
elif point == "restored":
    real_restore = _spill.commit_restore
    def commit_restore(*a, **k):
        ok = real_restore(*a, **k)
        pause()
        return ok
    _spill.commit_restore = commit_restore

c = SharedMemoryConnector(**config)
i = 0
while True:
    i += 1
    data = (str(i).encode() * 300_000)[: 300_000]
    if point.startswith("restore") and i > 20:
        acks = open(config["spill_directory"] + "/../acks").read().splitlines()
        names = [line.split()[1] for line in acks]
        from proxystore.connectors.shm import SharedMemoryKey
        c.restore(SharedMemoryKey(names[0], 300_000))
    key = c.put(data)
    with open(config["spill_directory"] + "/../acks", "a") as acks:
        acks.write(f"{i} {key.name}\n")
"""


@pytest.mark.parametrize("point", ["write", "commit", "restore", "restored"])
def test_sigkill_mid_spill_loses_no_acknowledged_object(
    spill_config: dict[str, Any], point: str, tmp_path: Path
) -> None:
    import json

    os.makedirs(spill_config["spill_directory"], mode=0o700)
    with subprocess.Popen(
        [sys.executable, "-c", CRASHER, json.dumps(spill_config), point],
        stdout=subprocess.PIPE, text=True,
    ) as child:  # fmt: skip
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "AT"
            child.send_signal(signal.SIGKILL)
            assert child.wait(30) == -signal.SIGKILL
        finally:
            child.kill()
    acks = (tmp_path / "acks").read_text().splitlines()
    assert len(acks) > 5
    connector = SharedMemoryConnector(**spill_config)
    from proxystore.connectors.shm import SharedMemoryKey

    for line in acks:
        i, name = line.split()
        expected = (i.encode() * 300_000)[:300_000]
        assert bytes(connector.get(SharedMemoryKey(name, 300_000)) or b"") == expected
    # The namespace still works: puts (reclaiming the dead writer's slot) and spills.
    for seed in range(30):
        key = connector.put(_payload(seed))
        assert bytes(connector.get(key) or b"") == _payload(seed)
    connector.close(clear=True)
    assert connector.segments() == []
    assert not os.path.exists(spill_config["spill_directory"])


CONTAINER = r"""
import os, sys
from concurrent.futures import ProcessPoolExecutor
import multiprocessing
import numpy as np
from proxystore.connectors.shm import SharedMemoryConnector
from proxystore.proxy import extract
from proxystore.store import Store

def total(proxy):
    return float(extract(proxy).sum())

if __name__ == "__main__":
    stats = os.statvfs("/dev/shm")
    assert stats.f_blocks * stats.f_frsize == 64 * 2**20
    for arena in (False, True):
        connector = SharedMemoryConnector(f"container_{int(arena)}", arena=arena)
        store = Store(f"container-{int(arena)}", connector, cache_size=0, register=True)
        arrays = [np.full(2**20, i, dtype=np.float64) for i in range(24)]  # 3x 64 MiB
        proxies = [store.proxy(a) for a in arrays]
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(2, mp_context=context) as pool:
            sums = list(pool.map(total, proxies))
        assert sums == [float(a.sum()) for a in arrays], sums
        for proxy, array in zip(proxies, arrays):
            assert np.array_equal(extract(proxy), array)
        store.close()
        connector.close(clear=True)
        assert connector.segments() == []
    print("OK", sorted(os.listdir(os.environ["TMPDIR"])))
"""


def test_container_sized_shm_spills_instead_of_failing(tmp_path: Path) -> None:
    # A private mount namespace with Docker's default 64 MiB /dev/shm.
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c",
         "mount -t tmpfs -o size=64m tmpfs /dev/shm"],
        capture_output=True, check=False,
    )  # fmt: skip
    if probe.returncode != 0:
        pytest.skip(f"cannot make a private 64 MiB /dev/shm: {probe.stderr!r}")
    script = tmp_path / "container.py"
    script.write_text(CONTAINER)
    spill_tmp = tmp_path / "tmp"
    spill_tmp.mkdir()
    out = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c",
         'mount -t tmpfs -o size=64m tmpfs /dev/shm && exec "$0" "$1"',
         sys.executable, str(script)],
        capture_output=True, text=True, check=False, timeout=300,
        env={**os.environ, "TMPDIR": str(spill_tmp)},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "OK []"
