"""Crash-safe expiry: objects go on time after every client process was SIGKILLed.

Each test starts a producer subprocess that stores objects with ``ttl=`` (and
through a `LeaseLifetime`, whose in-process timer dies with it), prints their
keys, and is SIGKILLed. After the time-to-live (plus a sweep interval where the
backend has no expiry of its own) the objects are gone from the backend itself:
Redis expired them, an endpoint process swept them, and for a file directory or
a shared-memory arena another process of the namespace swept their bytes away.
An object stored without a deadline by the same producer stays: the death of the
producer alone removes nothing.
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from proxystore.connectors import _arena_ttl
from proxystore.connectors.file import FileConnector
from proxystore.connectors.redis import RedisConnector
from proxystore.connectors.shm import SharedMemoryConnector
from proxystore.endpoint import client
from tests.integration.harness import ServerAddress
from tests.integration.harness.endpoint import start_endpoint
from tests.integration.harness.redis import redis_command

TTL = 2.0

# Builds the connector named by argv[1] (a JSON {"kind", "options"}), stores
# objects with a TTL, with a lease and without either, prints their keys, and
# waits to be killed.
_PRODUCER = """
import base64, importlib, json, pickle, sys, time
from proxystore.proxy import get_factory
from proxystore.store import Store
from proxystore.store.lifetimes import LeaseLifetime

spec = json.loads(sys.argv[1])
module, _, name = spec["kind"].rpartition(".")
connector = getattr(importlib.import_module(module), name)(**spec["options"])
store = Store("producer", connector, cache_size=0)
ttl = float(sys.argv[2])
lease = LeaseLifetime(store, expiry=ttl)
keys = {
    "ttl": store.put(b"t" * 1000, ttl=ttl),
    "proxy": get_factory(store.proxy([1, 2, 3], ttl=ttl)).key,
    "batch": store.put_batch(["a", "b"], ttl=ttl)[1],
    "lease": store.put("leased", lifetime=lease),
    "plain": store.put("kept"),
}
print(base64.b64encode(pickle.dumps(keys)).decode(), flush=True)
time.sleep(600)
"""


def _produce(
    kind: str, options: dict[str, Any], env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run the producer, read its keys, SIGKILL it; return the keys."""
    spec = json.dumps({"kind": kind, "options": options})
    proc = subprocess.Popen(
        [sys.executable, "-c", _PRODUCER, spec, str(TTL)],
        stdout=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    assert proc.stdout is not None
    try:
        with proc.stdout:
            line = proc.stdout.readline()
        assert line, f"producer exited with {proc.wait(30)}"
        keys: dict[str, Any] = pickle.loads(base64.b64decode(line))
    finally:
        proc.kill()  # SIGKILL: no atexit, no lease timer, no finalizer
        proc.wait(30)
    assert proc.returncode == -9
    return keys


def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


_EXPIRING = ("ttl", "proxy", "batch", "lease")


def test_redis_expires_objects_of_a_killed_producer(
    redis_server: ServerAddress,
) -> None:
    options = {"hostname": redis_server.host, "port": redis_server.port}
    keys = _produce("proxystore.connectors.redis.RedisConnector", options)
    with RedisConnector(redis_server.host, redis_server.port) as connector:
        for what in _EXPIRING:
            left = connector.ttl(keys[what])
            assert left is not None, what  # the expiry went with the value
            assert left <= TTL
        time.sleep(TTL + 0.2)
        for what in _EXPIRING:
            name = keys[what].redis_key
            # Asked of the server directly: the key is gone there.
            assert redis_command(redis_server, "EXISTS", name) == b":0", what
        assert connector.exists(keys["plain"])
        connector.evict(keys["plain"])


def test_file_objects_of_a_killed_producer_are_swept_by_another_process(
    tmp_path: Path,
) -> None:
    store_dir = tmp_path / "objects"
    options = {"store_dir": str(store_dir), "clear": False}
    keys = _produce("proxystore.connectors.file.FileConnector", options)
    paths = {what: store_dir / keys[what].filename for what in keys}
    time.sleep(TTL + 0.1)
    # Nobody swept yet (the producer is dead): the files are there, but a
    # reader never gets an expired one.
    assert all(paths[what].exists() for what in _EXPIRING)
    reader = FileConnector(str(store_dir), clear=False, sweep_interval=3600)
    try:
        assert all(reader.get(keys[what]) is None for what in _EXPIRING)
    finally:
        reader.close()
    # Any other process of the directory sweeps: here a fresh interpreter
    # that only opens the connector.
    sweeper = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from proxystore.connectors.file import FileConnector\n"
            "c = FileConnector(sys.argv[1], clear=False, sweep_interval=0.1)\n"
            "time.sleep(0.5)\n",
            str(store_dir),
        ],
        timeout=60,
        check=True,
    )
    assert sweeper.returncode == 0
    for what in _EXPIRING:
        assert not paths[what].exists(), what
    assert paths["plain"].exists()


