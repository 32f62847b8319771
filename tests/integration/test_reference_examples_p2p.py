"""ProxyStore 1.1.0's documented p2p/relay usage, run unchanged against ours.

Each example is our own transcription of what the reference's guides and docstrings
show (the relay serving guide, the `RelayClient`, `PeerManager` and `PeerConnection`
examples, the NAT check) and runs as a separate Python process, as a user's program
would, against a relay in another process. The relay is served three ways: the
`proxystore-relay` console script and `python -m proxystore.p2p.relay.run` exactly as
the guide types them (`--port P` only), and a user's own program calling
`websockets.serve(server.handler, host, port)`.

The docstrings' `BasicRelayClient` (a name older than 1.1.0, which has none) is
written as `RelayClient`, and the two managers of the `PeerManager` example get one
relay client each (one client cannot register twice). The guide's Globus client
example needs Globus itself and is not run here.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness.ports import free_port
from tests.integration.harness.servers import ServerAddress, wait_for_tcp

pytestmark = pytest.mark.integration

_ROOT = Path(__file__).resolve().parents[2]

WEBSOCKETS_RELAY = """
import asyncio, sys

import websockets

from proxystore.p2p.relay.authenticate import NullAuthenticator
from proxystore.p2p.relay.server import RelayServer


async def main() -> None:
    server = RelayServer(NullAuthenticator())
    async with websockets.serve(server.handler, '127.0.0.1', int(sys.argv[1])):
        await asyncio.Future()


asyncio.run(main())
"""

RELAY_CLIENT = """
import asyncio, sys, uuid

from proxystore.p2p.relay.client import RelayClient
from proxystore.p2p.relay.messages import PeerConnectionRequest


async def main() -> None:
    async with RelayClient(sys.argv[1]) as client:
        # A request to an unknown peer comes back with an error.
        await client.send(
            PeerConnectionRequest(client.uuid, client.name, uuid.uuid4(), 'offer', 'x')
        )
        message = await client.recv()
        assert message.error is not None
        pong_waiter = await client.websocket.ping()
        await asyncio.wait_for(pong_waiter, 5)

    client = await RelayClient(sys.argv[1])
    await client.close()
    print('RELAY CLIENT OK')


asyncio.run(main())
"""

PEER_MANAGER = """
import asyncio, sys

from proxystore.p2p.manager import PeerManager
from proxystore.p2p.relay.client import RelayClient


async def main() -> None:
    relay_server_address = sys.argv[1]
    pm1 = await PeerManager(RelayClient(relay_server_address))
    pm2 = await PeerManager(RelayClient(relay_server_address))

    await pm1.send(pm2.uuid, 'hello hello')
    source_uuid, message = await pm2.recv()
    assert source_uuid == pm1.uuid
    assert message == 'hello hello'

    await pm1.close()
    await pm2.close()

    async with PeerManager(RelayClient(relay_server_address)) as manager:
        assert manager.relay_client.uuid == manager.uuid
    print('PEER MANAGER OK')


asyncio.run(main())
"""

PEER_CONNECTION = """
import asyncio, sys

from proxystore.p2p.connection import PeerConnection
from proxystore.p2p.relay.client import RelayClient


async def main() -> None:
    relay_server_address = sys.argv[1]
    client1 = RelayClient(relay_server_address)
    await client1.connect()
    connection1 = PeerConnection(client1)

    client2 = RelayClient(relay_server_address)
    await client2.connect()
    connection2 = PeerConnection(client2)

    await connection1.send_offer(client2.uuid)
    offer = await client2.recv()
    await connection2.handle_server_message(offer)
    answer = await client1.recv()
    await connection1.handle_server_message(answer)

    await connection1.ready()
    await connection2.ready()

    await connection1.send('hello')
    assert await connection2.recv() == 'hello'
    await connection2.send('hello hello')
    assert await connection1.recv() == 'hello hello'

    await client1.close()
    await client2.close()
    await connection1.close()
    await connection2.close()
    print('PEER CONNECTION OK')


asyncio.run(main())
"""

# Two programs, each with its own manager: one answers, the other asks.
ECHO_PEER = """
import asyncio, sys, uuid

from proxystore.p2p.manager import PeerManager
from proxystore.p2p.relay.client import RelayClient


async def main() -> None:
    client = RelayClient(sys.argv[1], client_uuid=uuid.UUID(sys.argv[2]))
    async with PeerManager(client) as manager:
        print('READY', flush=True)
        source, message = await manager.recv()
        await manager.send(source, message[::-1])
        await asyncio.sleep(1)  # let the reply leave before closing


