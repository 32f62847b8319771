"""Attacks on the relay's notion of identity, against a real relay process.

The relay is the `proxystore-relay` console script on a loopback port; victims are our
`RelayClient`/`PeerManager` (in this process or in a `p2p_peer` process) and attackers
are raw websockets that write whatever they like. Each test is one proof from the
security review: taking over a live UUID, forging `source_uuid`, leaving ghost
registrations behind, crashing the handler with deep nesting, and an endpoint that
crashed or hung getting its UUID back quickly.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from proxystore.p2p.manager import PeerManager
from proxystore.p2p.relay.client import RelayClient
from proxystore.p2p.relay.messages import (
    PeerConnectionRequest,
    RelayMessage,
    RelayRegistrationRequest,
    RelayResponse,
    decode_relay_message,
    encode_relay_message,
)
from tests.integration.harness.mode import in_ci
from tests.integration.harness.relay import (
    PeerProcess,
    RelayProcess,
    peers,
    running_relay,
)

pytestmark = pytest.mark.integration

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[RelayProcess]:
    with running_relay(tmp_path) as process:
        yield process


@pytest.fixture
def start_peer(relay: RelayProcess) -> Iterator[Callable[..., PeerProcess]]:
    with peers(relay) as start:
        yield start


class RawClient:
    """An attacker's websocket: sends any text, reads any reply."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def send(self, message: RelayMessage | str) -> None:
        text = message if isinstance(message, str) else encode_relay_message(message)
        await self.ws.send_str(text)

    async def register(self, me: uuid.UUID, name: str = "mallory") -> int | None:
        """Register as `me`; return `None` when accepted, else the close code."""
        await self.send(RelayRegistrationRequest(name, me))
        reply = await self.ws.receive(timeout=15)
        if reply.type is aiohttp.WSMsgType.TEXT:
            assert decode_relay_message(reply.data) == RelayResponse(success=True)
            return None
        return self.ws.close_code

    async def closed_with(self, wait: float = 15) -> int | None:
        """Read until the relay closes the socket; return its close code."""
        async with asyncio.timeout(wait):
            while not self.ws.closed:
                message = await self.ws.receive()
                if message.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR,
                ):
                    break
        return self.ws.close_code


async def raw(session: aiohttp.ClientSession, relay: RelayProcess) -> RawClient:
    return RawClient(await session.ws_connect(relay.address, autoping=True))


async def offer_is_bounced(
    sender: RelayClient, target: uuid.UUID, wait: float = 10
) -> bool:
    """Whether an offer to `target` comes back with an error (target unknown)."""
    await sender.send(PeerConnectionRequest(sender.uuid, "s", target, "offer", "{}"))
    try:
        reply = await sender.recv(timeout=wait)
    except TimeoutError:
        return False
    assert isinstance(reply, PeerConnectionRequest)
    return reply.error is not None and "not registered" in reply.error


def test_live_uuid_cannot_be_hijacked(relay: RelayProcess) -> None:
    async def main() -> None:
        async with (
            RelayClient(relay.address, client_name="victim") as victim,
            RelayClient(relay.address, client_name="peer") as peer,
            aiohttp.ClientSession() as session,
        ):
            hijacker = await raw(session, relay)
            assert await hijacker.register(victim.uuid) == 4004
            # Offers for the victim still reach the victim.
            offer = PeerConnectionRequest(peer.uuid, "peer", victim.uuid, "offer", "x")
            await peer.send(offer)
            assert await victim.recv(timeout=10) == offer
            assert victim.connected

    run(main())


def test_forged_source_uuid_is_replaced_by_the_registered_one(
    relay: RelayProcess,
) -> None:
    async def main() -> None:
        async with (
            RelayClient(relay.address, client_name="victim") as victim,
            RelayClient(relay.address, client_name="target") as target,
            aiohttp.ClientSession() as session,
        ):
            mallory = await raw(session, relay)
            me = uuid.uuid4()
            assert await mallory.register(me) is None
            forged = PeerConnectionRequest(
                victim.uuid, "victim", target.uuid, "offer", "sdp", error="fake"
            )
            await mallory.send(forged)
            received = await target.recv(timeout=10)
            assert isinstance(received, PeerConnectionRequest)
            assert received.source_uuid == me
            assert received.source_name == "mallory"
            assert received.error is None
            assert received.description == "sdp"

    run(main())


