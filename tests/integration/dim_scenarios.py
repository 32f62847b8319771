"""Two DIM peers on two loopback addresses, with proxies crossing between them.

One reusable test class per transport (``test_dim_zmq.py``, ``test_dim_ucx.py``,
``test_dim_margo.py``): peer A serves on 127.0.0.1 and peer B on 127.0.0.2, each a
real server process. A transport that cannot listen on 127.0.0.2 (libfabric's
providers, used by Margo's ``ofi+tcp``, listen only on addresses an interface
carries, and 127.0.0.2 is not one when only 127.0.0.1/8 is on ``lo``) overrides
`PeerScenarios.second_host`: `host_b_for` then puts peer B on another
address of this machine the transport accepts, or skips that transport's class
saying why. A
proxy made on A is resolved by a separate process attached to B: the bytes travel
from A's server to that process directly. A peer killed mid-run must give
``ServerTimeoutError`` naming its ``host:port`` (bounded by the connector's timeout),
never a hang, and no server process may outlive the class.

A transport joins by subclassing :class:`PeerScenarios` and naming its module and
connector class; ``PeerScenarios`` has no ``Test`` prefix, so only subclasses run.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, NamedTuple

import pytest

from proxystore.connectors.dim._base import PeerConnector
from proxystore.connectors.dim.exceptions import ServerTimeoutError
from proxystore.connectors.dim.server import stop_server_process
from proxystore.connectors.dim.utils import interface_addresses
from proxystore.proxy import Proxy, is_resolved
from proxystore.store import Store
from tests.integration.harness.ports import free_port

__all__ = [
    "HOST_A",
    "HOST_B",
    "Peer",
    "PeerScenarios",
    "alive",
    "host_b_for",
    "port_for",
]

HOST_A = "127.0.0.1"
HOST_B = "127.0.0.2"


class Peer(NamedTuple):
    host: str
    port: int


def alive(pid: int) -> bool:
    """Return whether process ``pid`` runs (a zombie counts as dead)."""
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


def port_for(host: str) -> int:
    """A free port on ``host`` (free_port() checks 127.0.0.1 only)."""
    while True:
        port = free_port()
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        return port


def host_b_for(transport: str, problem: Callable[[str], str | None]) -> str:
    """Peer B's address for a transport that cannot listen everywhere.

    ``problem(host)`` says why the transport cannot listen on ``host`` (or
    ``None``). ``HOST_B`` when it can; else another IPv4 address of this machine
    (not ``HOST_A``) that it accepts; else the test is skipped with the reason.
    """
    reason = problem(HOST_B)
    if reason is None:
        return HOST_B
    for address in interface_addresses():
        if "." in address and address != HOST_A and problem(address) is None:
            return address
    pytest.skip(
        f"{transport} cannot listen on {HOST_B} and this machine has no other "
        f"address it can use for peer B: {reason}"
    )


_RESOLVE_ON_B = """
import hashlib, importlib, json, pickle, sys
from proxystore.proxy import is_resolved
from proxystore.store import Store

module, cls, name, host, port, extra = sys.argv[1:7]
connector = getattr(importlib.import_module(module), cls)(
    int(port), address=host, timeout=5, **json.loads(extra)
)
assert connector.server is None, "peer B's server should already run"
with Store(name, connector, register=True):
    proxy = pickle.loads(sys.stdin.buffer.read())
    assert not is_resolved(proxy)
    data = proxy["data"]
    print(proxy["origin"], len(data), hashlib.sha256(data).hexdigest())
