"""Relay server, relay client and peer manager against an in-process relay.

The relay here is the real `RelayServer` served by aiohttp on a loopback port of this
process; WebRTC runs between loopback host candidates only.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from typing import Any, TypeVar

import aiohttp
import aioice.turn
import pytest
from aiohttp import web

from proxystore.p2p.connection import PeerConnection, receive_window
from proxystore.p2p.exceptions import PeerConnectionError, PeerConnectionTimeoutError
from proxystore.p2p.manager import PeerManager
from proxystore.p2p.relay.authenticate import (
    Authenticator,
    NullAuthenticator,
    TokenAuthenticator,
    get_token_from_headers,
)
from proxystore.p2p.relay.client import RelayClient
from proxystore.p2p.relay.exceptions import (
    RelayConnectionError,
    RelayNotConnectedError,
    RelayRegistrationError,
)
from proxystore.p2p.relay.messages import (
    PeerConnectionRequest,
    RelayMessageDecodeError,
    RelayRegistrationRequest,
    RelayResponse,
    decode_relay_message,
    encode_relay_message,
)
from proxystore.p2p.relay.server import RelayServer

T = TypeVar("T")


def loopback_manager(client: RelayClient) -> PeerManager:
    return PeerManager(client, ice_servers=[], ice_addresses=["127.0.0.1"], timeout=15)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 120))


async def serve_on_loopback(runner: web.AppRunner, port: int = 0) -> int:
    """Serve `runner` on 127.0.0.1 and return the bound port."""
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, reuse_address=True)
    await site.start()
    server = site._server  # the port is only known after binding
    assert isinstance(server, asyncio.Server)
    bound: int = server.sockets[0].getsockname()[1]
    return bound


class Relay:
    def __init__(self, authenticator: Authenticator[Any], **kwargs: Any) -> None:
        self.server: RelayServer[Any] = RelayServer(authenticator, **kwargs)
        self.runner = web.AppRunner(self.server.app())
        self.port = 0

    @property
    def address(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.port = await serve_on_loopback(self.runner, self.port)

    async def stop(self) -> None:
        await self.runner.cleanup()
        self.runner = web.AppRunner(self.server.app())


@contextlib.asynccontextmanager
async def relay(
    authenticator: Authenticator[Any] | None = None, **kwargs: Any
) -> AsyncIterator[Relay]:
    r = Relay(authenticator or NullAuthenticator(), **kwargs)
    await r.start()
    try:
        yield r
    finally:
        await r.stop()


async def raw_socket(
    session: aiohttp.ClientSession, address: str
) -> aiohttp.ClientWebSocketResponse:
    return await session.ws_connect(address)


@contextlib.asynccontextmanager
async def scripted_relay(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[str]:
    """Serve one websocket `handler` (a relay playing a script) on loopback."""
    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    port = await serve_on_loopback(runner)
    try:
        yield f"ws://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


# ------------------------------------------------------------------ relay


def test_registration_and_forwarding() -> None:
    async def main() -> None:
        async with relay() as r:
            async with (
                RelayClient(r.address, client_name="a") as a,
                RelayClient(r.address, client_name="b") as b,
            ):
                assert {c.name for c in r.server.client_manager.get_clients()} == {
                    "a",
                    "b",
                }
                request = PeerConnectionRequest(a.uuid, "a", b.uuid, "offer", "sdp")
                await a.send(request)
                assert await b.recv(timeout=5) == request
                unknown = uuid.uuid4()
                await a.send(PeerConnectionRequest(a.uuid, "a", unknown, "offer", "x"))
                bounced = await a.recv(timeout=5)
                assert isinstance(bounced, PeerConnectionRequest)
                assert bounced.error is not None
                assert str(unknown) in bounced.error
            await asyncio.sleep(0.1)
            assert r.server.client_manager.get_clients() == []

    run(main())


@pytest.mark.parametrize(
    ("frame", "code"),
    [("not json", 4000), ('{"message_type": "Nope"}', 4000), (b"\x00", 4000)],
)
def test_malformed_messages_close_the_socket_with_4000(
    frame: str | bytes, code: int
) -> None:
    async def main() -> None:
        async with relay() as r, aiohttp.ClientSession() as session:
            ws = await raw_socket(session, r.address)
            if isinstance(frame, bytes):
                await ws.send_bytes(frame)
            else:
                await ws.send_str(frame)
            msg = await ws.receive(timeout=5)
            assert msg.type is aiohttp.WSMsgType.CLOSE
            assert ws.close_code == code
            # The relay keeps serving others.
            async with RelayClient(r.address) as client:
                assert client.connected

    run(main())


def test_unregistered_forward_and_oversized_messages_are_refused() -> None:
    async def main() -> None:
        async with relay(max_message_bytes=400) as r, aiohttp.ClientSession() as s:
            ws = await raw_socket(s, r.address)
            me, other = uuid.uuid4(), uuid.uuid4()
            request = PeerConnectionRequest(me, "a", other, "offer", "x")
            await ws.send_str(encode_relay_message(request))
            await ws.receive(timeout=5)
            assert ws.close_code == 4002
            ws = await raw_socket(s, r.address)
            await ws.send_str(encode_relay_message(RelayRegistrationRequest("a", me)))
            reply = decode_relay_message((await ws.receive(timeout=5)).data)
            assert reply == RelayResponse(success=True)
            big = PeerConnectionRequest(me, "a", other, "offer", "x" * 1000)
            await ws.send_str(encode_relay_message(big))
            await ws.receive(timeout=5)
            assert ws.close_code == 4003

    run(main())


def test_token_authentication() -> None:
    async def main() -> None:
        async with relay(TokenAuthenticator("s3cret")) as r:
            anonymous = RelayClient(r.address, timeout=5)
            with pytest.raises(RelayRegistrationError, match="4001"):
                await anonymous.connect()
            await anonymous.close()
            bad = RelayClient(
                r.address, extra_headers={"Authorization": "Bearer nope"}, timeout=5
            )
            with pytest.raises(RelayRegistrationError, match="4002"):
                await bad.connect()
            # A refused client is not retried.
            with pytest.raises(RelayRegistrationError):
                await bad.connect()
            await bad.close()
            good = RelayClient(
                r.address, extra_headers={"Authorization": "Bearer s3cret"}
            )
            async with good:
                assert good.connected

    run(main())


def test_live_registration_is_not_taken_over_and_the_newcomer_retries() -> None:
    async def main() -> None:
        async with relay(probe_seconds=0.5) as r:
            shared = uuid.uuid4()
            first = await RelayClient(r.address, client_uuid=shared)
            second = RelayClient(r.address, client_uuid=shared, initial_backoff=0.1)
            with pytest.raises(RelayRegistrationError, match="4004"):
                await second.connect(retry=False)
            assert not second.refused  # 4004 means "not now", not "never"
            holder = r.server.client_manager.get_client_by_uuid(shared)
            assert holder is not None
            assert first.connected
            # Retrying in the background, it gets the UUID once the holder leaves.
            waiting = asyncio.create_task(second.connect())
            await asyncio.sleep(0.3)
            assert not waiting.done()
            await first.close()
            await asyncio.wait_for(waiting, 5)
            assert second.connected
            await second.close()

    run(main())


def test_client_evicted_with_4004_comes_back_with_growing_delays() -> None:
    # A relay (like the reference) that lets every registration replace the last:
    # here each one is taken away right after it succeeds.
    registrations: list[float] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive()
        registrations.append(asyncio.get_running_loop().time())
        await ws.send_str(encode_relay_message(RelayResponse()))
        await asyncio.sleep(0.05)
        await ws.close(code=4004, message=b"Replaced by a new registration.")
        return ws

    async def main() -> None:
        async with scripted_relay(handler) as address:
            client = RelayClient(address, initial_backoff=0.1)
            await client.connect()
            await asyncio.sleep(2.5)
            assert not client.refused
            await client.close()

    run(main())
    # It keeps coming back (4004 is not final) but not in a tight loop:
    # 0.1, 0.2, 0.4, 0.8 s ... between attempts.
    assert 3 <= len(registrations) <= 7, registrations
    gaps = [b - a for a, b in itertools.pairwise(registrations)]
    assert all(later > earlier for earlier, later in itertools.pairwise(gaps))


def test_registrations_follow_their_connection_and_are_bounded() -> None:
    async def main() -> None:
        async with (
            relay(max_registrations=3) as r,
            aiohttp.ClientSession() as session,
        ):
            ws = await raw_socket(session, r.address)
            mine = [uuid.uuid4() for _ in range(4)]
            for value in mine[:3]:
                await ws.send_str(
                    encode_relay_message(RelayRegistrationRequest("m", value))
                )
                reply = await ws.receive(timeout=5)
                assert decode_relay_message(reply.data) == RelayResponse()
            assert len(r.server.client_manager.get_clients()) == 3
            await ws.send_str(
                encode_relay_message(RelayRegistrationRequest("m", mine[3]))
            )
            await ws.receive(timeout=5)
            assert ws.close_code == 4002
            for _ in range(50):
                if not r.server.client_manager.get_clients():
                    break
                await asyncio.sleep(0.05)
            assert r.server.client_manager.get_clients() == []

    run(main())


class _UsersByToken:
    """Each bearer token is its own user (like Globus identities)."""

    def authenticate_user(self, headers: Mapping[str, str]) -> str:
        return get_token_from_headers(headers)


def _as(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {user}"}


def test_identity_is_per_user_and_dies_with_the_connection() -> None:
    async def main() -> None:
        async with (
            relay(_UsersByToken(), probe_seconds=0.5, max_registrations=200) as r,
            aiohttp.ClientSession() as session,
        ):
            victim_uuid = uuid.uuid4()
            # Mallory claims the victim's UUID (and many more) before the victim
            # comes up, then goes away: nothing of it may stay behind.
            ws = await session.ws_connect(r.address, headers=_as("mallory"))
            claimed = [victim_uuid] + [uuid.uuid4() for _ in range(199)]
            for value in claimed:
                await ws.send_str(
                    encode_relay_message(RelayRegistrationRequest("m", value))
                )
                assert decode_relay_message((await ws.receive(timeout=5)).data) == (
                    RelayResponse()
                )
            await ws.close()
            for _ in range(50):
                if not r.server.client_manager.get_clients():
                    break
                await asyncio.sleep(0.05)
            assert r.server.client_manager.get_clients() == []
            victim = RelayClient(
                r.address, client_uuid=victim_uuid, extra_headers=_as("victim")
            )
            await victim.connect(retry=False)
            # While the victim is alive, another user cannot have its UUID.
            thief = RelayClient(
                r.address, client_uuid=victim_uuid, extra_headers=_as("mallory")
            )
            with pytest.raises(RelayRegistrationError, match="4004"):
                await thief.connect(retry=False)
            # Nor reach it: offers across users come back with an error.
            async with RelayClient(r.address, extra_headers=_as("mallory")) as other:
                await other.send(
                    PeerConnectionRequest(other.uuid, "o", victim_uuid, "offer", "x")
                )
                bounced = await other.recv(timeout=5)
                assert isinstance(bounced, PeerConnectionRequest)
                assert bounced.error is not None
                assert "different user" in bounced.error
            await victim.close()
            await thief.close()

    run(main())


def test_a_connection_with_several_uuids_sends_only_as_one_of_them() -> None:
    async def main() -> None:
        async with (
            relay(max_registrations=2) as r,
            aiohttp.ClientSession() as session,
            RelayClient(r.address, client_name="target") as target,
        ):
            ws = await raw_socket(session, r.address)
            mine = [uuid.uuid4(), uuid.uuid4()]
            for value in mine:
                await ws.send_str(
                    encode_relay_message(RelayRegistrationRequest("two", value))
                )
                await ws.receive(timeout=5)
            for source in (mine[1], mine[0]):
                await ws.send_str(
                    encode_relay_message(
                        PeerConnectionRequest(source, "x", target.uuid, "offer", "s")
                    )
                )
                received = await target.recv(timeout=5)
                assert isinstance(received, PeerConnectionRequest)
                assert received.source_uuid == source
                assert received.source_name == "two"
            await ws.send_str(
                encode_relay_message(
                    PeerConnectionRequest(uuid.uuid4(), "x", target.uuid, "offer", "s")
                )
            )
            await ws.receive(timeout=5)
            assert ws.close_code == 4002

    run(main())


def test_bad_limits_are_refused() -> None:
    for kwargs in (
        {"max_message_bytes": 0},
        {"probe_seconds": 0},
        {"heartbeat_seconds": -1},
        {"max_registrations": 0},
    ):
        with pytest.raises(ValueError, match="positive"):
            RelayServer(NullAuthenticator(), **kwargs)


def test_client_reconnects_when_the_relay_returns() -> None:
    async def main() -> None:
        async with relay() as r:
            a = await RelayClient(r.address, client_name="a", initial_backoff=0.1)
            await r.stop()
            await asyncio.sleep(0.3)
            assert not a.connected
            await r.start()
            b = await RelayClient(r.address, client_name="b")
            for _ in range(100):
                if r.server.client_manager.get_client_by_uuid(a.uuid) is not None:
                    break
                await asyncio.sleep(0.05)
            request = PeerConnectionRequest(b.uuid, "b", a.uuid, "offer", "x")
            await b.send(request)
            assert await a.recv(timeout=5) == request
            await a.close()
            await b.close()

    run(main())


def test_client_arguments_and_states() -> None:
    with pytest.raises(ValueError, match="ws://"):
        RelayClient("http://127.0.0.1:1")
    client = RelayClient("wss://127.0.0.1:1", verify_certificate=False)
    assert "127.0.0.1" in repr(client)
    with pytest.raises(RelayNotConnectedError):
        client.websocket  # noqa: B018

    async def main() -> None:
        closed_port = RelayClient("ws://127.0.0.1:1", timeout=1)
        # Nothing listens: a connection error (an OSError), not a refusal.
        with pytest.raises(RelayConnectionError, match="Cannot register") as info:
            await closed_port.connect(retry=False)
        assert isinstance(info.value, OSError)
        assert not isinstance(info.value, RelayRegistrationError)
        await closed_port.close()
        with pytest.raises(RelayNotConnectedError):
            await closed_port.connect()

    run(main())


# ------------------------------------------------------------------ peers


def test_peer_managers_exchange_messages_both_ways() -> None:
    async def main() -> None:
        async with relay() as r:  # noqa: SIM117 - the managers need r
            async with (
                loopback_manager(RelayClient(r.address, client_name="a")) as a,
                loopback_manager(RelayClient(r.address, client_name="b")) as b,
            ):
                await a.send(b.uuid, b"ping")
                assert await b.recv(timeout=15) == (a.uuid, b"ping")
                await b.send(a.uuid, "pong")
                assert await a.recv(timeout=15) == (b.uuid, "pong")
                payload = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4 B: many chunks
                empty = b""
                await asyncio.gather(a.send(b.uuid, payload), a.send(b.uuid, empty))
                got = {(await b.recv(timeout=30))[1] for _ in range(2)}
                assert got == {payload, empty}
                assert a.peers == [b.uuid]
                connection = await a.get_connection(b.uuid)
                assert connection.state == "connected"
                assert connection.peer_uuid == b.uuid

    run(main())


def test_simultaneous_offers_settle_on_one_connection() -> None:
    async def main() -> None:
        async with (
            relay() as r,
            loopback_manager(RelayClient(r.address)) as a,
            loopback_manager(RelayClient(r.address)) as b,
        ):
            await asyncio.gather(a.send(b.uuid, b"1"), b.send(a.uuid, b"2"))
            assert await b.recv(timeout=15) == (a.uuid, b"1")
            assert await a.recv(timeout=15) == (b.uuid, b"2")

    run(main())


def test_unknown_peer_and_timeouts_are_typed_errors() -> None:
    async def main() -> None:
        async with relay() as r, loopback_manager(RelayClient(r.address)) as a:
            with pytest.raises(PeerConnectionError, match="not registered"):
                await a.send(uuid.uuid4(), b"x", timeout=10)
            with pytest.raises(PeerConnectionTimeoutError):
                await a.recv(timeout=0.1)
            with pytest.raises(ValueError, match="itself"):
                await a.get_connection(a.uuid)
            assert a.peers == []

    run(main())


def test_closed_peer_is_reported_and_reconnected() -> None:
    async def main() -> None:
        async with relay() as r:
            closed: asyncio.Queue[uuid.UUID] = asyncio.Queue()
            a = await loopback_manager(RelayClient(r.address))
            a.on_peer_closed(closed.put_nowait)
            b_uuid = uuid.uuid4()
            b = await loopback_manager(RelayClient(r.address, client_uuid=b_uuid))
            await a.send(b.uuid, b"1")
            assert await b.recv(timeout=15) == (a.uuid, b"1")
            await b.close()
            assert await asyncio.wait_for(closed.get(), 30) == b_uuid
            with pytest.raises(PeerConnectionError):
                await a.send(b_uuid, b"2", timeout=3)
            # The peer comes back under the same UUID: a new connection is made.
            b = await loopback_manager(RelayClient(r.address, client_uuid=b_uuid))
            await a.send(b_uuid, b"3")
            assert await b.recv(timeout=15) == (a.uuid, b"3")
            await b.close()
            await a.close()

    run(main())


def test_a_connection_that_never_comes_up_is_dropped_and_retried() -> None:
    # The peer loses our first offer (as when it was not listening yet): that
    # connection stays "connecting" forever. The request waiting on it fails
    # after the manager's bound with a message naming the peer and the ICE
    # state, and the next request makes a fresh offer instead of waiting again.
    async def main() -> None:
        async with (
            relay() as r,
            PeerManager(
                RelayClient(r.address, client_name="a"),
                ice_servers=[],
                ice_addresses=["127.0.0.1"],
                timeout=1.5,
            ) as a,
            loopback_manager(RelayClient(r.address, client_name="b")) as b,
        ):
            handle = b._handle_peer_request
            lost: list[PeerConnectionRequest] = []

            async def lose_first_offer(message: PeerConnectionRequest) -> None:
                if not lost:
                    lost.append(message)
                    return
                await handle(message)

            b._handle_peer_request = lose_first_offer  # type: ignore[method-assign]
            with pytest.raises(PeerConnectionTimeoutError) as info:
                await a.send(b.uuid, b"first", timeout=10)
            assert str(b.uuid)[:8] in str(info.value)
            assert "ICE connection new" in str(info.value)
            assert "remote description not received" in str(info.value)
            assert a.peers == []
            await a.send(b.uuid, b"second", timeout=10)
            assert await b.recv(timeout=15) == (a.uuid, b"second")
            assert len(lost) == 1

    run(main())


def test_a_connection_that_fails_before_it_comes_up_is_replaced_at_once() -> None:
    # The first connection fails while ICE is still checking (here: closed as
    # ICE closes it when no candidate pair works). The request waiting on it
    # makes one fresh connection instead of failing with the dead one's error,
    # and the dead one is not reported as a closed peer (that would fail the
    # requests already waiting for answers over its successor).
    async def main() -> None:
        async with (
            relay() as r,
            loopback_manager(RelayClient(r.address, client_name="a")) as a,
            loopback_manager(RelayClient(r.address, client_name="b")) as b,
        ):
            handle = b._handle_peer_request
            failed: list[PeerConnection] = []

            async def fail_first_offer(message: PeerConnectionRequest) -> None:
                if not failed:
                    failed.append(await a.get_connection(b.uuid))
                    await failed[0].close()
                    return
                await handle(message)

            b._handle_peer_request = fail_first_offer  # type: ignore[method-assign]
            reported: list[uuid.UUID] = []
            a.on_peer_closed(reported.append)
            await a.send(b.uuid, b"after", timeout=10)
            assert await b.recv(timeout=15) == (a.uuid, b"after")
            await asyncio.sleep(0.1)  # close callbacks run in tasks
            assert reported == []
            assert len(failed) == 1
            assert failed[0].closed
            assert await a.get_connection(b.uuid) is not failed[0]

    run(main())


@contextlib.asynccontextmanager
async def connected_managers() -> AsyncIterator[tuple[PeerManager, PeerManager]]:
    """Two loopback peer managers, connected by a first message from a to b."""
    async with (
        relay() as r,
        loopback_manager(RelayClient(r.address)) as a,
        loopback_manager(RelayClient(r.address)) as b,
    ):
        await a.send(b.uuid, b"x")
        assert await b.recv(timeout=15) == (a.uuid, b"x")
        yield a, b


def test_each_side_advertises_a_receive_window_its_socket_can_hold() -> None:
    # A sender leaves slow start at the window its peer advertised (aiortc:
    # 1 MiB); beyond what the receiving UDP socket buffers, packets are dropped.
    async def main() -> None:
        async with connected_managers() as (a, b):
            window = receive_window()
            assert 64 * 2**10 <= window <= aioice.turn.UDP_SOCKET_BUFFER_SIZE
            for manager, peer in ((a, b.uuid), (b, a.uuid)):
                sctp = (await manager.get_connection(peer))._pc.sctp
                assert sctp is not None
                assert sctp._ssthresh == window  # the peer's advertised window

    run(main())


def test_connection_closed_mid_message_reports_the_truncated_stream() -> None:
    async def main() -> None:
        async with relay() as r:
            ca = await RelayClient(r.address)
            cb = await RelayClient(r.address)
            a = PeerConnection(ca, ice_servers=[], ice_addresses=["127.0.0.1"])
            b = PeerConnection(cb, ice_servers=[], ice_addresses=["127.0.0.1"])
            await a.send_offer(cb.uuid)
            offer = await cb.recv(timeout=5)
            assert isinstance(offer, PeerConnectionRequest)
            await b.handle_server_message(offer)
            answer = await ca.recv(timeout=5)
            assert isinstance(answer, PeerConnectionRequest)
            await a.handle_server_message(answer)
            await asyncio.gather(a.ready(10), b.ready(10))
            sender = asyncio.create_task(a.send(b"x" * 50_000_000))
            await asyncio.sleep(1.0)  # some chunks are through, most are not
            await a.close()  # gives up flushing after 2 s
            with pytest.raises(PeerConnectionError):
                await sender
            with pytest.raises(PeerConnectionError, match="Truncated"):
                await b.recv(timeout=30)
            with pytest.raises(PeerConnectionError):
                await b.send(b"y")
            await b.close()
            await ca.close()
            await cb.close()

    run(main())


def test_bad_arguments() -> None:
    async def main() -> None:
        client = RelayClient("ws://127.0.0.1:1")
        with pytest.raises(ValueError, match="not an IP"):
            PeerConnection(client, ice_addresses=["localhost"])
        with pytest.raises(ValueError, match="channels"):
            PeerConnection(client, channels=0)
        with pytest.raises(ValueError, match="peer_channels"):
            PeerManager(client, peer_channels=0)
        with pytest.raises(RuntimeError, match="not started"):
            PeerManager(client).relay_client  # noqa: B018

    run(main())


def test_serve_until_stopped_with_token_auth_and_client_logging(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from proxystore.p2p.relay.config import (
        RelayAuthConfig,
        RelayLoggingConfig,
        RelayServingConfig,
    )
    from proxystore.p2p.relay.run import serve

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = RelayServingConfig(
        host="127.0.0.1",
        port=port,
        auth=RelayAuthConfig("token", {"token": "t0k"}),
        logging=RelayLoggingConfig(current_client_interval=1),
    )

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(serve(config, stop=stop))
        client = RelayClient(
            f"ws://127.0.0.1:{port}",
            extra_headers={"Authorization": "Bearer t0k"},
            initial_backoff=0.05,
        )
        await client.connect()
        await asyncio.sleep(1.5)
        stop.set()
        await asyncio.wait_for(task, 10)
        await client.close()

    with caplog.at_level("INFO", logger="proxystore.p2p.relay.run"):
        run(main())
    assert "Connected clients: 1" in caplog.text
    assert "Relay server stopped" in caplog.text


def test_client_survives_a_malformed_message_from_the_relay() -> None:
    follow_up = PeerConnectionRequest(uuid.uuid4(), "x", uuid.uuid4(), "offer", "sdp")

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive()  # the registration request
        await ws.send_str(encode_relay_message(RelayResponse()))
        await ws.send_str("{garbage")
        await ws.send_str(encode_relay_message(follow_up))
        await ws.receive()  # until the client closes
        return ws

    async def main() -> None:
        async with (
            scripted_relay(handler) as address,
            RelayClient(address) as client,
        ):
            with pytest.raises(RelayMessageDecodeError):
                await client.recv(timeout=5)
            assert await client.recv(timeout=5) == follow_up

    run(main())


def test_manager_starts_while_the_relay_is_down_and_registers_later() -> None:
    async def main() -> None:
        r = Relay(NullAuthenticator())
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            r.port = probe.getsockname()[1]
        client = RelayClient(r.address, client_name="early", initial_backoff=0.1)
        # A short timeout bounds the offer that cannot reach the relay.
        early = PeerManager(
            client, ice_servers=[], ice_addresses=["127.0.0.1"], timeout=1
        )
        await asyncio.wait_for(early.async_init(), 5)  # does not wait for the relay
        assert not client.connected
        with pytest.raises(PeerConnectionError):
            await early.send(uuid.uuid4(), b"x")
        await r.start()
        try:
            async with loopback_manager(RelayClient(r.address)) as late:
                for _ in range(100):
                    if client.connected:
                        break
                    await asyncio.sleep(0.1)
                await late.send(early.uuid, b"hello")
                assert await early.recv(timeout=15) == (late.uuid, b"hello")
            await early.close()
        finally:
            await r.stop()

    run(main())


def test_a_large_message_is_acknowledged_with_fewer_sacks_than_packets() -> None:
    # aiortc alone answers every DATA packet with a SACK (proxystore.p2p._sctp).
    async def main() -> tuple[int, int]:
        async with connected_managers() as (a, b):
            sctp: Any = (await b.get_connection(a.uuid))._pc.sctp
            counts = {"data": 0, "sack": 0}
            send_chunk, receive_data = sctp._send_chunk, sctp._receive_data_chunk

            async def counting_send(chunk: Any) -> None:
                counts["sack"] += type(chunk).__name__ == "SackChunk"
                await send_chunk(chunk)

            async def counting_receive(chunk: Any) -> None:
                counts["data"] += 1
                await receive_data(chunk)

            sctp._send_chunk = counting_send
            sctp._receive_data_chunk = counting_receive
            message = bytes(range(256)) * (4 * 2**12)  # 4 MiB
            await a.send(b.uuid, message)
            assert await b.recv(timeout=60) == (a.uuid, message)
            return counts["data"], counts["sack"]

    data, sacks = run(main())
    assert data >= 4 * 2**20 // 1200, (data, sacks)
    assert sacks <= 0.6 * data, (data, sacks)
