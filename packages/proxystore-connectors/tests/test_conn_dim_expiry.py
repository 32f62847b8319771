"""Objects with a time-to-live on DIM peers: the server's storage and a real peer."""

from __future__ import annotations

import base64
import pickle
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from proxystore.connectors.dim.models import Op, Request, Status
from proxystore.connectors.dim.server import DIMStorage, split_ttl, stop_server_process
from proxystore.connectors.dim.zmq import ZeroMQConnector, spawn_server
from proxystore.connectors.protocols import ExpiringConnector

HOST = "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def test_storage_deadlines_are_checked_on_read_and_swept() -> None:
    storage = DIMStorage()
    storage.put("short", [b"a"], 0.3)
    storage.put("long", [b"b"], 30)
    storage.put("plain", [b"c"])
    left = storage.ttl("short")
    assert left is not None
    assert 0 < left <= 0.3
    assert storage.ttl("plain") is None
    assert storage.expire("plain", 0.3)
    assert storage.expire("long", None)
    assert not storage.expire("missing", 1)
    time.sleep(0.35)
    assert storage.get("short") is None  # read: dropped at once
    assert "plain" in storage.data  # not read yet
    assert storage.sweep() == 1  # the server loop's sweep takes it
    assert set(storage.data) == {"long"}
    # A plain put over an expiring object removes its deadline.
    storage.put("x", [b"1"], 0.01)
    storage.put("x", [b"2"])
    time.sleep(0.02)
    assert storage.get("x") == [b"2"]


def test_requests_carry_the_ttl() -> None:
    storage = DIMStorage()
    payload = (struct.pack("<d", 2.5), b"object")
    answer = storage.handle(Request(Op.PUT_TTL, "k", payload))
    assert answer.status is Status.OK
    assert storage.get("k") == [b"object"]
    ttl = storage.handle(Request(Op.TTL, "k"))
    assert 2 < float(ttl.payload[0]) <= 2.5
    assert storage.handle(Request(Op.EXPIRE, "k", (b"",))).status is Status.OK
    assert storage.handle(Request(Op.TTL, "k")).payload == (b"",)
    assert storage.handle(Request(Op.EXPIRE, "nope", (b"1",))).status is Status.MISSING
    bad = storage.handle(Request(Op.PUT_TTL, "b", (struct.pack("<d", -1), b"x")))
    assert bad.status is Status.ERROR


def test_split_ttl_takes_joined_or_separate_parts() -> None:
    head = struct.pack("<d", 1.5)
    assert split_ttl([head, b"abc"]) == (1.5, [b"abc"])
    ttl, parts = split_ttl([head + b"abc", b"def"])
    assert ttl == 1.5
    assert [bytes(p) for p in parts] == [b"abc", b"def"]
    assert split_ttl([head]) == (1.5, [b""])
    with pytest.raises(ValueError, match="head"):
        split_ttl([b"short"])


@pytest.fixture(scope="module")
def server_port() -> Iterator[int]:
    port = _free_port()
    process = spawn_server(HOST, port)
    try:
        yield port
    finally:
        stop_server_process(process)


def test_real_peer_expires_objects(server_port: int) -> None:
    with ZeroMQConnector(server_port, address=HOST) as connector:
        assert isinstance(connector, ExpiringConnector)
        key = connector.put(b"x" * 1000, ttl=0.3)
        keys = connector.put_batch([b"a", b"b"], ttl=30)
        plain = connector.put(b"plain")
        left = connector.ttl(key)
        assert left is not None
        assert 0 < left <= 0.3
        assert connector.get(key) == b"x" * 1000
        assert connector.get_batch(keys) == [b"a", b"b"]
        assert connector.ttl(plain) is None
        assert connector.expire(keys[0], None)
        assert connector.ttl(keys[0]) is None
        assert connector.expire(plain, 60)
        time.sleep(0.35)
        assert connector.get(key) is None
        assert not connector.exists(key)
        assert not connector.expire(key, 1)
        assert connector.get(plain) == b"plain"


_PRODUCER = """
import base64, pickle, sys, time
from proxystore.connectors.dim.zmq import ZeroMQConnector
c = ZeroMQConnector(int(sys.argv[1]), address="127.0.0.1")
key = c.put(b"y" * 100, ttl=0.3)
print(base64.b64encode(pickle.dumps(key)).decode(), flush=True)
time.sleep(600)
"""


def test_peer_sweeps_objects_of_a_killed_client(server_port: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _PRODUCER, str(server_port)], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    try:
        with proc.stdout:
            line = proc.stdout.readline()
        key = pickle.loads(base64.b64decode(line))
    finally:
        proc.kill()
        proc.wait(30)
    with ZeroMQConnector(server_port, address=HOST) as connector:
        assert connector.exists(key)
        time.sleep(0.35)
        assert not connector.exists(key)