@pytest.fixture
def arena_namespace() -> Iterator[str]:
    namespace = f"expiry{os.getpid()}_{time.monotonic_ns()}"
    yield namespace
    SharedMemoryConnector(namespace, arena=True).close(clear=True)


def test_arena_objects_of_a_killed_producer_are_swept(arena_namespace: str) -> None:
    options = {
        "namespace": arena_namespace,
        "arena": True,
        "arena_size": 16 << 20,
        "clear": False,
    }
    keys = _produce("proxystore.connectors.shm.SharedMemoryConnector", options)
    connector = SharedMemoryConnector(
        arena_namespace, arena=True, arena_size=16 << 20, clear=False
    )
    try:
        arena = connector._arena()
        assert arena is not None
        slots = {what: connector._slot(keys[what]) for what in keys}
        assert all(slot is not None for slot in slots.values())

        def live_slots() -> set[tuple[int, int]]:
            assert arena is not None
            return {(s, g) for s, g, _, _ in _arena_ttl.arena_objects(arena)}

        assert {slots[what] for what in keys} <= live_slots()
        # This process maps an arena with deadlines: it sweeps it, and the
        # expired slots are freed (their memory reusable) after the TTL.
        assert connector._sweeping is not None
        expiring = {slots[what] for what in _EXPIRING}
        assert _wait_until(lambda: not expiring & live_slots(), TTL + 5)
        assert all(connector.get(keys[what]) is None for what in _EXPIRING)
        assert slots["plain"] in live_slots()
    finally:
        connector.close(clear=False)


def test_endpoint_sweeps_objects_of_a_killed_producer(tmp_path: Path) -> None:
    home = tmp_path / "home"
    endpoint = start_endpoint(home, "expiry", None)
    try:
        options = {"endpoints": [endpoint.uuid], "proxystore_dir": str(home)}
        keys = _produce("proxystore.connectors.endpoint.EndpointConnector", options)

        def stored() -> set[str]:
            return {o["key"] for o in client.listing(endpoint.address)}

        ids = {what: keys[what].object_id for what in keys}
        assert set(ids.values()) <= stored()
        # The endpoint process sweeps every second: the objects leave its
        # storage after TTL + one interval.
        expiring = {ids[what] for what in _EXPIRING}
        assert _wait_until(lambda: not expiring & stored(), TTL + 3)
        assert ids["plain"] in stored()
        assert client.get(endpoint.address, ids["ttl"]) is None
    finally:
        endpoint.stop()


# Stores objects with a TTL under a memory budget (3x the budget, so most of
# them spill, one is larger than the whole budget), and one without a TTL.
_BUDGET_PRODUCER = """
import base64, json, pickle, sys, time
from proxystore.connectors.shm import SharedMemoryConnector

options = json.loads(sys.argv[1])
connector = SharedMemoryConnector(**options)
ttl = float(sys.argv[2])
keys = [connector.put(bytes([i]) * (300 << 10), ttl=ttl) for i in range(20)]
keys.append(connector.put(b"L" * (3 << 20), ttl=ttl))
plain = connector.put(b"p" * (300 << 10))
print(base64.b64encode(pickle.dumps((keys, plain))).decode(), flush=True)
time.sleep(600)
"""


def test_spilled_objects_of_a_killed_producer_are_swept(
    arena_namespace: str, tmp_path: Path
) -> None:
    ttl = 2 * TTL  # 26 MB to write before the checks that they are still there
    options: dict[str, Any] = {
        "namespace": arena_namespace,
        "arena": True,
        "budget": 2 << 20,
        "spill_directory": str(tmp_path / "spill"),
        "clear": False,
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", _BUDGET_PRODUCER, json.dumps(options), str(ttl)],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        with proc.stdout:
            line = proc.stdout.readline()
        assert line, f"producer exited with {proc.wait(30)}"
        keys, plain = pickle.loads(base64.b64decode(line))
    finally:
        proc.kill()  # SIGKILL mid-life: nobody of the producer sweeps
        proc.wait(30)
    connector = SharedMemoryConnector(**options)
    try:
        # No overflow segment: the budget bounds /dev/shm with deadlines too.
        assert [
            n for n in connector.segments() if not n.endswith(("arena", ".ttl"))
        ] == []

        def spilled() -> set[str]:
            return {n for n in os.listdir(tmp_path / "spill") if n[0] != "."}

        names = {key.name for key in keys}
        assert len(names & spilled()) >= 10
        assert connector.exists(keys[0])
        # This process maps an arena with deadlines: its sweeper drops the
        # expired spilled objects from the directory and frees their slots.
        assert connector._sweeping is not None
        assert _wait_until(lambda: not names & spilled(), ttl + 5)
        arena = connector._arena()
        assert arena is not None
        counts = connector.spill_metrics()
        assert counts["shm"]["objects_now"] + counts["0:directory"]["objects_now"] == 1
        assert all(connector.get(key) is None for key in keys)
        assert connector.get(plain) == b"p" * (300 << 10)
    finally:
        connector.close(clear=True)
