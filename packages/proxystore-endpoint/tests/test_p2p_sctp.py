"""Batched SCTP acknowledgements (`proxystore.p2p._sctp`)."""

from __future__ import annotations

import asyncio
import socket
from types import SimpleNamespace

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from proxystore.p2p._sctp import (
    SACK_EVERY,
    SOCKET_BUFFER_BYTES,
    coalesce_sacks,
    enlarge_receive_buffers,
)


class _FakeSctp:
    """The two members of aiortc's `RTCSctpTransport` the patch relies on."""

    def __init__(self) -> None:
        self._sack_needed = False
        self.sent = 0

    async def _send_sack(self) -> None:
        self.sent += 1
        self._sack_needed = False

    async def packet(self) -> None:
        """What aiortc does for each DATA packet: mark, then ask for a SACK."""
        self._sack_needed = True
        await self._send_sack()


async def _burst(fake: _FakeSctp, packets: int) -> tuple[int, int]:
    """SACKs sent during a burst of `packets` handled without yielding, and after."""
    for _ in range(packets):
        await fake.packet()
    during = fake.sent
    await asyncio.sleep(0.05)  # past the delay: the flush and its task ran
    return during, fake.sent


@pytest.mark.parametrize(("packets", "during", "after"), [(1, 0, 1), (5, 2, 3)])
def test_every_second_packet_at_once_and_the_rest_after_the_burst(
    packets: int, during: int, after: int
) -> None:
    async def main() -> tuple[int, int]:
        fake = _FakeSctp()
        assert coalesce_sacks(fake, every=2, delay=0.001)
        return await _burst(fake, packets)

    assert asyncio.run(main()) == (during, after)


def test_a_lone_packet_waits_for_the_delay() -> None:
    async def main() -> tuple[int, int]:
        fake = _FakeSctp()
        coalesce_sacks(fake, every=2, delay=0.2)
        await fake.packet()
        await asyncio.sleep(0.05)
        early = fake.sent
        await asyncio.sleep(0.3)
        return early, fake.sent

    assert asyncio.run(main()) == (0, 1)


def test_no_extra_sack_when_the_last_packet_was_acknowledged() -> None:
    async def main() -> tuple[int, int]:
        fake = _FakeSctp()
        coalesce_sacks(fake, every=2, delay=0.001)
        return await _burst(fake, 4)

    # Packets 2 and 4 were acknowledged at once; the flush finds nothing to do.
    assert asyncio.run(main()) == (2, 2)


def test_every_one_acknowledges_each_packet_and_patching_twice_is_harmless() -> None:
    async def main() -> tuple[int, int]:
        fake = _FakeSctp()
        coalesce_sacks(fake, every=1)
        coalesce_sacks(fake, every=1)
        return await _burst(fake, 3)

    assert asyncio.run(main()) == (3, 3)


def test_unknown_transports_are_left_alone_and_bad_counts_rejected() -> None:
    async def main() -> None:
        other = object()
        assert not coalesce_sacks(other)
        with pytest.raises(ValueError, match="at least 1"):
            coalesce_sacks(_FakeSctp(), every=0)
        with pytest.raises(ValueError, match="negative"):
            coalesce_sacks(_FakeSctp(), delay=-1)

    asyncio.run(main())


def test_aiortc_still_has_the_hooks() -> None:
    async def main() -> bool:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            pc.createDataChannel("x")
            await pc.setLocalDescription(await pc.createOffer())
            assert pc.sctp is not None
            return coalesce_sacks(pc.sctp, every=SACK_EVERY)
        finally:
            await pc.close()

    assert asyncio.run(main())


class _Transport:
    def __init__(self, sock: socket.socket | None) -> None:
        self.sock = sock

    def get_extra_info(self, name: str) -> socket.socket | None:
        assert name == "socket"
        return self.sock


class _Protocol:
    def __init__(self, sock: socket.socket | None) -> None:
        self.transport = _Transport(sock)


def _rmem_max() -> int:
    with open("/proc/sys/net/core/rmem_max") as f:
        return int(f.read())


def test_ice_sockets_get_a_larger_receive_buffer_within_the_kernel_cap() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2**16)
        before = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        ice = SimpleNamespace(
            _connection=SimpleNamespace(_protocols=[_Protocol(None), _Protocol(sock)])
        )
        assert enlarge_receive_buffers(ice, SOCKET_BUFFER_BYTES) == 1
        after = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        # Linux reports twice what was granted; the grant is capped at rmem_max.
        assert after == 2 * min(SOCKET_BUFFER_BYTES, _rmem_max()) or after == before
        if _rmem_max() > 2**16:
            assert after > before
    assert enlarge_receive_buffers(SimpleNamespace()) == 0
