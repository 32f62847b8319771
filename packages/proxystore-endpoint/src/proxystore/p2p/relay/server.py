"""Relay (signaling) server: registers peers and forwards their session descriptions.

Peers open a websocket, register with a `RelayRegistrationRequest`, and then send
`PeerConnectionRequest`s that the relay passes to the named peer when both belong to
the same user. The relay carries only the handful of messages that set up a WebRTC
connection; data never flows through it, so peers already connected do not notice
when it goes away.

Close codes sent to clients:

| code | reason                                                  |
|------|---------------------------------------------------------|
| 4000 | the message could not be decoded                        |
| 4001 | the client could not be authenticated                   |
| 4002 | the client asked for something it may not do            |
| 4003 | the message is larger than `max_message_bytes`          |
| 4004 | another connection registered the same client UUID      |
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Generic, TypeVar

from aiohttp import WSCloseCode, WSMsgType, web

from proxystore.p2p.relay.authenticate import Authenticator
from proxystore.p2p.relay.exceptions import (
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

__all__ = ["HEARTBEAT_SECONDS", "RelayServer"]

logger = logging.getLogger(__name__)

UserT = TypeVar("UserT")

HEARTBEAT_SECONDS = 15.0
"""Seconds between websocket pings; a peer silent for longer is dropped."""

_TRANSPORT_MAX_MESSAGE = 4 * 1024 * 1024


class RelayServer(Generic[UserT]):
    """The relay's message handling, independent of how it is served.

    Serve it with `app()` in an aiohttp runner, or with
    `proxystore.p2p.relay.run.serve()`.

    Args:
        authenticator: Turns handshake headers into users.
        max_message_bytes: Clients sending a larger message (UTF-8 bytes) are
            disconnected with close code 4003; `None` for no limit beyond the
            transport's 4 MiB.
    """

    def __init__(
        self,
        authenticator: Authenticator[UserT],
        max_message_bytes: int | None = None,
    ) -> None:
        self._authenticator = authenticator
        self._client_manager: ClientManager[UserT] = ClientManager()
        self._max_message_bytes = max_message_bytes
        self._sockets: set[web.WebSocketResponse] = set()

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
        app.router.add_get("/", self.handler)
        app.router.add_get("/{tail:.*}", self.handler)
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
        websocket: web.WebSocketResponse,
        request: RelayRegistrationRequest,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Register the client behind `websocket`.

        Args:
            websocket: The client's websocket.
            request: Its registration request.
            headers: Handshake headers given to the authenticator.

        Raises:
            UnauthorizedError: If the client cannot be authenticated.
            ForbiddenError: If the UUID is registered to a different user.
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
        existing = self.client_manager.get_client_by_uuid(request.uuid)
        if existing is not None and existing.websocket is not websocket:
            if existing.user != user:
                raise ForbiddenError(
                    f"Client UUID {request.uuid} is registered to another user."
                )
            logger.info(
                "Client %s registered again on a new socket; closing the old one",
                request.uuid,
            )
            await self.unregister(
                existing,
                code=4004,
                reason="Another connection registered the same client UUID.",
            )
        client: Client[UserT] = Client(
            name=request.name, uuid=request.uuid, user=user, websocket=websocket
        )
        self.client_manager.add_client(client)
        logger.info("Registered client %s (%s)", client.uuid, client.name)
        await self.send(client, RelayResponse(success=True))

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

        The request is returned with an error when the peer is not registered or
        belongs to a different user.
        """
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

    async def _process_message(
        self,
        websocket: web.WebSocketResponse,
        message: RelayMessage,
        headers: Mapping[str, str],
    ) -> None:
        if isinstance(message, RelayRegistrationRequest):
            await self.register(websocket, message, headers)
        elif isinstance(message, PeerConnectionRequest):
            client = self.client_manager.get_client_by_websocket(websocket)
            if client is None:
                raise ForbiddenError(
                    "The client must register before sending requests."
                )
            await self.forward(client, message)
        else:
            raise ForbiddenError(f"Clients may not send {type(message).__name__}.")

    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        """Serve one client websocket until it closes."""
        limit = _TRANSPORT_MAX_MESSAGE
        if self._max_message_bytes is not None:
            limit = max(limit, 2 * self._max_message_bytes)
        websocket = web.WebSocketResponse(
            heartbeat=HEARTBEAT_SECONDS, max_msg_size=limit
        )
        await websocket.prepare(request)
        self._sockets.add(websocket)
        try:
            await self._serve(websocket, request.headers, request.remote)
        finally:
            self._sockets.discard(websocket)
            client = self.client_manager.get_client_by_websocket(websocket)
            if client is not None:
                await self.unregister(client)
        return websocket

    async def _serve(
        self,
        websocket: web.WebSocketResponse,
        headers: Mapping[str, str],
        remote: str | None,
    ) -> None:
        async for raw in websocket:
            if raw.type is not WSMsgType.TEXT:
                if raw.type is WSMsgType.BINARY:
                    await self._reject(
                        websocket, 4000, "Binary frames are not relay messages."
                    )
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
            except RelayServerError as exc:
                response = RelayResponse(
                    success=False, message=f"{type(exc).__name__}: {exc}", error=True
                )
                await websocket.send_str(encode_relay_message(response))

    @staticmethod
    async def _reject(websocket: web.WebSocketResponse, code: int, reason: str) -> None:
        # Close reasons are limited to 123 bytes by the websocket protocol.
        await websocket.close(code=code, message=reason.encode("utf-8")[:123])
