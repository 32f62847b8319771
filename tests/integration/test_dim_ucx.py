"""The UCX DIM connector on real peers (ucxx over TCP and shared memory).

`make test-integration` installs the `ucx` dependency group (ucxx-cu12), so under
`CI=true` these tests are required: a missing `ucxx` fails them. Elsewhere they skip
and say how to install it. UCX runs without RDMA hardware or GPUs here: the module
defaults `UCX_TLS=tcp,self,sm` and `UCX_NET_DEVICES=lo` (loopback peers only).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from proxystore.connectors.dim.exceptions import ServerTimeoutError
from proxystore.connectors.dim.models import Op, Request
from proxystore.connectors.dim.server import stop_server_process
from proxystore.connectors.dim.ucx import UCXConnector, UCXTransport, spawn_server
from tests.conformance.connector_suite import ConnectorSuite
from tests.conformance.store_laws import StoreLaws
from tests.integration.dim_scenarios import (
    HOST_A,
    HOST_B,
    PeerScenarios,
    alive,
    port_for,
)
from tests.integration.harness.mode import in_ci

# Loopback peers over TCP and shared memory (spawned servers inherit these).
os.environ.setdefault("UCX_TLS", "tcp,self,sm")
os.environ.setdefault("UCX_NET_DEVICES", "lo")

_MISSING = (
    "ucxx is not installed: `make test-integration` installs it (uv sync --group "
    "ucx), or pip install 'proxystore-connectors[ucx]'"
)


@pytest.fixture(scope="module", autouse=True)
def _ucxx_installed() -> None:
    """UCX is installable everywhere: required under CI, a skip elsewhere."""
    if importlib.util.find_spec("ucxx") is None:
        if in_ci():
            pytest.fail(f"CI=true requires the UCX tests: {_MISSING}", pytrace=False)
        pytest.skip(_MISSING)


@pytest.fixture(scope="module")
def ucx_server() -> Iterator[tuple[str, int]]:
    """One UCX server on 127.0.0.1 shared by the module's connectors."""
    port = port_for(HOST_A)
    process = spawn_server(HOST_A, port, spawn_timeout=30)
    try:
        yield HOST_A, port
    finally:
        stop_server_process(process)
    assert not alive(process.pid)


class TestUCXConformance(ConnectorSuite):
    @pytest.fixture
    def connector(self, ucx_server: tuple[str, int]) -> Iterator[UCXConnector]:
        host, port = ucx_server
        with UCXConnector(port, address=host, timeout=5) as connector:
            assert connector.server is None  # attached to the module's server
            yield connector


class TestUCXStoreLaws(StoreLaws):
    @pytest.fixture(scope="class")
    @classmethod
    def store_connector(cls, ucx_server: tuple[str, int]) -> Iterator[UCXConnector]:
        host, port = ucx_server
        with UCXConnector(port, address=host, timeout=5) as connector:
            yield connector


class TestUCXPeers(PeerScenarios):
    module = "proxystore.connectors.dim.ucx"
    connector_name = "UCXConnector"


def test_large_objects_cross_peers_intact(ucx_server: tuple[str, int]) -> None:
    host, port = ucx_server
    data = os.urandom(64 * 1024 * 1024 + 3)
    with UCXConnector(port, address=host, timeout=5) as connector:
        key = connector.put(memoryview(data))
        assert key.size == len(data)
        got = connector.get(key)
        assert got is not None
        assert got == data
        # An object just above and below the inline limit takes each path.
        from proxystore.connectors.dim.ucx import INLINE_MAX

        small = [os.urandom(INLINE_MAX), os.urandom(INLINE_MAX + 1), b""]
        keys = connector.put_batch(small)
        assert connector.get_batch(keys) == small
        connector.evict(key)


def test_server_binds_the_configured_address_only() -> None:
    port = port_for(HOST_B)
    process = spawn_server(HOST_B, port, spawn_timeout=30)
    try:
        with socket.socket() as probe:
            probe.settimeout(5)
            with pytest.raises(ConnectionRefusedError):
                probe.connect((HOST_A, port))
        with UCXConnector(port, address=HOST_B) as connector:
            assert connector.server is None
            assert connector.get(connector.put(b"bound")) == b"bound"
    finally:
        stop_server_process(process)


