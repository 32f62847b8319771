"""The p2p/relay API as ProxyStore 1.1.0's users see it.

Names, exception types and transports that code written against the reference
release relies on: `NatType`, connection errors that are `OSError`s, a relay served
by the `websockets` library, `RuntimeError` for a manager that was never started,
and aiortc's `InvalidStateError` for a send after the peer closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import socket
import uuid
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

import pytest
import websockets
from aiohttp import web
from aiortc.exceptions import InvalidStateError
from websockets.asyncio.client import ClientConnection

from proxystore.p2p.connection import PeerConnection
from proxystore.p2p.exceptions import PeerConnectionClosedError, PeerConnectionError
from proxystore.p2p.manager import PeerManager
from proxystore.p2p.nat import NatMapping, NatType, Result, check_nat_and_log
from proxystore.p2p.relay.authenticate import NullAuthenticator, TokenAuthenticator
from proxystore.p2p.relay.client import RelayClient
from proxystore.p2p.relay.exceptions import (
    RelayConnectionError,
    RelayRegistrationError,
)
from proxystore.p2p.relay.messages import PeerConnectionRequest
from proxystore.p2p.relay.server import RelayServer

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 120))


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def websockets_relay(
    server: RelayServer[Any] | None = None, port: int = 0
) -> AsyncIterator[str]:
    """Serve a relay the way the reference's users do: `websockets.serve`."""
    relay = RelayServer(NullAuthenticator()) if server is None else server
    async with websockets.serve(relay.handler, "127.0.0.1", port) as served:
        bound = next(iter(served.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{bound}"


@contextlib.asynccontextmanager
async def aiohttp_relay(server: RelayServer[Any] | None = None) -> AsyncIterator[str]:
    """Serve a relay from our aiohttp application (as `proxystore-relay` does)."""
    relay = RelayServer(NullAuthenticator()) if server is None else server
    runner = web.AppRunner(relay.app())
    await runner.setup()
    port = unused_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"ws://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


TRANSPORTS = {"websockets": websockets_relay, "aiohttp": aiohttp_relay}


# -------------------------------------------------------------------- NAT


def test_nat_type_has_the_reference_members() -> None:
    assert {member.name: member.value for member in NatType} == {
        "OpenInternet": "Open Internet (No NAT)",
        "FullCone": "Full-cone NAT",
        "SymmetricUDPFirewall": "Symmetric UDP Firewall NAT",
        "RestrictedCone": "Restricted-cone NAT",
        "PortRestrictedCone": "Port Restricted-cone NAT",
        "Symmetric": "Symmetric NAT",
    }
    assert NatType.from_mapping(NatMapping.NoNat) is NatType.OpenInternet
    assert NatType.from_mapping(NatMapping.AddressDependent) is NatType.Symmetric
    # Hole punching works through every cone; the measured mapping says no more.
    assert NatType.from_mapping(NatMapping.EndpointIndependent) not in (
        NatType.Symmetric,
        NatType.OpenInternet,
    )
    result = Result(NatMapping.AddressDependent, "203.0.113.5", 4000, False)
    assert result.nat_type is NatType.Symmetric


def test_check_nat_and_log_has_the_reference_signature() -> None:
    assert inspect.iscoroutinefunction(check_nat_and_log)
    parameters = list(inspect.signature(check_nat_and_log).parameters.values())
    assert [(p.name, p.default) for p in parameters[:3]] == [
        ("source_ip", "0.0.0.0"),
        ("source_port", 0),
        ("timeout", 2.0),
    ]
    assert all(p.kind is p.KEYWORD_ONLY for p in parameters[3:])


# ---------------------------------------------------------- relay client


def test_relay_not_up_yet_is_an_oserror_and_a_retry_loop_gets_through() -> None:
    async def main() -> None:
        port = unused_port()
        client = RelayClient(f"ws://127.0.0.1:{port}", timeout=2)
        with pytest.raises(OSError, match="Cannot register") as info:
            await client.connect(retry=False)
        assert isinstance(info.value, RelayConnectionError)
        assert not isinstance(info.value, RelayRegistrationError)
        assert not client.refused
        # The loop reference users write around connect(retry=False).
        async with websockets_relay(port=port):
            for _ in range(50):
                try:
                    await client.connect(retry=False)
                    break
                except OSError:
                    await asyncio.sleep(0.1)
            assert client.connected
        await client.close()

    run(main())


def test_a_refusal_by_a_live_relay_is_not_an_oserror() -> None:
    async def main() -> None:
        server = RelayServer(TokenAuthenticator("s3cret"))
        async with websockets_relay(server) as address:
            client = RelayClient(address, timeout=5)
            with pytest.raises(RelayRegistrationError, match="4001") as info:
                await client.connect(retry=False)
            assert not isinstance(info.value, OSError)
            assert client.refused
            await client.close()

    run(main())


# ------------------------------------------------- relay over `websockets`


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_relay_server_forwards_between_clients(transport: str) -> None:
    async def main() -> None:
        server = RelayServer(NullAuthenticator())
        async with (
            TRANSPORTS[transport](server) as address,
            RelayClient(address, client_name="a") as a,
            RelayClient(address, client_name="b") as b,
        ):
            assert {c.uuid for c in server.client_manager.get_clients()} == {
                a.uuid,
                b.uuid,
            }
            request = PeerConnectionRequest(a.uuid, "a", b.uuid, "offer", "sdp")
            await a.send(request)
            assert await b.recv(timeout=5) == request
            # Unknown peers come back to the sender with an error.
            await b.send(PeerConnectionRequest(b.uuid, "b", uuid.uuid4(), "offer", "x"))
            returned = await b.recv(timeout=5)
            assert isinstance(returned, PeerConnectionRequest)
            assert returned.error is not None
        for _ in range(50):
            if not server.client_manager.get_clients():
                break
            await asyncio.sleep(0.05)
        assert server.client_manager.get_clients() == []

    run(main())


def test_live_uuid_holder_answers_the_probe_over_websockets() -> None:
    # Taking a UUID over pings its holder; websockets answers the ping itself and
    # the relay must see that pong (else it would hand the UUID to the newcomer).
    async def main() -> None:
        server = RelayServer(NullAuthenticator(), probe_seconds=2)
        async with websockets_relay(server) as address:
            shared = uuid.uuid4()
            first = await RelayClient(address, client_uuid=shared)
            second = RelayClient(address, client_uuid=shared, timeout=5)
            with pytest.raises(RelayRegistrationError, match="4004"):
                await second.connect(retry=False)
            assert first.connected
            await second.close()
            await first.close()

    run(main())


def test_client_websocket_is_a_websockets_connection() -> None:
    async def main() -> None:
        async with (
            websockets_relay() as address,
            RelayClient(address, initial_backoff=0.05) as client,
        ):
            websocket = client.websocket
            assert isinstance(websocket, ClientConnection)
            pong = await websocket.ping()
            await asyncio.wait_for(pong, 5)
            await websocket.close()
            # The client opens a new connection once the old one is gone.
            await client.connect()
            assert client.websocket is not websocket

    run(main())


# ------------------------------------------------------------------ peers


def test_peer_manager_used_before_await_raises_runtime_error() -> None:
    async def main() -> None:
        manager = PeerManager(RelayClient("ws://127.0.0.1:1"))
        with pytest.raises(RuntimeError, match="await"):
            await manager.send(uuid.uuid4(), b"x")
        with pytest.raises(RuntimeError, match="await"):
            await manager.get_connection(uuid.uuid4())
        with pytest.raises(RuntimeError, match="await"):
            manager.relay_client  # noqa: B018
        await manager.close()

    run(main())


def test_send_after_the_peer_closed_is_aiortcs_invalid_state_error() -> None:
    async def main() -> None:
        async with (
            aiohttp_relay() as address,
            RelayClient(address) as client1,
            RelayClient(address) as client2,
        ):
            options: dict[str, Any] = {
                "ice_servers": [],
                "ice_addresses": ["127.0.0.1"],
            }
            connection1 = PeerConnection(client1, **options)
            connection2 = PeerConnection(client2, **options)
            await connection1.send_offer(client2.uuid)
            offer = await client2.recv(timeout=10)
            assert isinstance(offer, PeerConnectionRequest)
            await connection2.handle_server_message(offer)
            answer = await client1.recv(timeout=10)
            assert isinstance(answer, PeerConnectionRequest)
            await connection1.handle_server_message(answer)
            await connection1.ready(15)
            await connection2.ready(15)
            await connection1.send(b"hello")
            assert await connection2.recv(10) == b"hello"

            await connection1.close()
            for _ in range(200):
                if connection2.closed:
                    break
                await asyncio.sleep(0.05)
            with pytest.raises(InvalidStateError) as info:
                await connection2.send(b"message")
            # Still ours too, with our wording.
            assert isinstance(info.value, PeerConnectionClosedError)
            assert isinstance(info.value, PeerConnectionError)
            assert "closed" in str(info.value)
            with pytest.raises(InvalidStateError):
                await connection1.send(b"message")
            await connection2.close()

    run(main())