asyncio.run(main())
"""

ASKING_PEER = """
import asyncio, sys, uuid

from proxystore.p2p.manager import PeerManager
from proxystore.p2p.relay.client import RelayClient


async def main() -> None:
    async with PeerManager(RelayClient(sys.argv[1])) as manager:
        peer = uuid.UUID(sys.argv[2])
        await manager.send(peer, b'olleh')
        assert await manager.recv() == (peer, b'hello')
    print('ASKING PEER OK')


asyncio.run(main())
"""

# Started before the relay: retries on OSError as reference users do.
RETRYING_CLIENT = """
import asyncio, sys

from proxystore.p2p.relay.client import RelayClient


async def main() -> None:
    client = RelayClient(sys.argv[1])
    failures = 0
    while True:
        try:
            await client.connect(retry=False)
            break
        except OSError:
            failures += 1
            await asyncio.sleep(0.2)
    await client.close()
    print(f'RETRYING CLIENT OK after {failures} failures')


asyncio.run(main())
"""

NAT_CHECK = """
import asyncio, logging

from proxystore.p2p.nat import NatType, check_nat_and_log

logging.basicConfig(level=logging.INFO)
asyncio.run(check_nat_and_log())
assert NatType.Symmetric.value == 'Symmetric NAT'
print('NAT CHECK OK')
"""


def _script(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    assert found is not None, f"{name} is not installed next to {sys.executable}"
    return found


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def relay_process(kind: str, port: int, log: Path) -> Iterator[str]:
    """Start a relay the way `kind` names; yield its address once it listens."""
    command = {
        "proxystore-relay": [_script("proxystore-relay"), "--port", str(port)],
        "python -m": [
            sys.executable,
            "-m",
            "proxystore.p2p.relay.run",
            "--port",
            str(port),
        ],
        "websockets.serve": [sys.executable, "-c", WEBSOCKETS_RELAY, str(port)],
    }[kind]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while not wait_for_tcp(ServerAddress("127.0.0.1", port)):
            assert process.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, f"relay not listening on {port}"
            time.sleep(0.05)
        yield f"ws://localhost:{port}"
    finally:
        _stop(process)


def run_example(source: str, *args: str, timeout: float = 120) -> str:
    """Run an example program to completion; return its output."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source), *args],
        cwd=_ROOT,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    output = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 0, output
    return output


@pytest.mark.parametrize("kind", ["proxystore-relay", "python -m", "websockets.serve"])
def test_reference_examples_against_a_relay_process(kind: str, tmp_path: Path) -> None:
    with relay_process(kind, free_port(), tmp_path / "relay.log") as address:
        assert "RELAY CLIENT OK" in run_example(RELAY_CLIENT, address)
        assert "PEER MANAGER OK" in run_example(PEER_MANAGER, address)
        assert "PEER CONNECTION OK" in run_example(PEER_CONNECTION, address)


def test_peers_in_two_processes_exchange_messages(tmp_path: Path) -> None:
    with relay_process("proxystore-relay", free_port(), tmp_path / "relay.log") as a:
        echo_uuid = str(uuid.uuid4())
        echo = subprocess.Popen(
            [sys.executable, "-c", ECHO_PEER, a, echo_uuid],
            cwd=_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            assert echo.stdout is not None
            assert echo.stdout.readline().decode().strip() == "READY"
            assert "ASKING PEER OK" in run_example(ASKING_PEER, a, echo_uuid)
            assert echo.wait(30) == 0
        finally:
            _stop(echo)
            if echo.stdout is not None:
                echo.stdout.close()


def test_client_retrying_on_oserror_gets_in_once_the_relay_is_up(
    tmp_path: Path,
) -> None:
    port = free_port()
    client = subprocess.Popen(
        [sys.executable, "-c", RETRYING_CLIENT, f"ws://localhost:{port}"],
        cwd=_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        time.sleep(1.5)  # a few refused attempts first
        assert client.poll() is None
        with relay_process("python -m", port, tmp_path / "relay.log"):
            output, _ = client.communicate(timeout=60)
        assert client.returncode == 0, output.decode()
        failures = int(output.decode().split("after ")[1].split()[0])
        assert failures >= 1
    finally:
        _stop(client)


def test_nat_check_as_the_reference_documents_it() -> None:
    # No STUN server is reachable from the test machine: the check must say so
    # within its timeout and return, from Python and from the CLI.
    output = run_example(NAT_CHECK, timeout=60)
    assert "NAT CHECK OK" in output
    assert "Checking NAT" in output
    done = subprocess.run(
        [_script("proxystore-endpoint"), "check-nat"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert "NAT" in (done.stdout + done.stderr).decode()
