"""Two DIM ZeroMQ peers on two loopback addresses, with proxies crossing between them.

Peer A serves on 127.0.0.1 and peer B on 127.0.0.2, each a real server process. A
proxy made on A is resolved by a separate process attached to B: the bytes travel
from A's server to that process directly. A peer killed mid-run must give
``ServerTimeoutError`` (bounded by the connector's timeout), never a hang, and no
server process may outlive the module.
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import NamedTuple

import pytest

from proxystore.connectors.dim.exceptions import ServerTimeoutError
from proxystore.connectors.dim.server import stop_server_process
from proxystore.connectors.dim.zmq import ZeroMQConnector, spawn_server
from proxystore.proxy import Proxy, is_resolved
from proxystore.store import Store
from tests.integration.harness.ports import free_port

pytestmark = pytest.mark.integration

HOST_A = "127.0.0.1"
HOST_B = "127.0.0.2"

# Every server process this module starts, to prove none survives it.
_started: list[int] = []


class Peer(NamedTuple):
    host: str
    port: int


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie is dead, only not yet reaped


def _port_for(host: str) -> int:
    # free_port() gives each xdist worker its own block; also check this address.
    while True:
        port = free_port()
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        return port


def _spawn(host: str) -> tuple[Peer, subprocess.Popen[bytes]]:
    port = _port_for(host)
    process = spawn_server(host, port, spawn_timeout=30)
    _started.append(process.pid)
    return Peer(host, port), process


@pytest.fixture(scope="module", autouse=True)
def _no_orphan_servers() -> Iterator[None]:
    yield
    survivors = [pid for pid in _started if _alive(pid)]
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert not survivors, f"DIM servers outlived their tests: {survivors}"


@pytest.fixture(scope="module")
def peers() -> Iterator[tuple[Peer, Peer]]:
    a, process_a = _spawn(HOST_A)
    try:
        b, process_b = _spawn(HOST_B)
        try:
            yield a, b
        finally:
            stop_server_process(process_b)
    finally:
        stop_server_process(process_a)


_RESOLVE_ON_B = """
import hashlib, pickle, sys
from proxystore.connectors.dim.zmq import ZeroMQConnector
from proxystore.proxy import is_resolved
from proxystore.store import Store

name, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
connector = ZeroMQConnector(port, address=host, timeout=5)
assert connector.server is None, "peer B's server should already run"
with Store(name, connector, register=True):
    proxy = pickle.loads(sys.stdin.buffer.read())
    assert not is_resolved(proxy)
    data = proxy["data"]
    print(proxy["origin"], len(data), hashlib.sha256(data).hexdigest())
"""


def test_proxy_from_a_resolves_in_process_attached_to_b(
    peers: tuple[Peer, Peer],
) -> None:
    import hashlib

    a, b = peers
    name = f"dim-{uuid.uuid4().hex[:8]}"
    data = os.urandom(3 * 1024 * 1024)
    with Store(name, ZeroMQConnector(a.port, address=a.host, timeout=5)) as store:
        assert store.connector.server is None
        proxy: Proxy[dict[str, object]] = store.proxy({"origin": "A", "data": data})
        assert is_resolved(proxy)
        payload = pickle.dumps(proxy)
        assert len(payload) < 1024  # the proxy carries a key, not the object
        child = subprocess.run(
            [sys.executable, "-c", _RESOLVE_ON_B, name, b.host, str(b.port)],
            input=payload,
            capture_output=True,
            timeout=120,
            check=False,
        )
    assert child.returncode == 0, child.stderr.decode()
    expected = f"A {len(data)} {hashlib.sha256(data).hexdigest()}"
    assert child.stdout.decode().strip() == expected


def test_connectors_on_two_peers_share_objects(peers: tuple[Peer, Peer]) -> None:
    a, b = peers
    with (
        ZeroMQConnector(a.port, address=a.host) as on_a,
        ZeroMQConnector(b.port, address=b.host, chunk_length=64 * 1024) as on_b,
    ):
        big = os.urandom(1024 * 1024)
        key_a, key_b = on_a.put(big), on_b.put(b"from B")
        assert (key_a.peer_host, key_a.peer_port) == a
        assert (key_b.peer_host, key_b.peer_port) == b
        assert on_b.get(key_a) == big
        assert on_a.get(key_b) == b"from B"
        assert on_a.get_batch([key_b, key_a]) == [b"from B", big]
        assert on_a.exists(key_b)
        on_a.evict(key_b)  # evicts on B's server
        assert not on_b.exists(key_b)
        assert on_b.get(key_b) is None


def test_peer_killed_mid_run_times_out_instead_of_hanging(
    peers: tuple[Peer, Peer],
) -> None:
    a, _ = peers
    victim, process = _spawn(HOST_B)
    timeout = 0.5
    errors: list[BaseException] = []
    gets = threading.Semaphore(0)
    try:
        with (
            ZeroMQConnector(victim.port, address=victim.host) as on_victim,
            ZeroMQConnector(a.port, address=a.host, timeout=timeout) as reader,
        ):
            key = on_victim.put(b"x" * 1000)

            def read_until_failure() -> None:
                try:
                    while True:
                        assert reader.get(key) == b"x" * 1000
                        gets.release()
                except BaseException as exc:  # handed to the test thread
                    errors.append(exc)

            thread = threading.Thread(target=read_until_failure)
            thread.start()
            assert gets.acquire(timeout=30)  # the peer answered at least once
            process.kill()
            # Bounded wait: a hang would leave the thread alive and fail here.
            thread.join(timeout=30)
            assert not thread.is_alive()
            assert len(errors) == 1
            error = errors[0]
            assert isinstance(error, ServerTimeoutError), repr(error)
            assert error.address == f"{victim.host}:{victim.port}"
            start = time.monotonic()
            with pytest.raises(ServerTimeoutError):
                reader.exists(key)
            assert time.monotonic() - start < timeout + 5
            # The connector still serves live peers after the timeouts.
            assert reader.get(reader.put(b"still fine")) == b"still fine"
    finally:
        stop_server_process(process)
    assert not _alive(process.pid)


def test_spawned_server_is_stopped_on_close() -> None:
    port = _port_for(HOST_B)
    connector = ZeroMQConnector(port, address=HOST_B)
    assert connector.server is not None
    pid = connector.server.pid
    _started.append(pid)
    try:
        assert connector.get(connector.put(b"own server")) == b"own server"
    finally:
        connector.close()
    assert not _alive(pid)
