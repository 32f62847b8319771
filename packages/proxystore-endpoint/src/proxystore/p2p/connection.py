"""One WebRTC peer connection carrying whole messages over data channels.

The offering side opens `channels` unordered, reliable data channels; the answering
side accepts them. A message is cut into chunks (`proxystore.p2p.chunks`) sent
round-robin over the channels and reassembled by stream id, so messages of any size
(100 MB and more) can be sent, and concurrent sends interleave instead of queueing
behind each other. The sender waits while a channel holds more than a few MiB not yet
taken by SCTP; every such wait is bounded by the send timeout.

The relay is only used to exchange the offer and the answer: once connected, the
connection does not need it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import socket
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.contrib.signaling import object_from_string, object_to_string
from aiortc.exceptions import InvalidStateError

from proxystore.p2p._ice import (
    allowed_host_addresses,
    bounded_gathering,
    fast_retransmits,
    validate_addresses,
)
from proxystore.p2p._sctp import coalesce_sacks, enlarge_receive_buffers
from proxystore.p2p.chunks import (
    CHUNK_HEADER_LENGTH,
    Chunk,
    ChunkError,
    chunkify,
    reconstruct,
)
from proxystore.p2p.exceptions import (
    PeerConnectionClosedError,
    PeerConnectionError,
    PeerConnectionTimeoutError,
)
from proxystore.p2p.relay.messages import PeerConnectionRequest
from proxystore.utils.counter import AtomicCounter

if TYPE_CHECKING:
    from proxystore.p2p.relay.client import RelayClient

__all__ = [
    "MAX_CHUNK_SIZE_BYTES",
    "MAX_CHUNK_SIZE_STRING",
    "PeerConnection",
    "log_name",
    "receive_window",
]

logger = logging.getLogger(__name__)

MAX_CHUNK_SIZE_BYTES = 2**16 - CHUNK_HEADER_LENGTH
"""Payload bytes per chunk (aiortc accepts SCTP messages of 64 KiB by default)."""
MAX_CHUNK_SIZE_STRING = MAX_CHUNK_SIZE_BYTES // 4
"""Characters per chunk of a text message (UTF-8 needs up to 4 bytes a character)."""

_HIGH_WATER = 4 * 2**20
_LOW_WATER = 1 * 2**20
_CLOSE_FLUSH_SECONDS = 2.0
_SCTP_WINDOW = 2**20  # aiortc's advertised receive window
_LABEL = re.compile(r"^p2p-(\d+)-(\d+)$")


class _Closed:
    """Queued for `recv()` once the connection closed or failed."""


_CLOSED = _Closed()


def _mark_retrieved(future: asyncio.Future[None]) -> None:
    # A handshake error set while nobody waits must not be logged by asyncio as
    # "exception was never retrieved": ready() and send() re-raise it when asked.
    if not future.cancelled():
        future.exception()


@functools.cache
def receive_window() -> int:
    """Bytes of SCTP receive window to advertise: what an ICE socket can buffer.

    aiortc advertises 1 MiB, and its peer leaves slow start only there. An ICE
    socket asks for aioice's buffer size (256 KiB), which the kernel caps at
    `net.core.rmem_max` (208 KiB by default); a sender with more in flight than
    that overflows the buffer whenever the receiving process falls behind, and
    every dropped packet costs a retransmission (measured through NATed
    namespaces: hundreds of drops per 10 MB at 1 MiB, none at the buffer size).
    """
    import aioice.turn

    requested = aioice.turn.UDP_SOCKET_BUFFER_SIZE
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, requested)
        granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    # Linux reports twice the usable size (the rest is bookkeeping).
    return max(64 * 2**10, min(_SCTP_WINDOW, requested, granted // 2))


def log_name(uuid: UUID, name: str) -> str:
    """Return `'name(first 8 characters of uuid)'` for log lines."""
    return f"{name}({str(uuid)[:8]})"


class PeerConnection:
    """A WebRTC connection to one peer, set up through a relay.

    Prefer `proxystore.p2p.manager.PeerManager`, which creates these, answers
    offers and routes messages.

    Args:
        relay_client: Client of the relay used to exchange offer and answer.
        channels: Number of data channels to open (offering side).
        ice_servers: STUN/TURN servers for ICE; `None` uses aiortc's default (a
            public STUN server), `[]` gathers host candidates only.
        ice_addresses: Local IP addresses ICE may offer as host candidates; `None`
            offers every non-loopback interface (aioice's default). Use
            `["127.0.0.1"]` to keep traffic on loopback.

    Raises:
        ValueError: If `channels` is below 1 or an ICE address is not an IP.
        RuntimeError: If no event loop is running.
    """

    def __init__(
        self,
        relay_client: RelayClient,
        *,
        channels: int = 1,
        ice_servers: Sequence[RTCIceServer] | None = None,
        ice_addresses: Sequence[str] | None = None,
    ) -> None:
        if channels < 1:
            raise ValueError(f"channels must be at least 1, got {channels}.")
        self._relay_client = relay_client
        self._max_channels = channels
        self._ice_addresses = (
            None if ice_addresses is None else validate_addresses(ice_addresses)
        )
        loop = asyncio.get_running_loop()
        self._ready: asyncio.Future[None] = loop.create_future()
        self._ready.add_done_callback(_mark_retrieved)
        configuration = (
            None
            if ice_servers is None
            else RTCConfiguration(iceServers=list(ice_servers))
        )
        self._pc = RTCPeerConnection(configuration)
        self._pc.on("connectionstatechange", self._on_state_change)
        self._pc.on("datachannel", self._on_datachannel)

        self._channels: list[RTCDataChannel] = []
        self._drained: dict[int, asyncio.Event] = {}
        self._opened = 0
        self._incoming: asyncio.Queue[bytes | str | _Closed] = asyncio.Queue()
        self._partial: dict[int, list[Chunk]] = {}
        self._counter = AtomicCounter(size=2**32 - 1)
        self._error: PeerConnectionError | None = None
        self._close_callbacks: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._peer_uuid: UUID | None = None
        self._peer_name: str | None = None
        self._offered_to: UUID | None = None

    def __repr__(self) -> str:
        return f"PeerConnection({self._log_prefix}, state={self.state})"

    @property
    def _log_prefix(self) -> str:
        local = log_name(self._relay_client.uuid, self._relay_client.name)
        peer = self._peer_uuid or self._offered_to
        remote = "pending" if peer is None else log_name(peer, self._peer_name or "?")
        return f"{local} > {remote}"

    @property
    def state(self) -> str:
        """Connection state: `'new'`, `'connecting'`, `'connected'`, `'closed'`..."""
        return str(self._pc.connectionState)

    @property
    def peer_uuid(self) -> UUID | None:
        """UUID of the peer, once known."""
        return self._peer_uuid

    @property
    def peer_name(self) -> str | None:
        """Name of the peer, once known."""
        return self._peer_name

    @property
    def ice_state(self) -> str:
        """ICE progress for error messages: gathering, checking and connection state."""
        return (
            f"ICE gathering {self._pc.iceGatheringState}, ICE connection "
            f"{self._pc.iceConnectionState}, peer connection {self.state}, "
            "remote description "
            f"{'not received' if self._peer_uuid is None else 'received'}"
        )

    @property
    def established(self) -> bool:
        """Whether every data channel opened (the connection may have closed since)."""
        return self._ready.done() and self._opened >= self._max_channels

    @property
    def closed(self) -> bool:
        """Whether the connection closed or failed."""
        return self._error is not None

    def on_close_callback(
        self,
        callback: Callable[..., Awaitable[None]],
        *args: Any,
        **kwargs: Any,
    ) -> None:
        """Call `await callback(*args, **kwargs)` once when the connection ends.

        The connection ends when it closes (either side), fails (ICE consent lost,
        e.g. the peer died), or the relay reported an error for the handshake.
        """

        async def _call() -> None:
            await callback(*args, **kwargs)

        self._close_callbacks.append(_call)

    # ------------------------------------------------------------ handshake

    async def send_offer(self, peer_uuid: UUID) -> None:
        """Open the data channels and send an offer to `peer_uuid` via the relay.

        Raises:
            RelayClientError: If the relay cannot be reached for good.
        """
        for i in range(self._max_channels):
            channel = self._pc.createDataChannel(
                f"p2p-{i}-{self._max_channels}", ordered=False
            )
            channel.on("open", self._on_channel_open)
            self._add_channel(channel)
        self._limit_receive_window()
        with (
            allowed_host_addresses(self._ice_addresses),
            fast_retransmits(),
            bounded_gathering(),
        ):
            await self._pc.setLocalDescription(await self._pc.createOffer())
        self._enlarge_buffers()
        self._offered_to = peer_uuid
        logger.info("%s: sending offer to %s", self._log_prefix, peer_uuid)
        await self._relay_client.send(self._description_message(peer_uuid, "offer"))

    def _limit_receive_window(self) -> None:
        # Before the association starts: the window goes out in INIT/INIT-ACK.
        # aiortc keeps it in a private attribute; if a release renames it,
        # nothing changes (aiortc's 1 MiB applies).
        sctp = self._pc.sctp
        if sctp is None:
            return
        if hasattr(sctp, "_advertised_rwnd"):
            sctp._advertised_rwnd = receive_window()
        coalesce_sacks(sctp)

    def _enlarge_buffers(self) -> None:
        # Once gathered: the ICE sockets exist now.
        sctp = self._pc.sctp
        if sctp is not None:
            enlarge_receive_buffers(sctp.transport.transport)

    async def send_answer(self, peer_uuid: UUID) -> None:
        """Answer the offer received from `peer_uuid` via the relay."""
        with (
            allowed_host_addresses(self._ice_addresses),
            fast_retransmits(),
            bounded_gathering(),
        ):
            await self._pc.setLocalDescription(await self._pc.createAnswer())
        self._enlarge_buffers()
        logger.info("%s: sending answer to %s", self._log_prefix, peer_uuid)
        await self._relay_client.send(self._description_message(peer_uuid, "answer"))

    def _description_message(
        self, peer_uuid: UUID, kind: Literal["answer", "offer"]
    ) -> PeerConnectionRequest:
        return PeerConnectionRequest(
            source_uuid=self._relay_client.uuid,
            source_name=self._relay_client.name,
            peer_uuid=peer_uuid,
            description_type=kind,
            description=object_to_string(self._pc.localDescription),
        )

    async def handle_server_message(self, message: PeerConnectionRequest) -> None:
        """Apply an offer or answer (or a relay error) received from the relay.

        An error reported by the relay, or a description that cannot be parsed or
        applied, fails the connection: `ready()` and `send()` then raise
        `PeerConnectionError`.
        """
        if message.error is not None:
            self._fail(
                PeerConnectionError(
                    f"Relay could not reach peer {message.peer_uuid}: {message.error}"
                )
            )
            return
        self._peer_uuid = message.source_uuid
        self._peer_name = message.source_name
        try:
            description = object_from_string(message.description)
        except (ValueError, KeyError, TypeError) as exc:
            self._fail(
                PeerConnectionError(f"Malformed session description from peer: {exc}")
            )
            return
        if not isinstance(description, RTCSessionDescription):
            self._fail(
                PeerConnectionError(
                    f"Expected a session description, got {type(description).__name__}."
                )
            )
            return
        logger.info("%s: received %s", self._log_prefix, message.description_type)
        try:
            with fast_retransmits():
                await self._pc.setRemoteDescription(description)
            self._limit_receive_window()
            if description.type == "offer":
                await self.send_answer(message.source_uuid)
        except (ValueError, RuntimeError) as exc:  # incl. aiortc InvalidStateError
            self._fail(PeerConnectionError(f"Handshake with peer failed: {exc}"))

    async def ready(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait until every data channel is open.

        Args:
            timeout: Seconds to wait; `None` waits as long as it takes.

        Raises:
            PeerConnectionTimeoutError: If the channels do not open in time.
            PeerConnectionError: If the connection failed or closed first.
        """
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), timeout)
        except TimeoutError as exc:
            raise PeerConnectionTimeoutError(
                f"Peer connection {self._log_prefix} not established within "
                f"{timeout} s ({self.ice_state})."
            ) from exc

    # ------------------------------------------------------------ channels

    def _add_channel(self, channel: RTCDataChannel) -> None:
        index = len(self._channels)
        self._channels.append(channel)
        drained = asyncio.Event()
        self._drained[index] = drained
        channel.bufferedAmountLowThreshold = _LOW_WATER
        channel.on("bufferedamountlow", drained.set)
        channel.on("message", self._on_message)
        channel.on("close", self._on_channel_close)

    def _on_channel_open(self) -> None:
        self._opened += 1
        if self._opened >= self._max_channels and not self._ready.done():
            logger.info("%s: peer connection established", self._log_prefix)
            self._ready.set_result(None)

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        match = _LABEL.match(channel.label)
        if match is None:
            logger.warning("%s: ignoring channel %r", self._log_prefix, channel.label)
            return
        self._max_channels = int(match.group(2))
        self._add_channel(channel)
        self._on_channel_open()

    def _on_channel_close(self) -> None:
        self._fail(
            PeerConnectionClosedError(f"Peer connection {self._log_prefix} closed.")
        )

    def _on_state_change(self) -> None:
        state = self._pc.connectionState
        logger.debug("%s: connection state %s", self._log_prefix, state)
        if state in ("failed", "closed"):
            self._fail(
                PeerConnectionClosedError(
                    f"Peer connection {self._log_prefix} {state} ({self.ice_state})."
                )
            )

    def _fail(self, error: PeerConnectionError) -> None:
        if self._error is not None:
            return
        if self._partial:
            detail = ", ".join(
                f"stream {sid}: {len(chunks)} of {chunks[0].seq_len} chunks"
                for sid, chunks in self._partial.items()
            )
            logger.warning(
                "%s: dropping truncated messages (%s)", self._log_prefix, detail
            )
            error = type(error)(f"{error} Truncated incoming messages: {detail}.")
            self._partial.clear()
        logger.info("%s: %s", self._log_prefix, error)
        self._error = error
        if not self._ready.done():
            self._ready.set_exception(error)
        self._incoming.put_nowait(_CLOSED)
        for drained in self._drained.values():
            drained.set()
        for call in self._close_callbacks:
            task = asyncio.get_running_loop().create_task(call())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._close_callbacks.clear()

    def _on_message(self, data: bytes | str) -> None:
        if isinstance(data, str):
            self._fail(PeerConnectionError("Peer sent a text frame; expected chunks."))
            return
        try:
            chunk = Chunk.from_bytes(data)
        except ChunkError as exc:
            self._fail(PeerConnectionError(f"Peer sent a malformed chunk: {exc}"))
            return
        if chunk.seq_len == 1:
            self._incoming.put_nowait(chunk.data)
            return
        chunks = self._partial.setdefault(chunk.stream_id, [])
        chunks.append(chunk)
        if len(chunks) == chunk.seq_len:
            del self._partial[chunk.stream_id]
            try:
                message = reconstruct(chunks)
            except ChunkError as exc:
                self._fail(PeerConnectionError(f"Bad chunk stream from peer: {exc}"))
                return
            self._incoming.put_nowait(message)

    # ------------------------------------------------------------ messages

    async def send(self, message: bytes | str, timeout: float = 30) -> None:  # noqa: ASYNC109
        """Send one message to the peer.

        Args:
            message: The message.
            timeout: Seconds to wait for the connection to be ready, and for each
                wait on a full send buffer.

        Raises:
            PeerConnectionTimeoutError: If the connection is not ready, or the peer
                stops taking data, within `timeout`.
            PeerConnectionError: If the connection failed or closed.
        """
        await self.ready(timeout)
        size = (
            MAX_CHUNK_SIZE_STRING if isinstance(message, str) else MAX_CHUNK_SIZE_BYTES
        )
        stream_id = self._counter.increment()
        channels = len(self._channels)
        for i, chunk in enumerate(chunkify(message, size, stream_id)):
            index = i % channels
            channel = self._channels[index]
            while channel.bufferedAmount > _HIGH_WATER and self._error is None:
                drained = self._drained[index]
                drained.clear()
                try:
                    await asyncio.wait_for(drained.wait(), timeout)
                except TimeoutError as exc:
                    raise PeerConnectionTimeoutError(
                        f"Peer {self._log_prefix} took no data for {timeout} s."
                    ) from exc
            if self._error is not None:
                raise self._error
            try:
                channel.send(bytes(chunk))
            except Exception as exc:  # aiortc raises InvalidStateError when closed
                error = (
                    PeerConnectionClosedError
                    if isinstance(exc, InvalidStateError)
                    else PeerConnectionError
                )
                raise error(f"Cannot send to peer {self._log_prefix}: {exc}") from exc

    async def recv(self, timeout: float | None = None) -> bytes | str:  # noqa: ASYNC109
        """Return the next message from the peer.

        Args:
            timeout: Seconds to wait; `None` waits as long as it takes.

        Raises:
            PeerConnectionTimeoutError: If no message arrives within `timeout`.
            PeerConnectionError: If the connection closed or failed (messages that
                arrived before are returned first).
        """
        try:
            item = await asyncio.wait_for(self._incoming.get(), timeout)
        except TimeoutError as exc:
            raise PeerConnectionTimeoutError(
                f"No message from peer {self._log_prefix} within {timeout} s."
            ) from exc
        if isinstance(item, _Closed):
            self._incoming.put_nowait(_CLOSED)
            assert self._error is not None
            raise self._error
        return item

    async def close(self) -> None:
        """Close the connection, first letting queued data go out (up to 2 s)."""
        if self._error is None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_CLOSE_FLUSH_SECONDS):
                    # aiortc has no event for "buffer empty": poll briefly.
                    while any(c.bufferedAmount > 0 for c in self._channels):  # noqa: ASYNC110
                        await asyncio.sleep(0.01)
        logger.info("%s: closing", self._log_prefix)
        await self._pc.close()
        self._fail(
            PeerConnectionClosedError(f"Peer connection {self._log_prefix} closed.")
        )