def test_fresh_port_spawns_instead_of_failing_the_probe() -> None:
    # Two connectors, each on a fresh port: the probe finds no server and the
    # constructor spawns one (it used to fail with UCXXMessageTruncatedError).
    first = UCXConnector(port_for(HOST_A), address=HOST_A)
    second = UCXConnector(port_for(HOST_A), address=HOST_A)
    try:
        for connector in (first, second):
            assert connector.server is not None
            key = connector.put(b"mine")
            assert first.get(key) == second.get(key) == b"mine"
        attached = UCXConnector(first.port, address=HOST_A)
        assert attached.server is None
        attached.close()
    finally:
        first.close(kill_server=True)
        second.close(kill_server=True)


_CLEAN_EXIT = """
import sys
from proxystore.connectors.dim.ucx import UCXConnector

ports = [int(p) for p in sys.argv[1:]]
connectors = [UCXConnector(port, address="127.0.0.1") for port in ports]
keys = [c.put(b"x" * size) for c, size in zip(connectors, (10, 1 << 20))]
assert connectors[0].get(keys[1]) == b"x" * (1 << 20)
connectors[0].close()  # one closed, the other left open at exit on purpose
print("done")
"""


def test_no_stray_output_at_exit() -> None:
    ports = [str(port_for(HOST_A)) for _ in range(2)]
    child = subprocess.run(
        [sys.executable, "-c", _CLEAN_EXIT, *ports],
        capture_output=True,
        timeout=180,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore::ResourceWarning"},
    )
    stderr = child.stderr.decode()
    assert child.returncode == 0, stderr
    assert child.stdout.decode().strip() == "done"
    for marker in ("Task was destroyed", "UCXX ERROR", "UCX  WARN", "Traceback"):
        assert marker not in stderr, stderr
    assert stderr == ""


def test_silent_peer_times_out_within_the_limit() -> None:
    # A TCP listener that accepts but never answers: neither the greeting nor a
    # request may hang past the timeout.
    with socket.socket() as silent:
        silent.bind((HOST_A, 0))
        silent.listen()
        port = silent.getsockname()[1]
        transport = UCXTransport()
        try:
            start = time.monotonic()
            with pytest.raises(ServerTimeoutError, match=f"{HOST_A}:{port}") as info:
                transport.exchange(HOST_A, port, [Request(Op.PING)], 0.5)
            assert time.monotonic() - start < 5
            assert info.value.address == f"{HOST_A}:{port}"
        finally:
            transport.close()


def test_no_server_is_reported_fast() -> None:
    transport = UCXTransport()
    try:
        port = port_for(HOST_A)
        start = time.monotonic()
        with pytest.raises(ServerTimeoutError, match="not reachable"):
            transport.exchange(HOST_A, port, [Request(Op.PING)], 10)
        assert time.monotonic() - start < 5
    finally:
        transport.close()


def test_transport_is_thread_safe(ucx_server: tuple[str, int]) -> None:
    host, port = ucx_server
    errors: list[BaseException] = []
    with UCXConnector(port, address=host, timeout=10) as connector:

        def work(seed: int) -> None:
            try:
                for i in range(20):
                    data = bytes([seed]) * (i * 5000)
                    assert connector.get(connector.put(data)) == data
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert not errors, errors


_SHARED_MEMORY = """
import os, sys
from proxystore.connectors.dim.ucx import UCXConnector

port = int(sys.argv[1])
with UCXConnector(port, address="127.0.0.1", timeout=10) as connector:
    data = os.urandom(8 * 1024 * 1024)
    assert connector.get(connector.put(data)) == data
    connector.close(kill_server=True)
print("ok")
"""


def test_shared_memory_mode_moves_objects() -> None:
    # The opt-out of UCX error handling (shared memory within a node), in a
    # process of its own: client and spawned server both read the variable.
    env = {**os.environ, "PROXYSTORE_DIM_UCX_ERROR_HANDLING": "0"}
    child = subprocess.run(
        [sys.executable, "-c", _SHARED_MEMORY, str(port_for(HOST_A))],
        capture_output=True,
        timeout=180,
        check=False,
        env=env,
    )
    assert child.returncode == 0, child.stderr.decode()
    assert child.stdout.decode().strip() == "ok"
