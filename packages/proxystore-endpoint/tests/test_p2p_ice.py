"""ICE tuning: STUN retransmission delay and gathering bound (`proxystore.p2p._ice`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket

import aioice.stun
import pytest
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection

from proxystore.p2p._ice import (
    GATHER_TIMEOUT,
    RETRANSMIT_AFTER,
    allowed_host_addresses,
    bounded_gathering,
    fast_retransmits,
)


class _Sender:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def send_stun(self, message: aioice.stun.Message, addr: tuple[str, int]) -> None:
        self.sock.sendto(bytes(message), addr)


async def _datagrams_within(
    seconds: float, *, fast: bool, retries: int | None
) -> tuple[int, bool]:
    """Datagrams one unanswered transaction sends within `seconds`; still waiting?"""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as source,
    ):
        sink.bind(("127.0.0.1", 0))
        sink.setblocking(False)
        request = aioice.stun.Message(
            message_method=aioice.stun.Method.BINDING,
            message_class=aioice.stun.Class.REQUEST,
            transaction_id=os.urandom(12),
        )

        def start() -> asyncio.Task[object]:
            transaction = aioice.stun.Transaction(
                request,
                sink.getsockname(),
                _Sender(source),
                retransmissions=retries,
            )
            return asyncio.create_task(transaction.run())

        if fast:
            with fast_retransmits():
                task = start()
        else:
            task = start()
        await asyncio.sleep(seconds)
        waiting = not task.done()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, aioice.stun.TransactionError):
            await task
        count = 0
        while True:
            try:
                sink.recv(2048)
            except BlockingIOError:
                return count, waiting
            count += 1


@pytest.mark.parametrize("fast", [True, False])
def test_transactions_retransmit_early_only_inside_the_block(fast: bool) -> None:
    # aioice's first retransmission comes after 0.5 s: within 0.4 s it sends
    # once; inside fast_retransmits() at least two retransmissions are out.
    assert RETRANSMIT_AFTER * 3 < 0.4
    sent, waiting = asyncio.run(_datagrams_within(0.4, fast=fast, retries=None))
    assert sent >= 3 if fast else sent == 1
    assert waiting


def test_transactions_without_retries_keep_their_timeout() -> None:
    # Consent checks (retransmissions=0) must not time out after 50 ms: the
    # transaction is still waiting for its answer after 0.3 s.
    sent, waiting = asyncio.run(_datagrams_within(0.3, fast=True, retries=0))
    assert sent == 1
    assert waiting


def test_gathering_does_not_wait_long_for_a_silent_stun_server() -> None:
    # aioice waits 5 s for STUN answers; inside bounded_gathering() an
    # unreachable server (a bound socket that never answers) costs at most
    # GATHER_TIMEOUT, and the host candidate is still offered.
    async def main() -> tuple[float, str]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
            silent.bind(("127.0.0.1", 0))
            port = silent.getsockname()[1]
            pc = RTCPeerConnection(
                RTCConfiguration([RTCIceServer(f"stun:127.0.0.1:{port}")])
            )
            try:
                pc.createDataChannel("probe")
                loop = asyncio.get_running_loop()
                start = loop.time()
                with allowed_host_addresses(("127.0.0.1",)), bounded_gathering():
                    await pc.setLocalDescription(await pc.createOffer())
                return loop.time() - start, pc.localDescription.sdp
            finally:
                await pc.close()

    elapsed, sdp = asyncio.run(main())
    assert GATHER_TIMEOUT < 4
    assert elapsed < 4  # aioice alone: 5 s
    assert "127.0.0.1" in sdp
