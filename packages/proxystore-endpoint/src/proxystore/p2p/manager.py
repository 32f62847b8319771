"""Peer connections to many peers, made and answered through one relay client.

`PeerManager` listens to the relay for offers and answers, keeps one
`PeerConnection` per peer, and funnels every peer's messages into one `recv()`.
Every wait is bounded: making a connection by `timeout`, each `send()` by its own
timeout. A peer that goes away (closed, failed, or the relay says it is unknown)
makes `send()` raise `PeerConnectionError`; the dead connection is dropped so the
next `send()` makes a new one, and `on_peer_closed` callbacks are told.

When two peers offer to each other at the same time, the offer from the larger UUID
wins; an offer from a peer we are already connected to (it restarted) replaces the
old connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from uuid import UUID

from aiortc import RTCIceServer

from proxystore.p2p._ice import validate_addresses
from proxystore.p2p.connection import PeerConnection, log_name
from proxystore.p2p.exceptions import PeerConnectionError, PeerConnectionTimeoutError
from proxystore.p2p.relay.client import RelayClient
from proxystore.p2p.relay.exceptions import (
    RelayClientError,
    RelayConnectionError,
    RelayRegistrationError,
)
from proxystore.p2p.relay.messages import (
    PeerConnectionRequest,
    RelayMessageDecodeError,
    RelayResponse,
)
from proxystore.utils._closeable import AsyncStartable

__all__ = ["PeerManager"]

logger = logging.getLogger(__name__)

#: Seconds `async_init` waits for the relay before registering in the background.
_START_WAIT = 1.0

_NOT_STARTED = (
    "The peer manager is not started; use `await PeerManager(...)` or call "
    "async_init()."
)


class PeerManager(AsyncStartable):
    """Send and receive messages to and from peers by UUID.

    Use `manager = await PeerManager(...)` or `async with PeerManager(...)`.

    Args:
        relay_client: Client of the relay server (connected by the manager).
        timeout: Seconds to wait for a new peer connection to be established.
        peer_channels: Data channels per peer connection.
        ice_servers: STUN/TURN servers; `None` uses aiortc's default, `[]` none.
        ice_addresses: Local IP addresses ICE may offer; `None` offers every
            non-loopback interface. `["127.0.0.1"]` keeps traffic on loopback.

    Raises:
        ValueError: If `peer_channels` is below 1 or an ICE address is not an IP.
    """

    def __init__(
        self,
        relay_client: RelayClient,
        *,
        timeout: float = 30,
        peer_channels: int = 1,
        ice_servers: Sequence[RTCIceServer] | None = None,
        ice_addresses: Sequence[str] | None = None,
    ) -> None:
        if peer_channels < 1:
            raise ValueError(f"peer_channels must be at least 1, got {peer_channels}.")
        self._relay_client = relay_client
        self._timeout = timeout
        self._peer_channels = peer_channels
        self._ice_servers = None if ice_servers is None else list(ice_servers)
        self._ice_addresses = (
            None if ice_addresses is None else validate_addresses(ice_addresses)
        )
        self._peers: dict[frozenset[UUID], PeerConnection] = {}
        self._readers: dict[frozenset[UUID], asyncio.Task[None]] = {}
        self._messages: asyncio.Queue[tuple[UUID, bytes | str]] = asyncio.Queue()
        self._server_task: asyncio.Task[None] | None = None
        self._closed_callbacks: list[Callable[[UUID], object]] = []
        self._lock: asyncio.Lock | None = None

    def __repr__(self) -> str:
        return f"PeerManager({self._log_prefix}, peers={len(self._peers)})"

    @property
    def _log_prefix(self) -> str:
        return log_name(self._relay_client.uuid, self._relay_client.name)

    @property
    def name(self) -> str:
        """Name this manager is registered under at the relay."""
        return self._relay_client.name

    @property
    def uuid(self) -> UUID:
        """UUID this manager is registered under at the relay."""
        return self._relay_client.uuid

    @property
    def relay_client(self) -> RelayClient:
        """The relay client.

        Raises:
            RuntimeError: If the manager was not started (`await` or `async_init()`).
        """
        if self._server_task is None:
            raise RuntimeError(_NOT_STARTED)
        return self._relay_client

    @property
    def peers(self) -> list[UUID]:
        """UUIDs of the peers with a current connection."""
        return [next(iter(pair - {self.uuid}), self.uuid) for pair in list(self._peers)]

    async def async_init(self) -> None:
        """Connect to the relay and start answering peers (idempotent).

        A relay that cannot be reached does not block start-up: the manager keeps
        trying in the background (1 s doubling to 60 s) and offers to new peers fail
        with `PeerConnectionError` until it succeeds. A relay that does not answer
        (packets dropped, a stalled handshake) holds start-up back for at most
        one second; registration then goes on in the background too.

        Raises:
            RelayRegistrationError: If the relay refuses this client.
        """
        if self._lock is None:
            self._lock = asyncio.Lock()
        try:
            async with asyncio.timeout(_START_WAIT):
                await self._relay_client.connect(retry=False)
        except TimeoutError:
            logger.warning(
                "%s: relay %s did not answer within %g s; registering in the "
                "background",
                self._log_prefix,
                self._relay_client.address,
                _START_WAIT,
            )
        except (RelayRegistrationError, RelayConnectionError):
            if self._relay_client.refused:
                raise
            logger.warning(
                "%s: relay %s unreachable; retrying in the background",
                self._log_prefix,
                self._relay_client.address,
            )
        if self._server_task is None:
            self._server_task = asyncio.create_task(
                self._handle_server_messages(),
                name=f"peer-manager-relay-{self._relay_client.uuid}",
            )

    async def _astart(self) -> None:
        await self.async_init()

    def on_peer_closed(self, callback: Callable[[UUID], object]) -> None:
        """Call `callback(peer_uuid)` whenever an established peer connection ends.

        A connection that fails before it comes up is not reported: the send
        that made it raised (or went on over a fresh connection).

        An awaitable result is awaited in a background task.
        """
        self._closed_callbacks.append(callback)

    def _new_connection(self) -> PeerConnection:
        return PeerConnection(
            self._relay_client,
            channels=self._peer_channels,
            ice_servers=self._ice_servers,
            ice_addresses=self._ice_addresses,
        )

    def _track(self, pair: frozenset[UUID], peer: UUID, conn: PeerConnection) -> None:
        self._peers[pair] = conn
        self._readers[pair] = asyncio.create_task(
            self._read_peer(peer, conn), name=f"peer-manager-read-{peer}"
        )
        conn.on_close_callback(self._connection_ended, pair, peer, conn)

    async def _read_peer(self, peer: UUID, connection: PeerConnection) -> None:
        with contextlib.suppress(PeerConnectionError):
            while True:
                message = await connection.recv()
                self._messages.put_nowait((peer, message))

    async def _connection_ended(
        self, pair: frozenset[UUID], peer: UUID, connection: PeerConnection
    ) -> None:
        if self._peers.get(pair) is connection:
            del self._peers[pair]
            self._readers.pop(pair, None)
        await connection.close()
        if not connection.established:
            # Nothing was sent over it, so nobody waits for an answer through it;
            # telling the callbacks would fail requests already on its successor.
            return
        for callback in self._closed_callbacks:
            try:
                result = callback(peer)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                logger.exception("%s: on_peer_closed callback failed", self._log_prefix)

    async def _handle_server_messages(self) -> None:
        logger.info("%s: listening to the relay", self._log_prefix)
        while True:
            try:
                message = await self._relay_client.recv()
            except RelayMessageDecodeError as exc:
                logger.error(
                    "%s: skipping bad relay message: %s", self._log_prefix, exc
                )
                continue
            except RelayClientError as exc:
                logger.error("%s: relay client stopped: %s", self._log_prefix, exc)
                return
            if isinstance(message, PeerConnectionRequest):
                try:
                    await self._handle_peer_request(message)
                except Exception:
                    logger.exception(
                        "%s: failed to handle a peer request", self._log_prefix
                    )
            elif isinstance(message, RelayResponse):
                logger.warning(
                    "%s: unexpected relay response %s", self._log_prefix, message
                )
            else:
                logger.warning(
                    "%s: unexpected relay message %s",
                    self._log_prefix,
                    type(message).__name__,
                )

    async def _handle_peer_request(self, message: PeerConnectionRequest) -> None:
        # A request returned with an error was ours: the peer is the one we asked for.
        peer = message.peer_uuid if message.error is not None else message.source_uuid
        pair = frozenset({self.uuid, peer})
        existing = self._peers.get(pair)
        if message.error is None and message.description_type == "offer":
            if existing is not None:
                pending = existing.state not in ("connected",) and not existing.closed
                if pending and self.uuid > peer:
                    logger.info(
                        "%s: both sides offered; keeping ours", self._log_prefix
                    )
                    return
                logger.info(
                    "%s: new offer from %s replaces the current connection",
                    self._log_prefix,
                    log_name(peer, message.source_name),
                )
                del self._peers[pair]
                self._readers.pop(pair, None)
                await existing.close()
            connection = self._new_connection()
            self._track(pair, peer, connection)
            await connection.handle_server_message(message)
            return
        if existing is None:
            logger.warning(
                "%s: no connection for %s from %s (%s)",
                self._log_prefix,
                message.description_type,
                peer,
                message.error,
            )
            return
        await existing.handle_server_message(message)

    async def get_connection(self, peer_uuid: UUID) -> PeerConnection:
        """Return the connection to `peer_uuid`, sending an offer if there is none.

        The connection may still be connecting; `PeerConnection.ready()` waits.

        Raises:
            ValueError: If `peer_uuid` is this manager's own UUID.
            RuntimeError: If the manager was not started (`await` or
                `async_init()`).
            PeerConnectionTimeoutError: If the offer cannot be sent within `timeout`
                (e.g. the relay is down).
            PeerConnectionError: If the relay refuses this client.
        """
        if peer_uuid == self.uuid:
            raise ValueError("A peer manager cannot connect to itself.")
        if self._lock is None:
            raise RuntimeError(_NOT_STARTED)
        pair = frozenset({self.uuid, peer_uuid})
        async with self._lock:
            existing = self._peers.get(pair)
            if existing is not None and not existing.closed:
                return existing
            connection = self._new_connection()
            self._track(pair, peer_uuid, connection)
        logger.info("%s: connecting to %s", self._log_prefix, peer_uuid)
        try:
            async with asyncio.timeout(self._timeout):
                await connection.send_offer(peer_uuid)
        except (TimeoutError, RelayClientError) as exc:
            await self.close_connection(pair)
            if isinstance(exc, TimeoutError):
                raise PeerConnectionTimeoutError(
                    f"Could not send an offer to {peer_uuid} via the relay within "
                    f"{self._timeout} s."
                ) from exc
            raise PeerConnectionError(
                f"Could not send an offer to {peer_uuid}: {exc}"
            ) from exc
        return connection

    async def send(
        self,
        peer_uuid: UUID,
        message: bytes | str,
        timeout: float = 30,  # noqa: ASYNC109
    ) -> None:
        """Send `message` to the peer `peer_uuid`, connecting first if needed.

        Args:
            peer_uuid: The peer.
            message: The message (any size).
            timeout: Seconds to wait for the connection, and for each stall of the
                send buffer.

        Raises:
            PeerConnectionTimeoutError: If the connection or the transfer stalls
                longer than `timeout`.
            PeerConnectionError: If the peer is unknown to the relay, or the
                connection failed or closed.
        """
        pair = frozenset({self.uuid, peer_uuid})
        for attempt in range(2):
            connection = await self.get_connection(peer_uuid)
            try:
                await self._established(pair, connection, min(timeout, self._timeout))
                await connection.send(message, timeout)
                return
            except PeerConnectionError as exc:
                replacement = self._peers.get(pair)
                # Lost an offer race: the peer's own offer replaced ours; use it.
                # Or the connection failed before it came up (ICE found no pair,
                # e.g. while UDP was blocked): that says nothing about a new one.
                failed_early = not connection.established and not isinstance(
                    exc, PeerConnectionTimeoutError
                )
                if attempt == 0 and (
                    replacement not in (None, connection) or failed_early
                ):
                    continue
                raise

    async def _established(
        self,
        pair: frozenset[UUID],
        connection: PeerConnection,
        timeout: float,  # noqa: ASYNC109
    ) -> None:
        """Wait up to `timeout` for `connection`; drop it if it does not make it.

        A connection whose offer or answer was lost, or whose ICE checks find no
        working candidate pair, would otherwise stay "connecting" (aioice gives up
        only after about a minute) and every request would wait on it. Dropping it
        makes the next request start a fresh connection.
        """
        if connection.established:
            return
        try:
            await connection.ready(timeout)
        except PeerConnectionError:
            if self._peers.get(pair) is connection:
                logger.info(
                    "%s: dropping the connection that did not come up (%s)",
                    self._log_prefix,
                    connection.ice_state,
                )
                await self.close_connection(pair)
            raise

    async def recv(self, timeout: float | None = None) -> tuple[UUID, bytes | str]:  # noqa: ASYNC109
        """Return the next `(peer_uuid, message)` from any peer.

        Raises:
            PeerConnectionTimeoutError: If nothing arrives within `timeout`.
        """
        try:
            return await asyncio.wait_for(self._messages.get(), timeout)
        except TimeoutError as exc:
            raise PeerConnectionTimeoutError(
                f"No peer message within {timeout} s."
            ) from exc

    async def close_connection(self, peers: Iterable[UUID]) -> None:
        """Close the connection between the two `peers` if there is one."""
        pair = frozenset(peers)
        connection = self._peers.pop(pair, None)
        reader = self._readers.pop(pair, None)
        if connection is not None:
            await connection.close()
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def close(self) -> None:
        """Close every peer connection and the relay client."""
        if self._server_task is not None:
            self._server_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._server_task
        for pair in list(self._peers):
            await self.close_connection(pair)
        for reader in list(self._readers.values()):
            reader.cancel()
        await self._relay_client.close()
        logger.info("%s: peer manager closed", self._log_prefix)