"""


class PeerScenarios:
    """DIM scenarios on real peers; subclasses name the transport."""

    #: Module of the transport (``proxystore.connectors.dim.zmq``).
    module: ClassVar[str]
    #: Connector class in that module (``ZeroMQConnector``).
    connector_name: ClassVar[str]
    #: Seconds a spawned server may take to answer (UCX starts slowly).
    spawn_timeout: ClassVar[float] = 30.0
    #: Extra constructor arguments (JSON-able), e.g. Margo's ``protocol``.
    connector_kwargs: ClassVar[dict[str, Any]] = {}

    started: ClassVar[list[int]]

    def connector(self, peer: Peer, **kwargs: Any) -> PeerConnector:
        """A connector of this transport attached to ``peer``."""
        cls = getattr(importlib.import_module(self.module), self.connector_name)
        kwargs = {**self.connector_kwargs, **kwargs}
        connector: PeerConnector = cls(peer.port, address=peer.host, **kwargs)
        return connector

    @classmethod
    def second_host(cls) -> str:
        """Peer B's address: ``HOST_B`` (transports that cannot listen there use
        `host_b_for`)."""
        return HOST_B

    @classmethod
    def spawn(cls, host: str) -> tuple[Peer, subprocess.Popen[bytes]]:
        """Start a server of this transport on a free port of ``host``."""
        port = port_for(host)
        process = cls.spawn_server(host, port)
        cls.started.append(process.pid)
        return Peer(host, port), process

    @classmethod
    def spawn_server(cls, host: str, port: int) -> subprocess.Popen[bytes]:
        """The transport's ``spawn_server`` (override when it takes more)."""
        spawn = importlib.import_module(cls.module).spawn_server
        process: subprocess.Popen[bytes] = spawn(
            host, port, spawn_timeout=cls.spawn_timeout
        )
        return process

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def _no_orphan_servers(cls) -> Iterator[None]:
        cls.started = []
        yield
        survivors = [pid for pid in cls.started if alive(pid)]
        for pid in survivors:
            os.kill(pid, signal.SIGKILL)
        assert not survivors, f"DIM servers outlived their tests: {survivors}"

    @pytest.fixture(scope="class")
    @classmethod
    def peers(cls) -> Iterator[tuple[Peer, Peer]]:
        a, process_a = cls.spawn(HOST_A)
        try:
            b, process_b = cls.spawn(cls.second_host())
            try:
                yield a, b
            finally:
                stop_server_process(process_b)
        finally:
            stop_server_process(process_a)

    def test_proxy_from_a_resolves_in_process_attached_to_b(
        self, peers: tuple[Peer, Peer]
    ) -> None:
        a, b = peers
        name = f"dim-{uuid.uuid4().hex[:8]}"
        data = os.urandom(3 * 1024 * 1024)
        with Store(name, self.connector(a, timeout=5)) as store:
            assert store.connector.server is None
            proxy: Proxy[dict[str, object]] = store.proxy({"origin": "A", "data": data})
            assert is_resolved(proxy)
            payload = pickle.dumps(proxy)
            assert len(payload) < 1024  # the proxy carries a key, not the object
            extra = json.dumps(self.connector_kwargs)
            argv = [self.module, self.connector_name, name, b.host, str(b.port), extra]
            child = subprocess.run(
                [sys.executable, "-c", _RESOLVE_ON_B, *argv],
                input=payload,
                capture_output=True,
                timeout=120,
                check=False,
            )
        assert child.returncode == 0, child.stderr.decode()
        expected = f"A {len(data)} {hashlib.sha256(data).hexdigest()}"
        assert child.stdout.decode().strip() == expected

    def test_connectors_on_two_peers_share_objects(
        self, peers: tuple[Peer, Peer]
    ) -> None:
        a, b = peers
        with self.connector(a) as on_a, self.connector(b) as on_b:
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
        self, peers: tuple[Peer, Peer]
    ) -> None:
        a, _ = peers
        victim, process = self.spawn(self.second_host())
        timeout = 0.5
        errors: list[BaseException] = []
        gets = threading.Semaphore(0)
        try:
            with (
                self.connector(victim) as on_victim,
                self.connector(a, timeout=timeout) as reader,
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
                assert f"{victim.host}:{victim.port}" in str(error)
                start = time.monotonic()
                with pytest.raises(ServerTimeoutError):
                    reader.exists(key)
                assert time.monotonic() - start < timeout + 5
                # The connector still serves live peers after the timeouts.
                assert reader.get(reader.put(b"still fine")) == b"still fine"
        finally:
            stop_server_process(process)
        assert not alive(process.pid)

    def test_spawned_server_is_stopped_on_close(self) -> None:
        host = self.second_host()
        connector = self.connector(Peer(host, port_for(host)))
        assert connector.server is not None
        pid = connector.server.pid
        type(self).started.append(pid)
        try:
            assert connector.get(connector.put(b"own server")) == b"own server"
        finally:
            connector.close(kill_server=True)
        assert not alive(pid)
