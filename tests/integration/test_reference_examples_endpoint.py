"""The reference's endpoint examples from its docs, run unchanged against ours.

The reference's endpoints guide (the `EndpointConnector` example and the CLI
steps), its endpoint debugging guide (the `test` CLI, locally and with
`--remote`, and the REST `exists` request), the usage examples of its `Endpoint`
API reference (solo and peering through a relay), and its client functions as
its users call them (a `requests.Session`, `requests`' exceptions caught), as a
user would run them: real `proxystore-endpoint` and `proxystore-relay` processes,
one proxystore home per "host", and each host's Python code in its own
interpreter. The Python is our transcription of the documented API usage; only
the placeholders are filled in (endpoint UUIDs, relay address, `my_object`).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness.endpoint import (
    EndpointProcess,
    RelayProcess,
    script,
    start_endpoint,
    start_relay,
)
from tests.integration.harness.ports import free_port

pytestmark = pytest.mark.integration

#: Host A: the guide's "Endpoint Client Example", then the proxy is sent away.
_HOST_A = """
import pickle, sys

my_object = {"answer": 42, "payload": list(range(1000))}

from proxystore.connectors.endpoint import EndpointConnector
from proxystore.store import Store

connector = EndpointConnector(
   endpoints=[
       '{uuid_a}',
       '{uuid_b}',
   ],
)
store = Store(name='default', connector=connector)

p = store.proxy(my_object)

with open(sys.argv[1], 'wb') as f:
    pickle.dump(p, f)
"""

#: Host B: receives the proxy and uses it (resolved through its own endpoint).
_HOST_B = """
import pickle, sys

with open(sys.argv[1], 'rb') as f:
    p = pickle.load(f)

assert p['answer'] == 42
assert sum(p['payload']) == sum(range(1000))
print('resolved', len(p['payload']))
"""


#: The usage examples of the reference's `Endpoint` docstring (solo, peering).
_ENDPOINT_API = """
import asyncio, sys, uuid

from proxystore.endpoint.endpoint import Endpoint
from proxystore.p2p.manager import PeerManager
from proxystore.p2p.relay.client import RelayClient


async def solo() -> None:
    async with Endpoint('ep1', uuid.uuid4()) as endpoint:
        serialized_data = b'data string'
        await endpoint.set('key', serialized_data)
        assert await endpoint.get('key') == serialized_data
        await endpoint.evict('key')
        assert not await endpoint.exists('key')


async def peering() -> None:
    pm1 = await PeerManager(RelayClient(sys.argv[1]))
    pm2 = await PeerManager(RelayClient(sys.argv[1]))
    ep1 = await Endpoint(peer_manager=pm1)
    ep2 = await Endpoint(peer_manager=pm2)

    serialized_data = b'data string'
    await ep1.set('key', serialized_data)
    assert await ep2.get('key', endpoint=ep1.uuid) == serialized_data
    assert await ep1.exists('key')
    assert not await ep1.exists('key', endpoint=ep2.uuid)

    await ep1.close()
    await ep2.close()


asyncio.run(solo())
asyncio.run(peering())
print('ok')
"""

#: The reference's client functions as its users call them.
_CLIENT = """
import sys, uuid

import requests

from proxystore.endpoint import client

address, peer, stopped = sys.argv[1:4]
key = str(uuid.uuid4())
with requests.Session() as session:
    client.put(address, key, b'data', session=session)
    assert client.exists(address, key, session=session)
    assert client.get(address, key, session=session) == b'data'
    client.put(address, key, b'remote', endpoint=peer, session=session)
    assert client.get(address, key, endpoint=peer, session=session) == b'remote'
    client.evict(address, key, endpoint=peer, session=session)
    assert client.get(address, key, endpoint=peer, session=session) is None
    client.evict(address, key, session=session)
    try:
        client.exists(stopped, key, session=session)
    except requests.exceptions.ConnectionError as e:
        print('unreachable:', type(e).__name__)
    try:
        client.put(address, key, b'x' * 200_000, session=session)
    except requests.exceptions.RequestException as e:
        print('refused:', e.response.status_code)
try:
    client.exists(stopped, key)
except requests.exceptions.RequestException as e:
    print('unreachable without a session:', type(e).__name__)
