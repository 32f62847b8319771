"""Find out how this host's NAT maps outgoing UDP flows, using STUN (RFC 5389).

Binding requests go from one UDP socket to several STUN servers at different IP
addresses. If every server sees the same external address, the NAT maps flows
independently of their destination and WebRTC hole punching should work; if they see
different addresses the mapping depends on the destination and peers behind it need
a TURN relay. If the external address is the local one there is no NAT.

Nothing here waits longer than `timeout`: name resolution and the exchange together
are bounded, and with fewer than two answers `check_nat` raises `NatCheckError`
(e.g. on a host without internet access).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import ipaddress
import logging
import secrets
import socket
import struct
from collections.abc import Sequence
from typing import NamedTuple

__all__ = [
    "STUN_SERVERS",
    "NatCheckError",
    "NatMapping",
    "NatType",
    "Result",
    "check_nat",
    "check_nat_and_log",
    "decode_binding_response",
    "encode_binding_request",
]

logger = logging.getLogger(__name__)

STUN_SERVERS: tuple[tuple[str, int], ...] = (
    ("stun.l.google.com", 19302),
    ("stun.nextcloud.com", 3478),
    ("stun.hot-chilli.net", 3478),
    ("stun.m-online.net", 3478),
    ("stun.dus.net", 3478),
)
"""Public STUN servers asked by default (run by different operators)."""

_COOKIE = 0x2112A442
_BINDING_REQUEST = 0x0001
_BINDING_SUCCESS = 0x0101
_MAPPED_ADDRESS = 0x0001
_XOR_MAPPED_ADDRESS = 0x0020
_HEADER = struct.Struct("!HHI12s")
_RESEND_AFTER = 0.5

Address = tuple[str, int]


class NatCheckError(RuntimeError):
    """Raised when the NAT behaviour cannot be determined (too few STUN answers)."""


class NatMapping(enum.Enum):
    """How a NAT assigns external addresses to outgoing flows."""

    NoNat = "No NAT"
    """The host is not behind a NAT."""
    EndpointIndependent = "Endpoint-independent mapping"
    """One external address for every destination: hole punching works."""
    AddressDependent = "Address-dependent mapping"
    """A different external address per destination: peers need a TURN relay."""


class NatType(enum.Enum):
    """The RFC 3489 NAT classes that earlier ProxyStore releases reported.

    Kept so that code written against them still imports and compares; `check_nat`
    measures the mapping behaviour only (`NatMapping`), and `Result.nat_type`
    translates it with `from_mapping`.
    """

    OpenInternet = "Open Internet (No NAT)"
    """Not behind a NAT."""
    FullCone = "Full-cone NAT"
    """Endpoint-independent mapping and filtering."""
    SymmetricUDPFirewall = "Symmetric UDP Firewall NAT"
    """No NAT, but a firewall that drops unsolicited UDP."""
    RestrictedCone = "Restricted-cone NAT"
    """Endpoint-independent mapping, filtering by remote address."""
    PortRestrictedCone = "Port Restricted-cone NAT"
    """Endpoint-independent mapping, filtering by remote address and port."""
    Symmetric = "Symmetric NAT"
    """A different mapping per destination: hole punching does not work."""

    @classmethod
    def from_mapping(cls, mapping: NatMapping) -> NatType:
        """Return the class matching a measured mapping behaviour.

        Filtering is not measured (it needs a STUN server on two addresses), so an
        endpoint-independent mapping is reported as the strictest cone,
        `PortRestrictedCone`: hole punching works through it, as through any cone.
        """
        return {
            NatMapping.NoNat: cls.OpenInternet,
            NatMapping.EndpointIndependent: cls.PortRestrictedCone,
            NatMapping.AddressDependent: cls.Symmetric,
        }[mapping]


class Result(NamedTuple):
    """Outcome of `check_nat`.

    Attributes:
        mapping: The NAT's mapping behaviour.
        external_ip: This host's external IP as the first server saw it.
        external_port: The matching external port.
        hole_punching_likely: Whether direct peer connections should work.
    """

    mapping: NatMapping
    external_ip: str
    external_port: int
    hole_punching_likely: bool

    @property
    def nat_type(self) -> NatType:
        """The mapping as an RFC 3489 class (see `NatType.from_mapping`)."""
        return NatType.from_mapping(self.mapping)


def encode_binding_request(transaction_id: bytes) -> bytes:
    """Return a STUN binding request with no attributes."""
    return _HEADER.pack(_BINDING_REQUEST, 0, _COOKIE, transaction_id)


def decode_binding_response(data: bytes) -> tuple[bytes, Address] | None:
    """Return `(transaction_id, mapped address)` of a binding success, else `None`."""
    if len(data) < _HEADER.size:
        return None
    kind, length, cookie, transaction_id = _HEADER.unpack_from(data)
    if kind != _BINDING_SUCCESS or cookie != _COOKIE:
        return None
    body = data[_HEADER.size : _HEADER.size + length]
    found: Address | None = None
    offset = 0
    while offset + 4 <= len(body):
        attr_type, attr_len = struct.unpack_from("!HH", body, offset)
        value = body[offset + 4 : offset + 4 + attr_len]
        offset += 4 + attr_len + (-attr_len % 4)
        if attr_type not in (_XOR_MAPPED_ADDRESS, _MAPPED_ADDRESS) or len(value) < 8:
            continue
        family, port = struct.unpack_from("!xBH", value)
        if family != 0x01:  # IPv4 only
            continue
        (raw_ip,) = struct.unpack_from("!I", value, 4)
        if attr_type == _XOR_MAPPED_ADDRESS:
            port ^= _COOKIE >> 16
            raw_ip ^= _COOKIE
        address = (str(ipaddress.IPv4Address(raw_ip)), port)
        if attr_type == _XOR_MAPPED_ADDRESS or found is None:
            found = address
    return None if found is None else (transaction_id, found)


class _StunProtocol(asyncio.DatagramProtocol):
    def __init__(self, expected: int) -> None:
        self.answers: dict[bytes, Address] = {}
        self.expected = expected
        self.done = asyncio.Event()

    def datagram_received(self, data: bytes, addr: Address) -> None:
        decoded = decode_binding_response(data)
        if decoded is None:
            logger.debug("Ignoring a non-STUN datagram from %s", addr)
            return
        transaction_id, mapped = decoded
        self.answers.setdefault(transaction_id, mapped)
        if len(self.answers) >= self.expected:
            self.done.set()


async def _resolve(servers: Sequence[tuple[str, int]]) -> list[Address]:
    loop = asyncio.get_running_loop()

    async def one(host: str, port: int) -> Address | None:
        try:
            infos = await loop.getaddrinfo(
                host, port, family=socket.AF_INET, type=socket.SOCK_DGRAM
            )
        except OSError as exc:
            logger.debug("Cannot resolve STUN server %s: %s", host, exc)
            return None
        ip, resolved_port = infos[0][4][:2]
        return (str(ip), int(resolved_port))

    found = await asyncio.gather(*(one(h, p) for h, p in servers))
    unique: dict[str, Address] = {}
    for address in found:
        if address is not None:
            unique.setdefault(address[0], address)
    return list(unique.values())


def _local_ip_towards(server: Address) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(server)
            return str(sock.getsockname()[0])
        except OSError:
            return ""


async def check_nat(
    source_ip: str = "0.0.0.0",
    source_port: int = 0,
    timeout: float = 2.0,  # noqa: ASYNC109
    *,
    servers: Sequence[tuple[str, int]] | None = None,
) -> Result:
    """Determine the NAT mapping behaviour of this host.

    Args:
        source_ip: Local address to send from.
        source_port: Local port to send from (0: any).
        timeout: Seconds for the whole check, name resolution included.
        servers: STUN servers to ask (`(host, port)` pairs, at least two at
            different IPs); the public `STUN_SERVERS` when `None`.

    Returns:
        The mapping behaviour and the external address.

    Raises:
        NatCheckError: If fewer than two servers could be resolved or answered.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        async with asyncio.timeout(timeout):
            addresses = await _resolve(STUN_SERVERS if servers is None else servers)
    except TimeoutError:
        addresses = []
    if len(addresses) < 2:
        raise NatCheckError(
            f"Only {len(addresses)} STUN server(s) resolved within {timeout} s; two "
            "at different addresses are needed to tell the NAT behaviour."
        )
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: _StunProtocol(len(addresses)),
        local_addr=(source_ip, source_port),
        family=socket.AF_INET,
    )
    requests = {secrets.token_bytes(12): address for address in addresses}
    try:
        while not protocol.done.is_set() and loop.time() < deadline:
            for transaction_id, address in requests.items():
                if transaction_id not in protocol.answers:
                    transport.sendto(encode_binding_request(transaction_id), address)
            wait = min(_RESEND_AFTER, deadline - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(protocol.done.wait(), max(wait, 0))
    finally:
        transport.close()
    mapped = [protocol.answers[t] for t in requests if t in protocol.answers]
    if len(mapped) < 2:
        raise NatCheckError(
            f"Only {len(mapped)} of {len(addresses)} STUN servers answered within "
            f"{timeout} s; two answers are needed to tell the NAT behaviour."
        )
    external_ip, external_port = mapped[0]
    if any(address != mapped[0] for address in mapped):
        mapping = NatMapping.AddressDependent
    elif external_ip == _local_ip_towards(addresses[0]):
        mapping = NatMapping.NoNat
    else:
        mapping = NatMapping.EndpointIndependent
    return Result(
        mapping=mapping,
        external_ip=external_ip,
        external_port=external_port,
        hole_punching_likely=mapping is not NatMapping.AddressDependent,
    )


async def check_nat_and_log(
    source_ip: str = "0.0.0.0",
    source_port: int = 0,
    timeout: float = 2.0,  # noqa: ASYNC109
    *,
    servers: Sequence[tuple[str, int]] | None = None,
) -> None:
    """Run `check_nat` and log its result (or why it failed) instead of returning it."""
    logger.info("Checking NAT behaviour...")
    try:
        result = await check_nat(source_ip, source_port, timeout, servers=servers)
    except (NatCheckError, OSError) as exc:
        logger.error("Could not determine NAT behaviour: %s", exc)
        return
    logger.info("NAT behaviour: %s", result.mapping.value)
    logger.info("External IP:   %s", result.external_ip)
    logger.info("External port: %d", result.external_port)
    if result.hole_punching_likely:
        logger.info("Direct peer-to-peer connections (hole punching) should work.")
    else:
        logger.warning(
            "This NAT maps each destination to a different external address: "
            "direct peer-to-peer connections will not work reliably; use a TURN "
            "server."
        )
