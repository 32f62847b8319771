"""WebRTC peers in separate processes, introduced by a relay process, on loopback.

The relay is the real `proxystore-relay` console script; each remote peer is
`tests.integration.harness.p2p_peer` in its own process; the local peer is a
`PeerManager` in the test process. ICE offers 127.0.0.1 only and no ICE servers are
configured, so no packet leaves loopback. Faults: a malformed relay message, the relay
killed and restarted, and a peer killed mid-transfer (in both directions).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import subprocess
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from proxystore.p2p.exceptions import PeerConnectionError, PeerConnectionTimeoutError
from proxystore.p2p.manager import PeerManager
from proxystore.p2p.relay.client import RelayClient
from tests.integration.harness.relay import PeerProcess as Peer
from tests.integration.harness.relay import (
    RelayProcess,
    peers,
    relay_script,
    running_relay,
)

pytestmark = pytest.mark.integration

T = TypeVar("T")
MB100 = 100 * 1_000_000


def run(coro: Coroutine[Any, Any, T], timeout: float = 280) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[RelayProcess]:
    with running_relay(tmp_path) as process:
        yield process


@pytest.fixture
def start_peer(relay: RelayProcess) -> Iterator[Callable[..., Peer]]:
    with peers(relay) as start:
        yield start


def manager(relay: RelayProcess, **kwargs: Any) -> PeerManager:
    client = RelayClient(relay.address, client_name="test", initial_backoff=0.2)
    return PeerManager(
        client, ice_servers=[], ice_addresses=["127.0.0.1"], timeout=30, **kwargs
    )


def digest(data: bytes) -> str:
    return f"{len(data)}:{hashlib.sha256(data).hexdigest()}"


def test_relay_console_script_help() -> None:
    done = subprocess.run(
        [relay_script(), "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    for option in ("--config", "--host", "--port", "--log-dir", "--log-level"):
        assert option in done.stdout


def test_relay_rejects_a_bad_config_file(tmp_path: Path) -> None:
    bad = tmp_path / "relay.toml"
    bad.write_text("port = 'nope'\n")
    done = subprocess.run(
        [relay_script(), "--config", str(bad)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode != 0
    assert "Cannot read relay config" in done.stderr
    assert "Traceback" not in done.stderr


def test_malformed_relay_message_closes_only_that_socket(relay: RelayProcess) -> None:
    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(relay.address)
            await ws.send_str('{"message_type": "relay_registration", "uuid": 5}')
            msg = await ws.receive(timeout=10)
            assert msg.type is aiohttp.WSMsgType.CLOSE
            assert ws.close_code == 4000
        async with RelayClient(relay.address) as client:
            assert client.connected

    run(main())
    assert relay.alive()


@pytest.mark.timeout(900)
def test_small_and_100mb_messages_cross_processes(
    relay: RelayProcess, start_peer: Callable[..., Peer]
) -> None:
    peer = start_peer()

    async def main() -> None:
        async with manager(relay) as local:
            for i in range(1000):
                message = i.to_bytes(4, "big") * (i % 50 + 1)
                await local.send(peer.uuid, message)
                assert await local.recv(timeout=30) == (peer.uuid, message)
            big = bytes(range(256)) * (MB100 // 256) + b"end"
            await local.send(peer.uuid, big, timeout=120)
            source, reply = await local.recv(timeout=600)
            assert (source, reply) == (peer.uuid, digest(big))

    run(main(), timeout=850)


def test_relay_killed_and_restarted(
    relay: RelayProcess, start_peer: Callable[..., Peer]
) -> None:
    peer = start_peer()

    async def main() -> None:
        async with manager(relay) as local:
            await local.send(peer.uuid, b"before")
            assert await local.recv(timeout=30) == (peer.uuid, b"before")
            relay.kill()
            # The established connection does not need the relay.
            for i in range(20):
                await local.send(peer.uuid, b"during %d" % i)
                assert await local.recv(timeout=30) == (peer.uuid, b"during %d" % i)
            relay.start()
            # Both clients come back: a newcomer can reach the peer via the relay.
            async with manager(relay) as newcomer:
                deadline = asyncio.get_running_loop().time() + 60
                while True:
                    try:
                        await newcomer.send(peer.uuid, b"after", timeout=15)
                        break
                    except PeerConnectionError:
                        # The peer has not re-registered yet.
                        if asyncio.get_running_loop().time() > deadline:
                            raise
                        await asyncio.sleep(0.5)
                assert await newcomer.recv(timeout=30) == (peer.uuid, b"after")
            for _ in range(100):
                if local.relay_client.connected:
                    break
                await asyncio.sleep(0.1)
            assert local.relay_client.connected
            await local.send(peer.uuid, b"still")
            assert await local.recv(timeout=30) == (peer.uuid, b"still")

    run(main())


def test_peer_killed_while_receiving(
    relay: RelayProcess, start_peer: Callable[..., Peer]
) -> None:
    victim = start_peer()
    survivor = start_peer()

    async def main() -> None:
        closed: asyncio.Queue[uuid.UUID] = asyncio.Queue()
        async with manager(relay) as local:
            local.on_peer_closed(closed.put_nowait)
            await local.send(victim.uuid, b"hi")
            assert await local.recv(timeout=30) == (victim.uuid, b"hi")
            loop = asyncio.get_running_loop()
            loop.call_later(1.0, victim.kill)
            start = loop.time()
            with pytest.raises(PeerConnectionError):
                await local.send(victim.uuid, b"\x00" * MB100, timeout=5)
            assert loop.time() - start < 120
            assert await asyncio.wait_for(closed.get(), 90) == victim.uuid
            # Others are unaffected.
            await local.send(survivor.uuid, b"ok")
            assert await local.recv(timeout=30) == (survivor.uuid, b"ok")

    run(main())


def test_peer_killed_while_sending(
    relay: RelayProcess,
    start_peer: Callable[..., Peer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        closed: asyncio.Queue[uuid.UUID] = asyncio.Queue()
        async with manager(relay) as local:
            local.on_peer_closed(closed.put_nowait)
            sender = await asyncio.to_thread(
                start_peer, "--send", str(local.uuid), str(MB100)
            )
            loop = asyncio.get_running_loop()
            await asyncio.sleep(2.0)  # part of the message is through
            sender.kill()
            with pytest.raises(PeerConnectionTimeoutError):
                await local.recv(timeout=3)
            assert await asyncio.wait_for(closed.get(), 90) == sender.uuid
            del loop

    with caplog.at_level(logging.WARNING, logger="proxystore.p2p.connection"):
        run(main())
    assert "truncated" in caplog.text
