"""Client side of the relay: registration, messages, and reconnection.

The transport is the `websockets` library's asyncio client (as in ProxyStore 1.1.0,
so `RelayClient.websocket` is a `websockets` `ClientConnection`). One background reader
per client takes messages off the websocket (so pings are answered and a closed socket
is noticed at once) and queues them for `recv()`. When the relay goes away the reader
reconnects with exponential backoff (1 s doubling to 60 s) unless
`reconnect_task=False`, in which case the next `send()` or `recv()` reconnects.
Close codes meaning the relay refused this client (4001 unauthorized, 4002 forbidden)
are never retried: they surface as `RelayRegistrationError`. A relay that cannot be
reached at all (nothing listening, DNS failure, timeout) is a `RelayConnectionError`,
which is also a `ConnectionError`, so loops that retry on `OSError` keep working.
Close code 4004 (the UUID is held by another live connection) is retried with the
same backoff: it means "not now", and a relay drops a holder that stopped answering,
so an endpoint restarted after a crash gets its UUID back within seconds and a
connection that took it over for a while does not keep it. A client whose
registration is taken from it (4004 on an open socket) registers again after a delay
that doubles while that keeps happening, so two clients sharing a UUID cannot evict
each other in a tight loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import uuid

import websockets.asyncio.client
import websockets.exceptions
from websockets.asyncio.client import ClientConnection
from websockets.protocol import State

from proxystore.p2p.relay.exceptions import (
    RelayConnectionError,
    RelayNotConnectedError,
    RelayRegistrationError,
)
from proxystore.p2p.relay.messages import (
    RelayMessage,
    RelayMessageDecodeError,
    RelayRegistrationRequest,
    RelayResponse,
    decode_relay_message,
    encode_relay_message,
)
from proxystore.utils._closeable import AsyncStartable
from proxystore.utils.environment import hostname

__all__ = ["RelayClient"]

logger = logging.getLogger(__name__)

_HEARTBEAT_SECONDS = 15.0
_MAX_BACKOFF_SECONDS = 60.0
_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
_UNRECOVERABLE_CODES = frozenset({4001, 4002})
_UUID_TAKEN = 4004


class _UuidTaken(ConnectionResetError):
    """The relay closed the registration with 4004: the UUID is busy for now."""


class _Disconnected:
    """Queued by the reader when the socket closed and it will not reconnect."""


_DISCONNECTED = _Disconnected()


class RelayClient(AsyncStartable):
    """Connection of one peer to a relay server.

    The websocket opens on `connect()`, on the first `send()`/`recv()`, on
    `await RelayClient(...)` or on entering `async with`.

    Args:
        address: Relay address, starting with `ws://` or `wss://`.
        client_name: Name to register with; the hostname when `None`.
        client_uuid: UUID to register with; a random one when `None`.
        extra_headers: Extra handshake headers, e.g. `Authorization: Bearer <token>`.
        reconnect_task: Reconnect in the background as soon as the relay goes away;
            otherwise reconnect on the next `send()`/`recv()`.
        ssl_context: TLS context for `wss://`; a default one when `None`.
        timeout: Seconds to wait for the connection and the registration reply.
        verify_certificate: Verify the relay's certificate (only used when
            `ssl_context` is `None`).
        initial_backoff: Seconds before the first reconnection attempt; doubles
            after each failure up to 60 s.

    Raises:
        ValueError: If `address` does not start with `ws://` or `wss://`.
    """

    def __init__(
        self,
        address: str,
        *,
        client_name: str | None = None,
        client_uuid: uuid.UUID | None = None,
        extra_headers: dict[str, str] | None = None,
        reconnect_task: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 10,
        verify_certificate: bool = True,
        initial_backoff: float = 1.0,
    ) -> None:
        if not address.startswith(("ws://", "wss://")):
            raise ValueError(
                f"Relay address must start with ws:// or wss://, got {address!r}."
            )
        self._address = address
        self._name = hostname() if client_name is None else client_name
        self._uuid = uuid.uuid4() if client_uuid is None else client_uuid
        self._extra_headers = dict(extra_headers or {})
        self._reconnect = reconnect_task
        self._timeout = timeout
        if address.startswith("wss://") and ssl_context is None:
            ssl_context = ssl.create_default_context()
            if not verify_certificate:
                ssl_context.check_hostname = False
                ssl_context.verify_mode = ssl.CERT_NONE
        self._ssl_context = ssl_context
        self._initial_backoff_seconds = initial_backoff

        self._websocket: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[RelayMessage | Exception | _Disconnected] = (
            asyncio.Queue()
        )
        self._connect_lock: asyncio.Lock | None = None
        self._fatal: RelayRegistrationError | None = None
        self._closed = False
        self._last_error: str | None = None
        # When the current registration started (loop time), and the delay before
        # registering again after the relay handed this UUID to someone else.
        self._registered_at: float | None = None
        self._taken_backoff = 0.0

    def __repr__(self) -> str:
        return (
            f"RelayClient(address={self._address!r}, name={self._name!r}, "
            f"uuid={self._uuid})"
        )

    async def _astart(self) -> None:
        await self.connect()

    @property
    def address(self) -> str:
        """Address of the relay server."""
        return self._address

    @property
    def name(self) -> str:
        """Name this client registers with."""
        return self._name

    @property
    def uuid(self) -> uuid.UUID:
        """UUID this client registers with."""
        return self._uuid

    @property
    def connected(self) -> bool:
        """Whether the websocket to the relay is open now."""
        return self._websocket is not None and self._websocket.state is State.OPEN

    @property
    def refused(self) -> bool:
        """Whether the relay refused this client for good (4001 or 4002)."""
        return self._fatal is not None

    @property
    def last_error(self) -> str | None:
        """Why the last attempt to register failed (`None` once registered)."""
        return self._last_error

    @property
    def websocket(self) -> ClientConnection:
        """The open websocket to the relay (a `websockets` client connection).

        Raises:
            RelayNotConnectedError: If the websocket is not open.
        """
        if self._websocket is None or not self.connected:
            raise RelayNotConnectedError(
                f"Not connected to the relay at {self._address}; call connect() first."
            )
        return self._websocket

    async def connect(self, retry: bool = True) -> None:
        """Open the websocket and register, unless already connected.

        Args:
            retry: Retry failed attempts (refused connection, timeout, closed
                socket) with exponential backoff from 1 s to 60 s, forever.

        Raises:
            RelayRegistrationError: If the relay refused this client (bad
                credentials, forbidden), or, when `retry` is false, a live relay
                turned the attempt down (the UUID is held by another connection).
            RelayConnectionError: If `retry` is false and the relay could not be
                reached (also a `ConnectionError`, hence an `OSError`).
        """
        if self._closed:
            raise RelayNotConnectedError("The relay client is closed.")
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
        async with self._connect_lock:
            if self.connected:
                return
            if self._fatal is not None:
                raise self._fatal
            backoff = self._initial_backoff_seconds
            while True:
                try:
                    self._websocket = await self._register()
                    self._registered_at = asyncio.get_running_loop().time()
                    self._last_error = None
                    break
                except RelayRegistrationError as exc:
                    self._fatal = exc
                    self._last_error = str(exc)
                    raise
                except (
                    OSError,
                    TimeoutError,
                    websockets.exceptions.WebSocketException,
                ) as exc:
                    self._last_error = f"{type(exc).__name__}: {exc}"
                    if not retry:
                        error = (
                            RelayRegistrationError
                            if isinstance(exc, _UuidTaken)
                            else RelayConnectionError
                        )
                        raise error(
                            f"Cannot register with the relay at {self._address}: "
                            f"{self._last_error}"
                        ) from exc
                    logger.warning(
                        "Registering with relay %s failed (%s: %s); retry in %.1f s",
                        self._address,
                        type(exc).__name__,
                        exc,
                        backoff,
                    )
                    await asyncio.sleep(backoff)
                    backoff = min(2 * backoff, _MAX_BACKOFF_SECONDS)
            if self._reader is None or self._reader.done():
                self._reader = asyncio.create_task(
                    self._read(), name=f"relay-client-reader-{self._uuid}"
                )

    async def _register(self) -> ClientConnection:
        async with asyncio.timeout(self._timeout):
            websocket = await websockets.asyncio.client.connect(
                self._address,
                additional_headers=self._extra_headers,
                ssl=self._ssl_context if self._address.startswith("wss://") else None,
                open_timeout=None,
                ping_interval=_HEARTBEAT_SECONDS,
                ping_timeout=_HEARTBEAT_SECONDS,
                max_size=_MAX_MESSAGE_BYTES,
                proxy=None,
            )
        try:
            await websocket.send(
                encode_relay_message(RelayRegistrationRequest(self._name, self._uuid))
            )
            async with asyncio.timeout(self._timeout):
                reply = await websocket.recv()
        except websockets.exceptions.ConnectionClosed:
            code = websocket.close_code
            if code in _UNRECOVERABLE_CODES:
                raise RelayRegistrationError(
                    f"The relay at {self._address} refused registration "
                    f"(close code {code}): {websocket.close_reason or ''}"
                ) from None
            error = _UuidTaken if code == _UUID_TAKEN else ConnectionResetError
            raise error(
                f"The relay at {self._address} closed the socket while registering "
                f"(code {code})."
            ) from None
        except BaseException:
            await websocket.close()
            raise
        if not isinstance(reply, str):
            await websocket.close()
            raise RelayRegistrationError(
                f"The relay at {self._address} replied to registration with a "
                "binary frame."
            )
        try:
            message = decode_relay_message(reply)
        except RelayMessageDecodeError as exc:
            await websocket.close()
            raise RelayRegistrationError(
                f"Cannot decode the registration reply of {self._address}: {exc}"
            ) from exc
        if not isinstance(message, RelayResponse) or not message.success:
            await websocket.close()
            detail = (
                message.message
                if isinstance(message, RelayResponse)
                else type(message).__name__
            )
            raise RelayRegistrationError(
                f"The relay at {self._address} did not accept registration: {detail}"
            )
        logger.info(
            "Registered with relay %s as %s (%s)", self._address, self._name, self._uuid
        )
        return websocket

    async def _read(self) -> None:
        while True:
            websocket = self._websocket
            assert websocket is not None
            with contextlib.suppress(websockets.exceptions.ConnectionClosed):
                async for raw in websocket:
                    if isinstance(raw, str):
                        try:
                            self._queue.put_nowait(decode_relay_message(raw))
                        except RelayMessageDecodeError as exc:
                            logger.warning(
                                "Undecodable message from the relay: %s", exc
                            )
                            self._queue.put_nowait(exc)
                    else:
                        self._queue.put_nowait(
                            RelayMessageDecodeError("The relay sent a binary frame.")
                        )
            if self._closed:
                return
            code = websocket.close_code
            if code in _UNRECOVERABLE_CODES:
                self._fatal = RelayRegistrationError(
                    f"The relay at {self._address} closed this client (code {code})."
                )
                self._queue.put_nowait(self._fatal)
                return
            logger.warning(
                "Connection to relay %s closed (code %s)", self._address, code
            )
            if not self._reconnect:
                self._reader = None
                self._queue.put_nowait(_DISCONNECTED)
                return
            if code == _UUID_TAKEN:
                await asyncio.sleep(self._next_taken_backoff())
            try:
                await self.connect()
            except RelayRegistrationError as exc:
                self._queue.put_nowait(exc)
                return

    def _next_taken_backoff(self) -> float:
        """Delay before registering again after losing the UUID (4004).

        It doubles while registrations keep being taken within a minute (two
        clients with one UUID on a relay that lets each replace the other would
        otherwise take turns as fast as they can) and starts over otherwise.
        """
        now = asyncio.get_running_loop().time()
        recent = (
            self._registered_at is not None
            and now - self._registered_at < _MAX_BACKOFF_SECONDS
        )
        self._taken_backoff = (
            min(2 * self._taken_backoff, _MAX_BACKOFF_SECONDS)
            if recent and self._taken_backoff > 0
            else self._initial_backoff_seconds
        )
        logger.warning(
            "The relay at %s gave UUID %s to another connection (is this client "
            "running twice?); registering again in %.1f s",
            self._address,
            self._uuid,
            self._taken_backoff,
        )
        return self._taken_backoff

    async def close(self) -> None:
        """Close the connection to the relay (idempotent)."""
        self._closed = True
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        if self._websocket is not None:
            await self._websocket.close()

    async def recv(self, timeout: float | None = None) -> RelayMessage:  # noqa: ASYNC109
        """Return the next message from the relay.

        Args:
            timeout: Seconds to wait; `None` waits as long as it takes.

        Raises:
            RelayMessageDecodeError: If the relay sent something undecodable.
            RelayRegistrationError: If the relay refused or dropped this client for
                good (close codes 4001, 4002).
            TimeoutError: If no message arrives within `timeout`.
        """
        async with asyncio.timeout(timeout):
            while True:
                if self._queue.empty() and not self.connected:
                    await self.connect()
                item = await self._queue.get()
                if isinstance(item, _Disconnected):
                    continue
                if isinstance(item, Exception):
                    raise item
                return item

    async def send(self, message: RelayMessage) -> None:
        """Send `message` to the relay, connecting first if needed.

        Raises:
            RelayMessageEncodeError: If the message cannot be encoded.
            RelayRegistrationError: If (re)connecting is refused for good.
        """
        text = encode_relay_message(message)
        if not self.connected:
            await self.connect()
        try:
            await self.websocket.send(text)
        except (websockets.exceptions.ConnectionClosed, RelayNotConnectedError):
            await self.connect()
            await self.websocket.send(text)
