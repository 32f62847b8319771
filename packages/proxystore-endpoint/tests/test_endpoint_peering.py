"""Endpoint forwarding logic, with peers linked by an in-memory message bus.

The bus stands in for the peer manager only here (unit tests); the integration
tests run real relays and WebRTC connections.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import uuid
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web

from proxystore.endpoint._direct import allowed_ip, direct_networks, pin_direct_url
from proxystore.endpoint.endpoint import Endpoint, EndpointMode
from proxystore.endpoint.exceptions import (
    ObjectSizeExceededError,
    PeeringNotAvailableError,
    PeerRequestError,
    PeerTimeoutError,
    UnknownPeerError,
)
from proxystore.endpoint.serve import create_app
from proxystore.endpoint.storage import DictStorage


class _Bus:
    def __init__(self) -> None:
        self.managers: dict[uuid.UUID, _BusManager] = {}
        self.sent: list[tuple[uuid.UUID, uuid.UUID, bytes]] = []


class _BusManager:
    def __init__(self, bus: _Bus, name: str) -> None:
        self.bus = bus
        self.name = name
        self.uuid = uuid.uuid4()
        self.queue: asyncio.Queue[tuple[uuid.UUID, bytes | str]] = asyncio.Queue()
        self.deaf = False
        bus.managers[self.uuid] = self

    async def async_init(self) -> None:
        pass

    async def send(self, peer: uuid.UUID, message: bytes | str) -> None:
        target = self.bus.managers.get(peer)
        if target is None:
            raise ConnectionError(f"unknown peer {peer}")
        assert isinstance(message, bytes)
        self.bus.sent.append((self.uuid, peer, message))
        if not target.deaf:
            target.queue.put_nowait((self.uuid, message))

    async def recv(self) -> tuple[uuid.UUID, bytes | str]:
        return await self.queue.get()

    async def close(self) -> None:
        self.bus.managers.pop(self.uuid, None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pair(
    *, direct: bool = False, timeout: float = 5.0, max_size: int = 1000
) -> tuple[_Bus, Endpoint, Endpoint]:
    bus = _Bus()
    a = Endpoint(
        peer_manager=_BusManager(bus, "a"),  # type: ignore[arg-type]
        direct=direct,
        request_timeout=timeout,
        storage=DictStorage(max_object_size=max_size),
    )
    b = Endpoint(
        peer_manager=_BusManager(bus, "b"),  # type: ignore[arg-type]
        direct=direct,
        request_timeout=timeout,
        storage=DictStorage(max_object_size=max_size),
    )
    return bus, a, b


def _run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(body())  # type: ignore[arg-type]


def test_solo_needs_name_and_uuid() -> None:
    with pytest.raises(ValueError, match="name and uuid"):
        Endpoint(name="x")


def test_solo_mode() -> None:
    async def body() -> None:
        async with Endpoint("solo", uuid.uuid4()) as ep:
            assert ep.mode is EndpointMode.SOLO
            assert ep.peer_manager is None
            await ep.set("k", b"v", endpoint=uuid.uuid4())
            assert await ep.get("k") == b"v"

    _run(body)


def test_peer_manager_needs_init() -> None:
    bus = _Bus()
    ep = Endpoint(peer_manager=_BusManager(bus, "x"))  # type: ignore[arg-type]
    with pytest.raises(PeeringNotAvailableError):
        _ = ep.peer_manager


def test_forwarded_operations() -> None:
    async def body() -> None:
        _, a, b = _pair()
        async with a, b:
            assert a.mode is EndpointMode.PEERING
            await a.set("k", b"from-a", endpoint=b.uuid)
            assert await b.get("k") == b"from-a"
            assert await a.exists("k", endpoint=b.uuid)
            assert not await a.exists("k")
            assert await a.get("k", endpoint=b.uuid) == b"from-a"
            assert await a.get("missing", endpoint=b.uuid) is None
            await a.evict("k", endpoint=b.uuid)
            assert not await b.exists("k")
            # An endpoint's own UUID is local.
            await a.set("own", b"x", endpoint=a.uuid)
            assert await a.get("own") == b"x"

    _run(body)


def test_remote_errors_keep_their_type() -> None:
    async def body() -> None:
        _, a, b = _pair(max_size=10)
        async with a, b:
            with pytest.raises(ObjectSizeExceededError):
                await a.set("big", b"x" * 11, endpoint=b.uuid)

    _run(body)


def test_unknown_peer_is_typed_error() -> None:
    async def body() -> None:
        _, a, b = _pair()
        async with a, b:
            stranger = uuid.uuid4()
            with pytest.raises(UnknownPeerError, match=str(stranger)):
                await a.get("k", endpoint=stranger)

    _run(body)


def test_silent_peer_times_out() -> None:
    async def body() -> None:
        bus, a, b = _pair(timeout=0.3)
        async with a, b:
            bus.managers[b.uuid].deaf = True
            with pytest.raises(PeerTimeoutError, match=str(b.uuid)) as info:
                await a.get("k", endpoint=b.uuid)
            assert isinstance(info.value, TimeoutError)
            assert isinstance(info.value, PeerRequestError)
            assert not a._pending

    _run(body)


def test_malformed_and_stray_messages_are_dropped() -> None:
    async def body() -> None:
        bus, a, b = _pair()
        async with a, b:
            mb = bus.managers[b.uuid]
            await mb.send(a.uuid, b"garbage")
            await mb.send(a.uuid, b"PSE1\x00\x00\x00\x02{}")
            from proxystore.endpoint.messages import EndpointRequest, encode_request

            stray = EndpointRequest(kind="response", op="get", uuid="x", key="k")
            await mb.send(a.uuid, encode_request(stray))
            await asyncio.sleep(0.05)
            # Still serving.
            await b.set("k", b"v")
            assert await a.get("k", endpoint=b.uuid) == b"v"

    _run(body)


def test_close_fails_pending_requests() -> None:
    async def body() -> None:
        bus, a, b = _pair(timeout=30)
        async with b:
            await a.async_init()
            bus.managers[b.uuid].deaf = True
            request = asyncio.create_task(a.get("k", endpoint=b.uuid))
            await asyncio.sleep(0.05)
            await a.close()
            await a.close()
            with pytest.raises(PeerRequestError, match="closed"):
                await request

    _run(body)


async def _serve(endpoint: Endpoint) -> tuple[web.AppRunner, str]:
    port = _free_port()
    endpoint.address = f"http://127.0.0.1:{port}"
    runner = web.AppRunner(create_app(endpoint))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, endpoint.address


def test_direct_path_is_used_when_peer_answers() -> None:
    async def body() -> None:
        bus, a, b = _pair(direct=True, max_size=10_000_000)
        runner_a, _ = await _serve(a)
        runner_b, _ = await _serve(b)
        try:
            payload = bytes(range(256)) * 4000
            await a.set("k", payload, endpoint=b.uuid)
            sent_before = len(bus.sent)
            assert await a.get("k", endpoint=b.uuid) == payload
            assert await a.exists("k", endpoint=b.uuid)
            await a.evict("k", endpoint=b.uuid)
            assert not await b.exists("k")
            # Only the first request (the address exchange) used the bus.
            assert len(bus.sent) == sent_before
            assert a._direct[b.uuid] == b.address
            with pytest.raises(ObjectSizeExceededError):
                await a.set("big", b"x" * 10_000_001, endpoint=b.uuid)
        finally:
            await runner_a.cleanup()
            await runner_b.cleanup()

    _run(body)


def test_direct_path_falls_back_to_bus_when_peer_http_dies() -> None:
    async def body() -> None:
        _, a, b = _pair(direct=True)
        runner_a, _ = await _serve(a)
        b.address = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
        await b.async_init()
        try:
            await b.set("k", b"v")
            assert await a.get("k", endpoint=b.uuid) == b"v"
            assert a._direct[b.uuid] is None
        finally:
            await runner_a.cleanup()
            await b.close()

    _run(body)


def test_direct_address_with_wrong_uuid_is_not_used() -> None:
    async def body() -> None:
        _, a, b = _pair(direct=True)
        impostor = Endpoint("impostor", uuid.uuid4())
        runner_i, address = await _serve(impostor)
        await a.async_init()
        await b.async_init()
        b.address = address
        try:
            await b.set("k", b"real")
            assert await a.get("k", endpoint=b.uuid) == b"real"
            assert a._direct[b.uuid] is None
        finally:
            await runner_i.cleanup()
            await a.close()
            await b.close()

    _run(body)


def test_a_slow_direct_check_does_not_hold_requests_back() -> None:
    # The peer's address passes the static checks but its probe hangs (an
    # address that drops packets): requests go over the peer connection at once,
    # and once the probe succeeds later ones take the direct path.
    async def body() -> None:
        bus, a, b = _pair(direct=True)
        runner_b, address = await _serve(b)
        release = asyncio.Event()
        probe = a._probe

        async def slow_probe(peer: uuid.UUID, url: str) -> bool:
            await release.wait()
            return await probe(peer, url)

        a._probe = slow_probe  # type: ignore[assignment,method-assign]
        await a.async_init()
        try:
            await b.set("k", b"v")
            async with asyncio.timeout(3):
                assert await a.get("k", endpoint=b.uuid) == b"v"
                assert await a.exists("k", endpoint=b.uuid)
            assert a._direct[b.uuid] is None
            release.set()
            for _ in range(100):
                if a._direct[b.uuid] is not None:
                    break
                await asyncio.sleep(0.02)
            assert a._direct[b.uuid] == address
            sent = len(bus.sent)
            assert await a.get("k", endpoint=b.uuid) == b"v"
            assert len(bus.sent) == sent
        finally:
            await runner_b.cleanup()
            await a.close()

    _run(body)


# ------------------------------------------------------------ direct-path attacks


class _Trap:
    """HTTP server a malicious peer names: records every request it gets.

    `/endpoint` answers with `uuid` (the peer's, so the UUID check passes) or,
    with `redirect_probe`, redirects to `/secret`; every other path redirects to
    `/secret`, which only records the hit.
    """

    def __init__(self, uuid_: uuid.UUID, *, redirect_probe: bool) -> None:
        self.uuid = uuid_
        self.redirect_probe = redirect_probe
        self.hits: list[str] = []
        self.port = _free_port()
        self.address = f"http://127.0.0.1:{self.port}"
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(request.path)
        if request.path == "/secret":
            return web.json_response({"uuid": str(self.uuid), "exists": True})
        if request.path == "/endpoint" and not self.redirect_probe:
            return web.json_response({"uuid": str(self.uuid)})
        raise web.HTTPFound(f"{self.address}/secret")

    async def __aenter__(self) -> _Trap:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


@pytest.mark.parametrize("redirect_probe", [True, False])
def test_direct_path_never_follows_a_redirect(redirect_probe: bool) -> None:
    async def body() -> None:
        _, a, b = _pair(direct=True)
        async with _Trap(b.uuid, redirect_probe=redirect_probe) as trap, a, b:
            b.address = trap.address
            await b.set("k", b"real")
            assert await a.get("k", endpoint=b.uuid) == b"real"
            assert "/secret" not in trap.hits
            assert a._direct[b.uuid] is None

    _run(body)


@pytest.mark.parametrize(
    "advertised",
    [
        "http://192.0.2.1:5555",  # TEST-NET-1: not this machine
        "http://0.0.0.0:5555",
        "http://224.0.0.1:5555",
        "http://example.invalid:5555",
        "https://127.0.0.1:5555",
        "file:///etc/passwd",
        "http://user:pw@127.0.0.1:5555",
        "http://127.0.0.1:5555/admin",
        "http://127.0.0.1:5555?x=1",
        "http://127.0.0.1",
        "http://127.0.0.1:99999",
        "not a url",
    ],
)
def test_direct_path_does_not_contact_unverifiable_addresses(advertised: str) -> None:
    async def body() -> None:
        _, a, b = _pair(direct=True)
        probed: list[str] = []

        async def record(peer: uuid.UUID, address: str) -> bool:
            probed.append(address)
            return False

        a._probe = record  # type: ignore[method-assign]
        async with a, b:
            b.address = advertised
            await b.set("k", b"v")
            assert await a.get("k", endpoint=b.uuid) == b"v"
            assert probed == []
            assert a._direct[b.uuid] is None

    _run(body)


@pytest.mark.parametrize(
    ("url", "networks", "pinned"),
    [
        ("http://127.0.0.1:80", (), "http://127.0.0.1:80"),
        ("http://127.0.0.1:80/", (), "http://127.0.0.1:80"),
        ("http://[::1]:80", (), "http://[::1]:80"),
        ("http://192.0.2.7:80", ("192.0.2.0/24",), "http://192.0.2.7:80"),
        ("http://192.0.2.7:80", ("198.51.100.0/24",), None),
    ],
)
def test_pin_direct_url(
    url: str, networks: tuple[str, ...], pinned: str | None
) -> None:
    got = asyncio.run(pin_direct_url(url, direct_networks(networks)))
    assert got == pinned


def test_pin_direct_url_resolves_names_once_to_a_local_ip() -> None:
    got = asyncio.run(pin_direct_url("http://localhost:8080"))
    assert got in ("http://127.0.0.1:8080", "http://[::1]:8080")


def test_direct_networks_allow_a_lan_peer() -> None:
    ip = ipaddress.ip_address("10.1.2.3")
    assert not allowed_ip(ip)
    assert allowed_ip(ip, direct_networks(["10.0.0.0/8"]))
    with pytest.raises(ValueError, match=r"10\.0\.0\.0/33"):
        Endpoint("x", uuid.uuid4(), direct_networks=["10.0.0.0/33"])