def test_forged_offer_does_not_replace_an_established_connection(
    relay: RelayProcess, start_peer: Callable[..., PeerProcess]
) -> None:
    peer = start_peer()

    async def main() -> None:
        client = RelayClient(relay.address, client_name="local", initial_backoff=0.2)
        async with (
            PeerManager(
                client, ice_servers=[], ice_addresses=["127.0.0.1"], timeout=30
            ) as local,
            aiohttp.ClientSession() as session,
        ):
            await local.send(peer.uuid, b"before")
            assert await local.recv(timeout=30) == (peer.uuid, b"before")
            before = await local.get_connection(peer.uuid)
            mallory = await raw(session, relay)
            assert await mallory.register(uuid.uuid4()) is None
            # An offer claiming to come from the peer, addressed to us.
            await mallory.send(
                PeerConnectionRequest(peer.uuid, "p", local.uuid, "offer", "{}")
            )
            await asyncio.sleep(1.0)
            assert await local.get_connection(peer.uuid) is before
            await local.send(peer.uuid, b"after")
            assert await local.recv(timeout=30) == (peer.uuid, b"after")

    run(main())


def test_a_closed_connection_leaves_no_ghost_registrations(
    relay: RelayProcess,
) -> None:
    async def main() -> None:
        claimed = [uuid.uuid4() for _ in range(200)]
        async with aiohttp.ClientSession() as session:
            mallory = await raw(session, relay)
            for value in claimed:
                try:
                    await mallory.send(RelayRegistrationRequest("ghost", value))
                except (ConnectionError, RuntimeError):
                    break  # the relay closed the socket
            await mallory.ws.close()
        await asyncio.sleep(0.5)
        async with RelayClient(relay.address, client_name="probe") as probe:
            for value in (claimed[0], claimed[1], claimed[-1]):
                assert await offer_is_bounced(probe, value), value
            # The rightful owner of a claimed UUID registers at once.
            owner = RelayClient(relay.address, client_uuid=claimed[1])
            await owner.connect(retry=False)
            await owner.close()

    run(main())


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,
        '{"message_type": "RelayResponse", "message": ' + "[" * 100_000,
        "{" + '"a":{' * 50_000,
        json.dumps({"message_type": "PeerConnectionRequest", "source_uuid": [1]}),
        json.dumps({"message_type": ["RelayResponse"]}),
        json.dumps({"message_type": "RelayRegistrationRequest", "name": 1}),
        '{"message_type": "RelayResponse", "success": 1' + "0" * 10_000 + "}",
    ],
    ids=[
        "brackets",
        "nested-field",
        "objects",
        "list-uuid",
        "list-type",
        "int-name",
        "huge-int",
    ],
)
def test_malformed_input_is_a_close_code_not_a_traceback(
    relay: RelayProcess, text: str
) -> None:
    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            mallory = await raw(session, relay)
            await mallory.send(text)
            assert await mallory.closed_with() == 4000
        async with RelayClient(relay.address) as client:
            assert client.connected

    run(main())
    assert relay.alive()
    log = relay.log.read_text(errors="replace")
    assert "Traceback" not in log
    assert "RecursionError" not in log


def test_huge_message_is_refused_without_reading_it_all(relay: RelayProcess) -> None:
    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            mallory = await raw(session, relay)
            assert await mallory.register(uuid.uuid4()) is None
            huge = PeerConnectionRequest(
                uuid.uuid4(), "m", uuid.uuid4(), "offer", "x" * 8_000_000
            )
            try:
                await mallory.send(huge)
            except ConnectionError:
                pass  # the relay hung up before taking it all: that is the point
            else:
                assert await mallory.closed_with() in (1009, 4003)
            finally:
                await mallory.ws.close()
        async with RelayClient(relay.address) as client:
            assert client.connected

    run(main())
    assert "Traceback" not in relay.log.read_text(errors="replace")


def _reregister_seconds(relay: RelayProcess, me: uuid.UUID) -> float:
    async def main() -> float:
        start = time.monotonic()
        client = RelayClient(relay.address, client_uuid=me, initial_backoff=0.2)
        await client.connect()
        elapsed = time.monotonic() - start
        await client.close()
        return elapsed

    return run(main())


def test_crashed_endpoint_reregisters_within_seconds(
    relay: RelayProcess, start_peer: Callable[..., PeerProcess]
) -> None:
    peer = start_peer()
    peer.kill()
    assert _reregister_seconds(relay, peer.uuid) < 3.0