"""


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[tuple[EndpointProcess, EndpointProcess]]:
    """Two "hosts" (homes), each with its endpoint, peered through one relay."""
    relay: RelayProcess = start_relay(tmp_path / "relay")
    started: list[EndpointProcess] = []
    try:
        for name in ("myendpoint", "otherendpoint"):
            started.append(
                start_endpoint(
                    tmp_path / f"home-{name}",
                    name,
                    relay,
                    direct=False,
                    max_object_size=100_000,
                )
            )
        yield started[0], started[1]
    finally:
        for endpoint in started:
            endpoint.stop()
        relay.stop()


def _python(home: Path, code: str, *args: str) -> str:
    done = subprocess.run(  # noqa: PLW1510 - the exit code is asserted
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env={**os.environ, "PROXYSTORE_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: PLW1510 - exit codes are asserted
        [script("proxystore-endpoint"), *args],
        env={**os.environ, "PROXYSTORE_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_endpoint_connector_example_across_two_hosts(
    hosts: tuple[EndpointProcess, EndpointProcess], tmp_path: Path
) -> None:
    a, b = hosts
    proxy_file = tmp_path / "proxy.pkl"
    code = _HOST_A.replace("{uuid_a}", a.uuid).replace("{uuid_b}", b.uuid)
    _python(a.home, code, str(proxy_file))
    # The proxy is a thin reference: the object itself stayed in endpoint A.
    assert len(proxy_file.read_bytes()) < 2000
    assert "resolved 1000" in _python(b.home, _HOST_B, str(proxy_file))
    # Host A resolves it too, from its home endpoint.
    assert "resolved 1000" in _python(a.home, _HOST_B, str(proxy_file))


def test_endpoint_api_examples_solo_and_peering(tmp_path: Path) -> None:
    relay = start_relay(tmp_path / "relay")
    try:
        assert _python(tmp_path, _ENDPOINT_API, relay.address).strip() == "ok"
    finally:
        relay.stop()


def test_client_functions_with_a_requests_session(
    hosts: tuple[EndpointProcess, EndpointProcess],
) -> None:
    a, b = hosts
    out = _python(a.home, _CLIENT, a.address, b.uuid, f"http://127.0.0.1:{free_port()}")
    assert out.splitlines() == [
        "unreachable: EndpointConnectionError",
        "refused: 413",
        "unreachable without a session: EndpointConnectionError",
    ]


def test_debugging_guide_test_cli_and_rest_request(
    hosts: tuple[EndpointProcess, EndpointProcess],
) -> None:
    a, b = hosts
    done = _cli(a.home, "test", "myendpoint", "exists", "abcdef")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Object exists: False"

    done = _cli(a.home, "test", "--remote", b.uuid, "myendpoint", "exists", "abcdef")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Object exists: False"

    with urllib.request.urlopen(f"{a.address}/exists?key=abcdef", timeout=10) as r:
        assert json.loads(r.read()) == {"exists": False}

    # put on B through A, then read it on B's own endpoint and through A.
    done = _cli(a.home, "test", "--remote", b.uuid, "myendpoint", "put", "hello")
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip().split()[-1]
    done = _cli(b.home, "test", "otherendpoint", "get", key)
    assert done.stdout.strip() == "Result: hello"
    done = _cli(a.home, "test", "--remote", b.uuid, "myendpoint", "get", key)
    assert done.stdout.strip() == "Result: hello"
    done = _cli(a.home, "test", "--remote", b.uuid, "myendpoint", "evict", key)
    assert done.returncode == 0, done.stderr
    done = _cli(b.home, "test", "otherendpoint", "exists", key)
    assert done.stdout.strip() == "Object exists: False"


def test_endpoints_guide_configure_start_stop(tmp_path: Path) -> None:
    """`configure`, `start` (a daemon, the default), `list`, `stop`, `remove`."""
    home = tmp_path / "home"
    port = free_port()
    done = _cli(
        home,
        "configure",
        "my-endpoint",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-relay-server",
    )
    assert done.returncode == 0, done.stderr
    assert "proxystore-endpoint start my-endpoint" in done.stdout
    started = _cli(home, "start", "my-endpoint")
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        listed = _cli(home, "list")
        assert "RUNNING" in listed.stdout
        done = _cli(home, "test", "my-endpoint", "exists", "abcdef")
        assert done.stdout.strip() == "Object exists: False"
    finally:
        stopped = _cli(home, "stop", "my-endpoint")
    assert stopped.returncode == 0, stopped.stderr
    assert "has been stopped" in stopped.stdout
    assert "STOPPED" in _cli(home, "list").stdout
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert _cli(home, "remove", "my-endpoint").returncode == 0
