"""Acknowledge SCTP data in batches instead of packet by packet.

aiortc answers every DATA packet with its own SACK: the receiver builds, encrypts
and sends one, and the sender decrypts and processes one (walking its queue of
chunks in flight), for every 1,200 bytes of payload. Both endpoints run this in
Python on one core each, so acknowledgements cost about as much as the data.

`coalesce_sacks(transport)` makes one SCTP transport acknowledge every `every`-th
packet at once and the others after at most `delay` seconds, unless a later
packet's SACK covered them by then: delayed acknowledgement as RFC 9260
(section 6.2) describes it, with a delay far below its 200 ms. While data flows,
every second packet is acknowledged at once, so the sender's congestion window
and fast retransmit work as before on half the SACKs; aiortc's retransmission
timer (at least 1 s) never waits on the delay.

aiortc keeps the hooks in private members (`_send_sack`, `_sack_needed`); if a
release renames them, nothing is patched and aiortc's behaviour applies.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = [
    "SACK_DELAY",
    "SACK_EVERY",
    "SOCKET_BUFFER_BYTES",
    "coalesce_sacks",
    "enlarge_receive_buffers",
]

logger = logging.getLogger(__name__)

SACK_EVERY = 2
"""Packets acknowledged by one immediate SACK."""
SACK_DELAY = 0.005
"""Seconds a SACK for a lone packet may wait for the next packet."""
SOCKET_BUFFER_BYTES = 4 * 2**20
"""Receive buffer asked for each ICE socket (the kernel caps it at rmem_max)."""


def enlarge_receive_buffers(ice_transport: Any, size: int = SOCKET_BUFFER_BYTES) -> int:
    """Ask for `size` bytes of receive buffer on the UDP sockets of an ICE transport.

    aioice asks for 256 KiB. A receiver that falls behind for a few milliseconds
    (a busy CPU) overflows that, and every dropped packet costs aiortc a
    retransmission and a halved congestion window. The kernel grants at most
    `net.core.rmem_max`; a smaller grant, or a socket that refuses, is kept as is.

    Args:
        ice_transport: aiortc's `RTCIceTransport` (`pc.sctp.transport.transport`),
            once candidates are gathered.
        size: Bytes to ask for.

    Returns:
        Number of sockets whose buffer was set (0 for an unknown aiortc/aioice).
    """
    connection = getattr(ice_transport, "_connection", None)
    done = 0
    for protocol in getattr(connection, "_protocols", ()):
        transport = getattr(protocol, "transport", None)
        sock = None if transport is None else transport.get_extra_info("socket")
        if sock is None:
            continue
        try:
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) < size:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
        except OSError as exc:
            logger.debug("receive buffer of %s unchanged: %s", sock, exc)
            continue
        done += 1
    return done


def coalesce_sacks(
    transport: Any, every: int = SACK_EVERY, delay: float = SACK_DELAY
) -> bool:
    """Make an aiortc `RTCSctpTransport` send fewer SACKs (see the module doc).

    Args:
        transport: The SCTP transport of a peer connection.
        every: Send a SACK at once for every `every` packets that need one.
        delay: Seconds before the other packets are acknowledged.

    Returns:
        Whether the transport was patched (`False` for an unknown aiortc).

    Raises:
        ValueError: If `every` is below 1 or `delay` is negative.
        RuntimeError: If no event loop is running.
    """
    if every < 1:
        raise ValueError(f"every must be at least 1, got {every}.")
    if delay < 0:
        raise ValueError(f"delay must not be negative, got {delay}.")
    original: Callable[[], Coroutine[Any, Any, None]] | None = getattr(
        transport, "_send_sack", None
    )
    if original is None or not hasattr(transport, "_sack_needed"):
        return False
    if getattr(transport, "_proxystore_sacks_coalesced", False):
        return True
    loop = asyncio.get_running_loop()
    pending = 0
    scheduled = False
    tasks: set[asyncio.Task[None]] = set()

    async def send_deferred() -> None:
        # Only if no later packet's SACK covered it meanwhile.
        if transport._sack_needed:
            try:
                await original()
            except ConnectionError as exc:  # DTLS closed under us
                logger.debug("deferred SACK not sent: %s", exc)

    def flush() -> None:
        nonlocal pending, scheduled
        scheduled = False
        pending = 0
        task = loop.create_task(send_deferred())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def send_sack() -> None:
        nonlocal pending, scheduled
        pending += 1
        if pending >= every:
            pending = 0
            await original()
        elif not scheduled:
            scheduled = True
            loop.call_later(delay, flush)

    transport._send_sack = send_sack
    transport._proxystore_sacks_coalesced = True
    return True