def test_hung_endpoint_is_replaced_within_seconds(
    relay: RelayProcess, start_peer: Callable[..., PeerProcess]
) -> None:
    # A stopped process keeps its TCP connection open but answers no ping: the
    # relay cannot tell it from a host cut off the network.
    peer = start_peer()
    peer.signal(signal.SIGSTOP)
    try:
        assert _reregister_seconds(relay, peer.uuid) < 5.0
    finally:
        peer.signal(signal.SIGCONT)


def test_a_transient_takeover_does_not_stick(
    relay: RelayProcess, start_peer: Callable[..., PeerProcess]
) -> None:
    # The victim pauses; meanwhile someone registers its UUID, then goes away.
    # When the victim resumes it must get its UUID back and be reachable again.
    victim = start_peer()

    async def main() -> None:
        victim.signal(signal.SIGSTOP)
        try:
            async with aiohttp.ClientSession() as session:
                squatter = await raw(session, relay)
                assert await squatter.register(victim.uuid) is None
                await squatter.ws.close()
        finally:
            victim.signal(signal.SIGCONT)
        client = RelayClient(relay.address, client_name="local", initial_backoff=0.2)
        async with PeerManager(
            client, ice_servers=[], ice_addresses=["127.0.0.1"], timeout=10
        ) as local:
            deadline = time.monotonic() + 30
            while True:
                try:
                    await local.send(victim.uuid, b"are you back?", timeout=10)
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.5)
            assert await local.recv(timeout=30) == (victim.uuid, b"are you back?")

    run(main())


# --------------------------------------------------- reference 1.1.0 clients

_REFERENCE_CLIENT = """
import asyncio, json, sys, uuid
from proxystore.p2p.relay.client import RelayClient
from proxystore.p2p.relay.exceptions import RelayRegistrationError

async def main(address, me, mode):
    client = RelayClient(
        address, client_uuid=uuid.UUID(me), client_name="ref", reconnect_task=False
    )
    try:
        await client.connect(retry=False)
    except Exception as exc:
        print(json.dumps({"registered": False, "error": repr(exc)}), flush=True)
        return
    print(json.dumps({"registered": True}), flush=True)
    if mode == "recv":
        message = await asyncio.wait_for(client.recv(), 60)
        print(json.dumps({"source_uuid": str(message.source_uuid),
                          "source_name": message.source_name,
                          "error": message.error}), flush=True)
    else:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await client.close()

asyncio.run(main(*sys.argv[1:4]))
"""


@pytest.fixture(scope="module")
def reference_python() -> str:
    from scripts.bench import _refvenv

    try:
        _refvenv.ensure()
    except (OSError, subprocess.CalledProcessError) as exc:
        if in_ci():
            pytest.fail(f"reference venv unavailable: {exc}")
        pytest.skip(f"reference venv unavailable: {exc}")
    return str(_refvenv.python())


class _ReferenceClient:
    def __init__(self, python: str, relay: RelayProcess, me: uuid.UUID, mode: str):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        self.process = subprocess.Popen(
            [python, "-c", _REFERENCE_CLIENT, relay.address, str(me), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=relay.workdir,
        )

    def line(self, timeout: float = 60) -> dict[str, Any]:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        assert ready, "the reference client printed nothing"
        result: dict[str, Any] = json.loads(self.process.stdout.readline())
        return result

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def test_reference_clients_keep_their_identity(
    relay: RelayProcess, reference_python: str
) -> None:
    me = uuid.uuid4()
    holder = _ReferenceClient(reference_python, relay, me, "recv")
    try:
        assert holder.line() == {"registered": True}
        # A second reference client with the same UUID is refused while the first
        # lives (4004: the reference itself reads it as "running elsewhere").
        second = _ReferenceClient(reference_python, relay, me, "hold")
        try:
            refused = second.line()
            assert refused["registered"] is False
            assert "4004" in refused["error"]
        finally:
            second.stop()

        async def forge() -> uuid.UUID:
            async with aiohttp.ClientSession() as session:
                mallory = await raw(session, relay)
                sender = uuid.uuid4()
                assert await mallory.register(sender) is None
                await mallory.send(
                    PeerConnectionRequest(uuid.uuid4(), "x", me, "offer", "{}")
                )
                await asyncio.sleep(0.5)
                await mallory.ws.close()
                return sender

        sender = run(forge())
        assert holder.line() == {
            "source_uuid": str(sender),
            "source_name": "mallory",
            "error": None,
        }
    finally:
        holder.stop()
    # Once it is gone, the UUID is free again at once.
    again = _ReferenceClient(reference_python, relay, me, "hold")
    try:
        assert again.line() == {"registered": True}
    finally:
        again.stop()
