"""Relay (signaling) server: registers peers and forwards their session descriptions.

Peers open a websocket, register with a `RelayRegistrationRequest`, and then send
`PeerConnectionRequest`s that the relay passes to the named peer when both belong to
the same user. The relay carries only the handful of messages that set up a WebRTC
connection; data never flows through it, so peers already connected do not notice
when it goes away.

Identity: a UUID belongs to the connection that registered it (and to the user that
connection authenticated as) for as long as that connection is alive.

* A forwarded request always names its sender by the UUID and name its connection
  registered: whatever `source_uuid`/`source_name` the sender wrote is replaced
  (a connection holding several UUIDs must name one of them), and `error` is
  cleared, since only the relay sets it.
* A second registration of a UUID held by another connection (of any user) is
  refused with 4004 while the holder answers a websocket ping within
  `probe_seconds`; a holder that does not answer (a crashed or cut-off
  endpoint whose socket the relay has not seen close yet) is dropped and the new
  connection takes the UUID over. Every connection is also pinged every
  `heartbeat_seconds` and dropped when it stays silent for half of that.
* When a connection closes, all of its registrations go with it; one connection
  may hold at most `max_registrations` UUIDs.

Malformed input of any shape (not JSON, nested thousands deep, wrong field types,
binary frames, oversized frames) closes that one socket with a close code; the relay
keeps serving everyone else.

Close codes sent to clients:

| code | reason                                                         |
|------|----------------------------------------------------------------|
| 1009 | the frame is larger than the transport limit                   |
| 1011 | the relay failed on the message (a bug; it is logged)          |
| 4000 | the message could not be decoded                               |
| 4001 | the client could not be authenticated                          |
| 4002 | the client asked for something it may not do                   |
| 4003 | the message is larger than `max_message_bytes`                 |
| 4004 | the UUID is held by another live connection (try again later)  |

Reference clients reconnect with backoff on every close, and so does ours on 4004:
an endpoint refused because its previous connection still looked alive gets the
UUID once that connection is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Generic, TypeAlias, TypeVar, overload

import websockets.exceptions
from aiohttp import WSCloseCode, WSMessage, WSMsgType, web

from proxystore.p2p.relay.authenticate import Authenticator
from proxystore.p2p.relay.config import (
    HEARTBEAT_SECONDS,
    MAX_MESSAGE_BYTES,
    MAX_REGISTRATIONS,
    PROBE_SECONDS,
)
from proxystore.p2p.relay.exceptions import (
    ConflictError,
    ForbiddenError,
    RelayServerError,
    UnauthorizedError,
)
from proxystore.p2p.relay.manager import Client, ClientManager
from proxystore.p2p.relay.messages import (
    PeerConnectionRequest,
    RelayMessage,
    RelayMessageDecodeError,
    RelayMessageEncodeError,
    RelayRegistrationRequest,
    RelayResponse,
    decode_relay_message,
    encode_relay_message,
)

__all__ = [
    "CLOSE_UUID_TAKEN",
    "HEARTBEAT_SECONDS",
    "MAX_MESSAGE_BYTES",
    "MAX_REGISTRATIONS",
    "PROBE_SECONDS",
    "RelayServer",
]

logger = logging.getLogger(__name__)

UserT = TypeVar("UserT")

CLOSE_UUID_TAKEN = 4004
"""Close code of a registration refused because a live connection holds the UUID."""

_TRANSPORT_MAX_MESSAGE = 4 * 1024 * 1024
# Seconds a closing socket may take to answer the close frame (a hung client
# would otherwise hold a replaced registration's closer or the shutdown for 10 s).
_CLOSE_TIMEOUT = 2.0
_CLOSE_REASON_BYTES = 123  # the websocket protocol's limit on close reasons


class _WebsocketsSocket:
    """A `websockets` server connection seen through the aiohttp calls the relay uses.

    `websockets.serve(server.handler, ...)` hands the handler a connection of the
    `websockets` library (its `asyncio` implementation, or a legacy protocol). The
    relay's logic is written against aiohttp's `WebSocketResponse`; this wrapper
    offers the few members it calls so that both transports share that logic.
    `websockets` answers pings itself and resolves the waiter `ping()` returns when
    the pong arrives, which is reported through `on_pong`.
    """

    def __init__(self, connection: Any, on_pong: Callable[[], None]) -> None:
        self._connection = connection
        self._on_pong = on_pong

    @property
    def closed(self) -> bool:
        # The asyncio implementation has `state`; the legacy protocol `closed`.
        state = getattr(self._connection, "state", None)
        if state is not None:
            return bool(state.name in ("CLOSING", "CLOSED"))
        return bool(self._connection.closed)

    @property
    def close_code(self) -> int | None:
        code = self._connection.close_code
        return None if code is None else int(code)

    @property
    def headers(self) -> Mapping[str, str]:
        request = getattr(self._connection, "request", None)
        if request is not None:
            return dict(request.headers.raw_items())
        return dict(self._connection.request_headers.raw_items())

    @property
    def remote(self) -> str | None:
        address = self._connection.remote_address
        return None if address is None else str(address[0])

    async def send_str(self, data: str) -> None:
        try:
            await self._connection.send(data)
        except websockets.exceptions.ConnectionClosed as exc:
            raise ConnectionResetError(str(exc)) from exc

    async def ping(self, data: bytes = b"") -> None:
        try:
            waiter = await self._connection.ping(data)
        except websockets.exceptions.ConnectionClosed as exc:
            raise ConnectionResetError(str(exc)) from exc
        waiter.add_done_callback(
            lambda done: (
                None if done.cancelled() or done.exception() else self._on_pong()
            )
        )

    async def pong(self, data: bytes = b"") -> None:  # pragma: no cover - automatic
        await self._connection.pong(data)

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool:
        await self._connection.close(int(code), message.decode("utf-8", "ignore"))
        return True

    async def __aiter__(self) -> AsyncIterator[WSMessage]:
        while True:
            try:
                data = await self._connection.recv()
            except websockets.exceptions.ConnectionClosed:
                return
            kind = WSMsgType.TEXT if isinstance(data, str) else WSMsgType.BINARY
            yield WSMessage(kind, data, None)


_Socket: TypeAlias = web.WebSocketResponse | _WebsocketsSocket


class RelayServer(Generic[UserT]):
    """The relay's message handling, independent of how it is served.

    Serve it with `app()` in an aiohttp runner, with
    `proxystore.p2p.relay.run.serve()`, or with the `websockets` library:
    `websockets.serve(server.handler, host, port)` (then that server's own ping
    interval and message size limit apply instead of `heartbeat_seconds` and the
    4 MiB transport limit).

    Args:
        authenticator: Turns handshake headers into users.
        max_message_bytes: Clients sending a larger message (UTF-8 bytes) are
            disconnected with close code 4003; `None` for no limit beyond the
            transport's 4 MiB.
        heartbeat_seconds: Seconds between the relay's pings on each connection;
            one that does not answer within half of that is closed and its
            registrations dropped.
        probe_seconds: Seconds the holder of a UUID has to answer a ping when
            another connection registers that UUID; after that the newcomer takes
            the UUID over.
        max_registrations: UUIDs one connection may register (more is 4002).

    Raises:
        ValueError: If a limit is not positive.
    """

    def __init__(
        self,
        authenticator: Authenticator[UserT],
        max_message_bytes: int | None = MAX_MESSAGE_BYTES,
        *,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        probe_seconds: float = PROBE_SECONDS,
        max_registrations: int = MAX_REGISTRATIONS,
    ) -> None:
        for name, value in (
            ("max_message_bytes", max_message_bytes),
            ("heartbeat_seconds", heartbeat_seconds),
            ("probe_seconds", probe_seconds),
            ("max_registrations", max_registrations),
        ):
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value!r}.")
        self._authenticator = authenticator
        self._client_manager: ClientManager[UserT] = ClientManager()
        self._max_message_bytes = max_message_bytes
        self._heartbeat = heartbeat_seconds
        self._probe = probe_seconds
        self._max_registrations = max_registrations
        self._sockets: set[_Socket] = set()
        # Per socket (by id): resolved with True by its next PONG, with False
        # when it closes first.
        self._pongs: dict[int, asyncio.Future[bool]] = {}
        self._closers: set[asyncio.Task[None]] = set()

    @property
    def authenticator(self) -> Authenticator[UserT]:
        """The authenticator of this relay."""
        return self._authenticator

    @property
    def client_manager(self) -> ClientManager[UserT]:
        """The registered clients."""
        return self._client_manager

    def app(self) -> web.Application:
        """Return an aiohttp application serving the relay's websocket on any path."""
        app = web.Application()
        app.router.add_get("/", self._handle_aiohttp)
        app.router.add_get("/{tail:.*}", self._handle_aiohttp)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_shutdown(self, app: web.Application) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every client websocket with code 1001 (going away)."""
        sockets = list(self._sockets)
        await asyncio.gather(
            *(
                ws.close(code=WSCloseCode.GOING_AWAY, message=b"Relay shutting down.")
                for ws in sockets
            ),
            return_exceptions=True,
        )
        closers = list(self._closers)
        for task in closers:
            task.cancel()
        await asyncio.gather(*closers, return_exceptions=True)

    async def send(self, client: Client[UserT], message: RelayMessage) -> None:
        """Send `message` to `client`; failures are logged, not raised."""
        try:
            text = encode_relay_message(message)
        except RelayMessageEncodeError as exc:
            logger.error("Cannot encode message for %s: %s", client.uuid, exc)
            return
        try:
            await client.websocket.send_str(text)
        except (ConnectionError, RuntimeError) as exc:
            logger.warning("Could not send to client %s: %s", client.uuid, exc)

    async def register(
        self,
        websocket: _Socket,
        request: RelayRegistrationRequest,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Register the client behind `websocket`.

        Registering again on the same socket under a UUID it already holds is
        accepted (the name is updated).

        Args:
            websocket: The client's websocket.
            request: Its registration request.
            headers: Handshake headers given to the authenticator.

        Raises:
            UnauthorizedError: If the client cannot be authenticated.
            ForbiddenError: If this connection already holds `max_registrations`
                UUIDs, or registers a UUID it holds as another user.
            ConflictError: If the UUID is held by another live connection (of
                this user or another).
        """
        try:
            # Authenticators may block on the network (Globus token introspection):
            # keep the event loop free for other clients meanwhile.
            user = await asyncio.to_thread(
                self.authenticator.authenticate_user, headers or {}
            )
        except RelayServerError as exc:
            logger.warning(
                "Authentication of client %s failed: %s: %s",
                request.uuid,
                type(exc).__name__,
                exc,
            )
            raise
        held = self.client_manager.get_clients_by_websocket(websocket)
        if request.uuid not in {client.uuid for client in held}:
            if len(held) >= self._max_registrations:
                raise ForbiddenError(
                    f"This connection already holds {len(held)} registration(s); "
                    f"the limit is {self._max_registrations}."
                )
            # Probing awaits: another connection may register the UUID meanwhile,
            # so whoever holds it afterwards is probed in turn.
            while (
                existing := self.client_manager.get_client_by_uuid(request.uuid)
            ) is not None:
                await self._take_over(existing, request, user)
        elif any(c.uuid == request.uuid and c.user != user for c in held):
            raise ForbiddenError(
                f"Client UUID {request.uuid} is registered to another user."
            )
        client: Client[UserT] = Client(
            name=request.name, uuid=request.uuid, user=user, websocket=websocket
        )
        self.client_manager.add_client(client)
        logger.info("Registered client %s (%s)", client.uuid, client.name)
        await self.send(client, RelayResponse(success=True))

    async def _take_over(
        self,
        existing: Client[UserT],
        request: RelayRegistrationRequest,
        user: UserT,
    ) -> None:
        """Drop `existing` if it is dead; raise if it still answers."""
        if await self._answers_ping(existing.websocket):
            logger.warning(
                "Refused registration of %s (%s): a live connection%s holds it",
                request.uuid,
                request.name,
                "" if existing.user == user else " of another user",
            )
            # The same code whoever holds it: the UUID is busy, not forbidden to
            # this user for good, and a client that retries gets it once the
            # holder is gone (a squatter cannot lock an endpoint out forever).
            raise ConflictError(
                f"Client UUID {request.uuid} is held by a live connection."
            )
        logger.info(
            "Client %s re-registered; its old connection did not answer a ping "
            "within %.1f s and is dropped",
            request.uuid,
            self._probe,
        )
        self.client_manager.remove_client(existing)
        # The old socket is unresponsive: closing it may wait for its close frame,
        # so it is closed off the registration's path.
        task = asyncio.create_task(
            existing.websocket.close(
                code=CLOSE_UUID_TAKEN, message=b"Replaced by a new registration."
            )
        )
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)

    async def _answers_ping(self, websocket: _Socket) -> bool:
        """Whether `websocket` answers a ping within `probe_seconds`."""
        if websocket.closed:
            return False
        key = id(websocket)
        pong = self._pongs.get(key)
        if pong is None or pong.done():
            pong = asyncio.get_running_loop().create_future()
            self._pongs[key] = pong
        try:
            async with asyncio.timeout(self._probe):
                await websocket.ping(os.urandom(8))
                return await asyncio.shield(pong)
        except (TimeoutError, ConnectionError, RuntimeError):
            return False

    def _pong(self, websocket: _Socket, answered: bool) -> None:
        pong = self._pongs.pop(id(websocket), None)
        if pong is not None and not pong.done():
            pong.set_result(answered)

    async def unregister(
        self,
        client: Client[UserT],
        code: int = 1000,
        reason: str = "",
    ) -> None:
        """Forget `client` and close its websocket with `code` and `reason`."""
        logger.info(
            "Unregistering client %s (%s), code %d", client.uuid, client.name, code
        )
        self.client_manager.remove_client(client)
        await client.websocket.close(code=code, message=reason.encode("utf-8"))

    async def forward(
        self,
        source_client: Client[UserT],
        request: PeerConnectionRequest,
    ) -> None:
        """Pass `request` to its peer, or send it back with `error` set.

        The request leaves the relay naming `source_client` as its sender and with
        no error, whatever the sender wrote in those fields. It is returned with
        an error when the peer is not registered or belongs to a different user.
        """
        request.source_uuid = source_client.uuid
        request.source_name = source_client.name
        request.error = None
        target = self.client_manager.get_client_by_uuid(request.peer_uuid)
        if target is None:
            request.error = (
                f"Cannot forward to peer {request.peer_uuid}: it is not registered "
                "with this relay."
            )
        elif target.user != source_client.user:
            request.error = f"Peer {request.peer_uuid} belongs to a different user."
        if request.error is not None or target is None:
            logger.warning(
                "Not forwarding from %s: %s", source_client.uuid, request.error
            )
            await self.send(source_client, request)
            return
        logger.debug(
            "Forwarding %s from %s to %s",
            request.description_type,
            source_client.uuid,
            target.uuid,
        )
        await self.send(target, request)

    def _sender(
        self, websocket: _Socket, request: PeerConnectionRequest
    ) -> Client[UserT]:
        """The registration of `websocket` that `request` comes from.

        Raises:
            ForbiddenError: If the socket holds no registration, or several and
                `source_uuid` names none of them.
        """
        held = self.client_manager.get_clients_by_websocket(websocket)
        if not held:
            raise ForbiddenError("The client must register before sending requests.")
        for client in held:
            if client.uuid == request.source_uuid:
                return client
        if len(held) == 1:
            logger.warning(
                "Client %s sent a request as %s; forwarding it as %s",
                held[0].uuid,
                request.source_uuid,
                held[0].uuid,
            )
            return held[0]
        raise ForbiddenError(
            f"source_uuid {request.source_uuid} is not registered on this connection."
        )

    async def _process_message(
        self,
        websocket: _Socket,
        message: RelayMessage,
        headers: Mapping[str, str],
    ) -> None:
        if isinstance(message, RelayRegistrationRequest):
            await self.register(websocket, message, headers)
        elif isinstance(message, PeerConnectionRequest):
            await self.forward(self._sender(websocket, message), message)
        else:
            raise ForbiddenError(f"Clients may not send {type(message).__name__}.")

    @overload
    async def handler(self, request: web.Request) -> web.WebSocketResponse: ...

    @overload
    async def handler(self, request: Any) -> None: ...

    async def handler(self, request: Any) -> web.WebSocketResponse | None:
        """Serve one client websocket until it closes.

        Args:
            request: An aiohttp request (the route handler of `app()`), or a
                connection of the `websockets` library, as given by
                `websockets.serve(server.handler, host, port)`.

        Returns:
            The aiohttp websocket response for an aiohttp request, else `None`.
        """
        if isinstance(request, web.Request):
            return await self._handle_aiohttp(request)
        socket = _WebsocketsSocket(request, lambda: self._pong(socket, answered=True))
        await self._run(socket, socket.headers, socket.remote)
        return None

    async def _handle_aiohttp(self, request: web.Request) -> web.WebSocketResponse:
        limit = _TRANSPORT_MAX_MESSAGE
        if self._max_message_bytes is not None:
            # Text is checked in UTF-8 bytes below (4003). The frame limit is
            # looser, so that moderately oversized messages get that clearer
            # code, and keeps far larger ones from being buffered at all (1009).
            limit = min(limit, 4 * self._max_message_bytes + 1024)
        websocket = web.WebSocketResponse(
            heartbeat=self._heartbeat,
            max_msg_size=limit,
            autoping=False,
            timeout=_CLOSE_TIMEOUT,
        )
        await websocket.prepare(request)
        await self._run(websocket, request.headers, request.remote)
        return websocket

    async def _run(
        self, websocket: _Socket, headers: Mapping[str, str], remote: str | None
    ) -> None:
        self._sockets.add(websocket)
        try:
            await self._serve(websocket, headers, remote)
        except ConnectionError as exc:
            logger.info("Connection to %s lost: %s", remote, exc)
        except Exception:
            logger.exception("Relay failed on a message from %s", remote)
            await self._reject(
                websocket, WSCloseCode.INTERNAL_ERROR, "Internal relay error."
            )
        finally:
            self._sockets.discard(websocket)
            self._pong(websocket, answered=False)
            gone = self.client_manager.remove_websocket(websocket)
            for client in gone:
                logger.info("Unregistered client %s (%s)", client.uuid, client.name)
            if not websocket.closed:
                with contextlib.suppress(Exception):
                    await websocket.close()

    async def _serve(
        self,
        websocket: _Socket,
        headers: Mapping[str, str],
        remote: str | None,
    ) -> None:
        async for raw in websocket:
            if raw.type is WSMsgType.PING:
                await websocket.pong(raw.data)
                continue
            if raw.type is WSMsgType.PONG:
                self._pong(websocket, answered=True)
                continue
            if raw.type is not WSMsgType.TEXT:
                if raw.type is WSMsgType.BINARY:
                    await self._reject(
                        websocket, 4000, "Binary frames are not relay messages."
                    )
                elif raw.type is WSMsgType.ERROR:
                    logger.info("Closing websocket %s: %s", remote, raw.data)
                return
            text: str = raw.data
            if (
                self._max_message_bytes is not None
                and len(text.encode("utf-8")) > self._max_message_bytes
            ):
                await self._reject(websocket, 4003, "Message length exceeds limit.")
                return
            try:
                message = decode_relay_message(text)
            except RelayMessageDecodeError as exc:
                logger.warning(
                    "Closing websocket %s: undecodable message: %s", remote, exc
                )
                await self._reject(websocket, 4000, f"Malformed message: {exc}")
                return
            try:
                await self._process_message(websocket, message, headers)
            except UnauthorizedError as exc:
                await self._reject(websocket, 4001, f"UnauthorizedError: {exc}")
                return
            except ForbiddenError as exc:
                await self._reject(websocket, 4002, f"ForbiddenError: {exc}")
                return
            except ConflictError as exc:
                await self._reject(websocket, CLOSE_UUID_TAKEN, f"ConflictError: {exc}")
                return
            except RelayServerError as exc:
                response = RelayResponse(
                    success=False, message=f"{type(exc).__name__}: {exc}", error=True
                )
                await websocket.send_str(encode_relay_message(response))

    @staticmethod
    async def _reject(websocket: _Socket, code: int, reason: str) -> None:
        # Truncated on a character boundary to the protocol's limit.
        data = reason.encode("utf-8")[:_CLOSE_REASON_BYTES]
        data = data.decode("utf-8", errors="ignore").encode("utf-8")
        await websocket.close(code=code, message=data)
