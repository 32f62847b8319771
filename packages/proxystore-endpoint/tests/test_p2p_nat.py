"""NAT checks against small STUN responders on loopback (no public STUN here)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from typing import cast

import pytest

from proxystore.p2p.nat import (
    NatCheckError,
    NatMapping,
    check_nat,
    check_nat_and_log,
    decode_binding_response,
    encode_binding_request,
)

COOKIE = 0x2112A442
Mapper = Callable[[tuple[str, int]], tuple[str, int]]


def binding_success(transaction_id: bytes, address: tuple[str, int]) -> bytes:
    ip = int(ipaddress.IPv4Address(address[0])) ^ COOKIE
    port = address[1] ^ (COOKIE >> 16)
    attribute = struct.pack("!HHxBHI", 0x0020, 8, 0x01, port, ip)
    return struct.pack("!HHI12s", 0x0101, len(attribute), COOKIE, transaction_id) + (
        attribute
    )


class Responder(asyncio.DatagramProtocol):
    def __init__(self, mapper: Mapper) -> None:
        self.mapper = mapper
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        _, _, _, transaction_id = struct.unpack_from("!HHI12s", data)
        self.transport.sendto(binding_success(transaction_id, self.mapper(addr)), addr)


async def start_responders(
    *mappers: Mapper,
) -> tuple[list[tuple[str, int]], list[asyncio.DatagramTransport]]:
    loop = asyncio.get_running_loop()
    servers, transports = [], []
    for i, mapper in enumerate(mappers):
        host = f"127.0.0.{i + 1}"
        transport, _ = await loop.create_datagram_endpoint(
            lambda m=mapper: Responder(m),  # type: ignore[misc]
            local_addr=(host, 0),
        )
        transports.append(transport)
        servers.append((host, transport.get_extra_info("sockname")[1]))
    return servers, transports


def same(addr: tuple[str, int]) -> tuple[str, int]:
    return addr


@pytest.mark.parametrize(
    ("mappers", "expected"),
    [
        ((same, same), NatMapping.NoNat),
        ((lambda a: ("203.0.113.5", 4000),) * 2, NatMapping.EndpointIndependent),
        ((same, lambda a: (a[0], a[1] + 1)), NatMapping.AddressDependent),
    ],
)
def test_mapping_behaviour(mappers: tuple[Mapper, ...], expected: NatMapping) -> None:
    async def main() -> None:
        servers, transports = await start_responders(*mappers)
        try:
            result = await check_nat("127.0.0.1", timeout=3, servers=servers)
        finally:
            for t in transports:
                t.close()
        assert result.mapping is expected
        assert result.hole_punching_likely is (
            expected is not NatMapping.AddressDependent
        )

    asyncio.run(main())


def test_unreachable_servers_fail_within_the_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        # Bound but silent sockets: requests go unanswered.
        silent = []
        for host in ("127.0.0.1", "127.0.0.2"):
            t, _ = await loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, local_addr=(host, 0)
            )
            silent.append(t)
        servers = [
            (t.get_extra_info("sockname")[0], t.get_extra_info("sockname")[1])
            for t in silent
        ]
        start = loop.time()
        try:
            with pytest.raises(NatCheckError, match="0 of 2 STUN servers answered"):
                await check_nat("127.0.0.1", timeout=1.0, servers=servers)
            with pytest.raises(NatCheckError, match="resolved"):
                await check_nat(timeout=1.0, servers=[("no-such-host.invalid", 3478)])
            with caplog.at_level(logging.INFO, logger="proxystore.p2p.nat"):
                await check_nat_and_log("127.0.0.1", timeout=0.5, servers=servers)
        finally:
            for t in silent:
                t.close()
        return loop.time() - start

    elapsed = asyncio.run(main())
    assert elapsed < 10
    assert "Could not determine NAT behaviour" in caplog.text


def test_binding_codec() -> None:
    tid = bytes(range(12))
    assert encode_binding_request(tid)[8:] == tid
    assert decode_binding_response(binding_success(tid, ("1.2.3.4", 5))) == (
        tid,
        ("1.2.3.4", 5),
    )
    assert decode_binding_response(b"short") is None
    assert decode_binding_response(encode_binding_request(tid)) is None


@contextlib.contextmanager
def threaded_responders(*mappers: Mapper) -> Iterator[list[str]]:
    """STUN responders on 127.0.0.1, .2... in threads; yields `host:port` strings."""
    socks = []
    for i in range(len(mappers)):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((f"127.0.0.{i + 1}", 0))
        sock.settimeout(0.1)
        socks.append(sock)
    stop = threading.Event()

    def serve(sock: socket.socket, mapper: Mapper) -> None:
        while not stop.is_set():
            try:
                data, addr = sock.recvfrom(2048)
            except TimeoutError:
                continue
            _, _, _, transaction_id = struct.unpack_from("!HHI12s", data)
            sock.sendto(binding_success(transaction_id, mapper(addr)), addr)

    threads = [
        threading.Thread(target=serve, args=(s, m), daemon=True)
        for s, m in zip(socks, mappers, strict=True)
    ]
    for thread in threads:
        thread.start()
    try:
        yield [f"{h}:{p}" for h, p in (s.getsockname() for s in socks)]
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
        for sock in socks:
            sock.close()


@pytest.mark.parametrize(
    ("mappers", "expected"),
    [
        ((lambda a: ("203.0.113.5", 4000),) * 2, "Endpoint-independent mapping"),
        ((same, lambda a: (a[0], a[1] + 1)), "Address-dependent mapping"),
    ],
)
def test_check_nat_command_asks_the_given_servers(
    mappers: tuple[Mapper, ...], expected: str
) -> None:
    from click.testing import CliRunner

    from proxystore.endpoint.cli import cli

    with threaded_responders(*mappers) as servers:
        args = ["check-nat", "--host", "127.0.0.1", "--timeout", "3"]
        for server in servers:
            args += ["--server", server]
        result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert f"NAT behaviour: {expected}" in result.output


def test_check_nat_command_rejects_a_bad_server() -> None:
    from click.testing import CliRunner

    from proxystore.endpoint.cli import cli

    result = CliRunner().invoke(cli, ["check-nat", "--server", "no-port"])
    assert result.exit_code == 2
    assert "HOST:PORT" in result.output
