"""The endpoint: an async object store that can reach its peers' objects.

An `Endpoint` keeps objects in a `Storage`. In `EndpointMode.PEERING` (built with
a `PeerManager` connected to a relay server), an operation whose `endpoint`
argument names another endpoint is forwarded to that peer:

* over a **direct HTTP connection** when the peer is reachable from here: the
  first request to a peer asks it, over the peer connection, for its HTTP address,
  uses it only if it is on this machine or on a network listed in
  `direct_networks` (see `proxystore.endpoint._direct`), and checks that it
  answers with the peer's UUID; later requests use a keep-alive connection to it
  and never follow redirects. A check that takes longer than a quarter second
  (an address that drops packets) goes on in the background while requests
  take the WebRTC path, so the direct path never holds a request back;
* over the **WebRTC data channel** otherwise (peers behind NATs), which is what
  the reference release always does.

Every forwarded request is bounded by a timeout and fails with a typed error
(`PeerTimeoutError`, `UnknownPeerError`, `PeerRequestError`) that names the peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID, uuid4

from proxystore.connectors.holders import HolderTable
from proxystore.endpoint import _direct
from proxystore.endpoint._relay_state import relay_unavailable
from proxystore.endpoint.constants import (
    MAX_CHUNK_LENGTH,
    PEER_REQUEST_TIMEOUT_DEFAULT,
)
from proxystore.endpoint.exceptions import (
    MissingDataError,
    ObjectSizeExceededError,
    PeeringNotAvailableError,
    PeerRequestError,
    PeerTimeoutError,
    UnknownPeerError,
)
from proxystore.endpoint.messages import (
    EndpointRequest,
    MessageDecodeError,
    decode_request,
    encode_request,
)
from proxystore.endpoint.storage import DictStorage, Storage, StoredObject
from proxystore.utils._closeable import AsyncStartable

if TYPE_CHECKING:
    import aiohttp

    from proxystore.p2p.manager import PeerManager

__all__ = ["Endpoint", "EndpointMode"]

logger = logging.getLogger(__name__)

#: Seconds allowed for checking that a peer's advertised address answers.
_DIRECT_PROBE_TIMEOUT = 2.0
#: Seconds a request waits for that check before it takes the WebRTC path (the
#: check goes on in the background and later requests use its result).
_DIRECT_PROBE_WAIT = 0.25
#: Bytes of a `GET /endpoint` answer read at most (it is `{"uuid": "..."}`).
_PROBE_BODY_LIMIT = 4096
#: Header carrying the name of the endpoint error behind a non-2xx answer.
ERROR_HEADER = "X-ProxyStore-Error"

_Op = Literal["evict", "exists", "get", "set", "info", "expire", "ttl"]
#: Seconds between two sweeps of expired objects (the default).
SWEEP_INTERVAL_DEFAULT = 1.0


class EndpointMode(enum.Enum):
    """How an endpoint serves requests naming other endpoints."""

    PEERING = enum.auto()
    """Requests for other endpoints are forwarded to those peers."""
    SOLO = enum.auto()
    """No peering: every request is served from local storage."""


class Endpoint(AsyncStartable):
    """An object store that forwards requests for other endpoints to them.

    Use it as an async context manager, or `await` it, so that peering starts::

        async with Endpoint('ep', uuid4()) as endpoint:
            await endpoint.set('key', b'data')

    Args:
        name: Endpoint name (taken from `peer_manager` when one is given).
        uuid: Endpoint UUID (taken from `peer_manager` when one is given).
        peer_manager: Peer manager registered with a relay server; enables
            `EndpointMode.PEERING`.
        storage: Where objects are kept (default: a `DictStorage`).
        address: HTTP address (`http://host:port`) at which this endpoint's REST
            API answers; peers fetch from it directly when they can reach it.
        direct: Whether to fetch from peers over direct HTTP when possible.
        request_timeout: Seconds a forwarded request may take.
        direct_networks: CIDR networks (e.g. `'10.0.0.0/8'`) whose addresses the
            direct path may use besides this machine's own.
        sweep_interval: Seconds between two sweeps of expired objects out of
            the storage (objects stored with a time-to-live; a read never
            returns an expired one, sweep or not).

    Raises:
        ValueError: If neither `name` and `uuid` nor `peer_manager` are given,
            or a network does not parse.
    """

    def __init__(
        self,
        name: str | None = None,
        uuid: UUID | None = None,
        *,
        peer_manager: PeerManager | None = None,
        storage: Storage | None = None,
        address: str | None = None,
        direct: bool = True,
        request_timeout: float = PEER_REQUEST_TIMEOUT_DEFAULT,
        direct_networks: Sequence[str] = (),
        sweep_interval: float = SWEEP_INTERVAL_DEFAULT,
    ) -> None:
        if peer_manager is None and (name is None or uuid is None):
            raise ValueError(
                "Endpoint needs name and uuid when no peer_manager is given."
            )
        self._default_name = name
        self._default_uuid = uuid
        self._peer_manager = peer_manager
        self._storage: Storage = DictStorage() if storage is None else storage
        self._mode = EndpointMode.SOLO if peer_manager is None else EndpointMode.PEERING
        self.address = address
        self._direct_enabled = direct
        self._direct_networks = _direct.direct_networks(direct_networks)
        self._request_timeout = request_timeout
        self._pending: dict[str, tuple[UUID, asyncio.Future[EndpointRequest]]] = {}
        self._peer_handler_task: asyncio.Task[None] | None = None
        self._handler_tasks: set[asyncio.Task[Any]] = set()
        # Peer UUID -> direct HTTP address, or None when the peer cannot be
        # reached directly (decided once per peer, revised when a direct fetch
        # fails).
        self._direct: dict[UUID, str | None] = {}
        self._direct_locks: dict[UUID, asyncio.Lock] = {}
        self._http: aiohttp.ClientSession | None = None
        self._closed = False
        self._sweep_interval = sweep_interval
        self._sweeper: asyncio.Task[None] | None = None
        # Holders of refcounted objects (see `hold`); swept by a task started
        # with the first hold, at a quarter of the shortest lease seen.
        self._holders = HolderTable()
        self._holds_sweeper: asyncio.Task[None] | None = None
        self._holds_period = 1.0
        # Held across the awaits of a hold, release or sweep: each decision
        # (record a hold, evict) is atomic with the storage check it rests on.
        self._holds_lock = asyncio.Lock()

    # ------------------------------------------------------------ identity

    @property
    def mode(self) -> EndpointMode:
        """Whether this endpoint peers with others."""
        return self._mode

    @property
    def name(self) -> str:
        """Name of this endpoint."""
        if self._peer_manager is not None:
            return str(self._peer_manager.name)
        assert self._default_name is not None
        return self._default_name

    @property
    def uuid(self) -> UUID:
        """UUID of this endpoint."""
        if self._peer_manager is not None:
            return self._peer_manager.uuid
        assert self._default_uuid is not None
        return self._default_uuid

    @property
    def peer_manager(self) -> PeerManager | None:
        """The peer manager, once peering has started.

        Raises:
            PeeringNotAvailableError: If the endpoint has a peer manager but
                `async_init()` was not awaited yet.
        """
        if self._peer_manager is not None and self._peer_handler_task is None:
            raise PeeringNotAvailableError(
                "Peering has not started: await the endpoint (or call "
                "async_init()) before using it."
            )
        return self._peer_manager

    def __repr__(self) -> str:
        return f"Endpoint(name={self.name!r}, uuid={self.uuid}, mode={self._mode.name})"

    # ------------------------------------------------------------ lifecycle

    async def _astart(self) -> None:
        await self.async_init()

    async def async_init(self) -> None:
        """Start peering (connect the peer manager, listen to peers); idempotent."""
        if self._peer_manager is not None and self._peer_handler_task is None:
            on_peer_closed = getattr(self._peer_manager, "on_peer_closed", None)
            if on_peer_closed is not None:
                on_peer_closed(self._peer_closed)
            await self._peer_manager.async_init()
            self._peer_handler_task = asyncio.create_task(
                self._handle_peer_messages(), name=f"endpoint-{self.uuid}-peers"
            )
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(
                self._sweep_forever(), name=f"endpoint-{self.uuid}-sweeper"
            )
        logger.info("%r: started", self)

    async def _sweep_forever(self) -> None:
        """Remove expired objects from the storage, every `sweep_interval` s."""
        while True:
            await asyncio.sleep(self._sweep_interval)
            try:
                removed = await self._storage.sweep()
            except Exception as exc:  # keep sweeping; the next one may work
                logger.warning("%r: sweeping expired objects failed: %r", self, exc)
            else:
                if removed:
                    logger.debug("%r: swept %d expired objects", self, removed)

    def _peer_closed(self, peer: UUID) -> None:
        """Fail the requests waiting on `peer`, whose connection went away."""
        self._direct.pop(peer, None)
        for waiting_on, future in list(self._pending.values()):
            if waiting_on == peer and not future.done():
                future.set_exception(
                    PeerRequestError(
                        f"Connection to peer endpoint {peer} closed before it answered."
                    )
                )

    async def close(self) -> None:
        """Stop peering, fail pending requests and close the storage; idempotent."""
        if self._closed:
            return
        self._closed = True
        tasks = [*self._handler_tasks]
        if self._peer_handler_task is not None:
            tasks.append(self._peer_handler_task)
        if self._sweeper is not None:
            tasks.append(self._sweeper)
        if self._holds_sweeper is not None:
            tasks.append(self._holds_sweeper)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for peer, future in self._pending.values():
            if not future.done():
                future.set_exception(
                    PeerRequestError(
                        f"Endpoint {self.uuid} closed before peer {peer} answered."
                    )
                )
                future.exception()  # mark retrieved: nobody may be waiting
        self._pending.clear()
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._peer_manager is not None:
            await self._peer_manager.close()
        await self._storage.close()
        logger.info("%r: closed", self)

    # ------------------------------------------------------------ holders

    async def hold(self, holds: Sequence[Sequence[Any]]) -> list[bool]:
        """Add or renew holds on objects stored here (reference counting).

        Args:
            holds: ``(key, holder, lease, token[, transfer_lease])`` items, as in
                `proxystore.connectors.holders.Hold`.

        Returns:
            For each hold, whether its object is stored on this endpoint (only
            then is the hold recorded; objects of peers are not counted here).

        Raises:
            ValueError: if a hold is malformed.
        """
        async with self._holds_lock:
            await self._evict_lapsed()
            found = []
            for key, holder, lease, token, *rest in holds:
                ok = await self._storage.exists(str(key))
                if ok:
                    transfer_lease = float(rest[0]) if rest else 0.0
                    self._holders.hold(
                        str(key), str(holder), float(lease), token, transfer_lease
                    )
                    self._holds_period = max(0.02, min(self._holds_period, lease / 4))
                found.append(ok)
        if self._holds_sweeper is None and not self._closed:
            self._holds_sweeper = asyncio.create_task(
                self._sweep_holds_forever(), name=f"endpoint-{self.uuid}-holders"
            )
        return found

    async def release(self, key: str, holder: str) -> bool:
        """Drop a hold; evict the object when no live hold is left.

        Returns:
            Whether the object was evicted.
        """
        async with self._holds_lock:
            if self._holders.release(key, holder):
                await self._storage.evict(key)
                return True
            return False

    async def _evict_lapsed(self) -> int:
        gone = self._holders.expired()
        for key in gone:
            await self._storage.evict(key)
        return len(gone)

    async def _sweep_holds_forever(self) -> None:
        """Evict the objects whose holds all lapsed, a few times per lease."""
        while True:
            await asyncio.sleep(self._holds_period)
            try:
                async with self._holds_lock:
                    await self._evict_lapsed()
            except Exception as exc:  # keep sweeping; the next one may work
                logger.warning("%r: sweeping lapsed holds failed: %r", self, exc)

    # ------------------------------------------------------------ operations

    def _is_peer_request(self, endpoint: UUID | None) -> bool:
        return not (
            self._mode is EndpointMode.SOLO or endpoint is None or endpoint == self.uuid
        )

    async def evict(self, key: str, endpoint: UUID | None = None) -> None:
        """Remove the object at `key` on this endpoint or on `endpoint`.

        Raises:
            PeerRequestError: If forwarding to the peer fails.
        """
        if self._is_peer_request(endpoint):
            assert endpoint is not None
            await self._peer_op(endpoint, "evict", key)
        else:
            await self._storage.evict(key)
            self._holders.forget(key)

    async def exists(self, key: str, endpoint: UUID | None = None) -> bool:
        """Return whether an object is stored at `key` here or on `endpoint`.

        Raises:
            PeerRequestError: If forwarding to the peer fails.
        """
        if self._is_peer_request(endpoint):
            assert endpoint is not None
            response = await self._peer_op(endpoint, "exists", key)
            return bool(response.exists)
        return await self._storage.exists(key)

    async def get(self, key: str, endpoint: UUID | None = None) -> bytes | None:
        """Return the object at `key` here or on `endpoint` (`None` if missing).

        Raises:
            PeerRequestError: If forwarding to the peer fails.
        """
        if self._is_peer_request(endpoint):
            assert endpoint is not None
            return (await self._peer_op(endpoint, "get", key)).data
        return await self._storage.get(key, None)

    async def set(
        self,
        key: str,
        data: bytes,
        endpoint: UUID | None = None,
        ttl: float | None = None,
    ) -> None:
        """Store `data` at `key` here or on `endpoint`.

        Raises:
            ObjectSizeExceededError: If `data` exceeds the maximum object size.
            PeerRequestError: If forwarding to the peer fails.
            MissingDataError: If `data` is `None` and `endpoint` is a peer
                (the reference refuses this too, with an `AssertionError`).
        """
        if self._is_peer_request(endpoint):
            assert endpoint is not None
            if data is None:
                raise MissingDataError(
                    f"Cannot set key {key!r} on peer endpoint {endpoint}: the data "
                    "is None (pass the serialized object as bytes)."
                )
            await self._peer_op(endpoint, "set", key, data, ttl=ttl)
        else:
            await self._storage.set(key, data, ttl)

    async def expire(
        self, key: str, ttl: float | None, endpoint: UUID | None = None
    ) -> bool:
        """Give the object at `key` (here or on `endpoint`) a new time-to-live.

        Args:
            key: Key of the object.
            ttl: Seconds from now after which it expires; `None` removes the
                deadline.
            endpoint: Endpoint holding the object (this one when `None`).

        Returns:
            Whether an (unexpired) object exists at `key`.

        Raises:
            PeerRequestError: If forwarding to the peer fails.
        """
        if self._is_peer_request(endpoint):
            assert endpoint is not None
            response = await self._peer_op(endpoint, "expire", key, ttl=ttl)
            return bool(response.exists)
        return await self._storage.expire(key, ttl)

    async def ttl(self, key: str, endpoint: UUID | None = None) -> float | None:
        """Return the seconds before the object at `key` expires (`None`: never/none).

        Raises:
            PeerRequestError: If forwarding to the peer fails.
        """
        if self._is_peer_request(endpoint):
            assert endpoint is not None
            return (await self._peer_op(endpoint, "ttl", key)).ttl
        return await self._storage.ttl(key)

    async def listing(self) -> list[StoredObject]:
        """Every unexpired object of this endpoint with its size, age and TTL."""
        return await self._storage.listing()

    # ------------------------------------------------------------ forwarding

    async def _peer_op(
        self,
        peer: UUID,
        op: _Op,
        key: str,
        data: bytes | None = None,
        *,
        ttl: float | None = None,
    ) -> EndpointRequest:
        address = await self._direct_address(peer)
        if address is not None:
            try:
                return await self._direct_op(peer, address, op, key, data, ttl)
            except _DirectUnavailableError as exc:
                logger.info(
                    "%r: direct path to %s failed (%s); using WebRTC", self, peer, exc
                )
                self._direct[peer] = None
        request = EndpointRequest(
            kind="request", op=op, uuid=str(uuid4()), key=key, data=data, ttl=ttl
        )
        return await self._forward(peer, request)

    async def _forward(self, peer: UUID, request: EndpointRequest) -> EndpointRequest:
        manager = self.peer_manager
        assert manager is not None
        unavailable = relay_unavailable(manager, self.uuid, peer)
        if unavailable is not None:
            raise unavailable
        loop = asyncio.get_running_loop()
        future: asyncio.Future[EndpointRequest] = loop.create_future()
        self._pending[request.uuid] = (peer, future)
        try:
            async with asyncio.timeout(self._request_timeout) as scope:
                try:
                    await manager.send(peer, encode_request(request))
                except Exception as exc:
                    # Includes the manager's own (shorter) connection timeout,
                    # whose message states its duration.
                    raise _peer_error(peer, exc) from exc
                response = await future
        except TimeoutError:
            if not scope.expired():
                raise
            raise PeerTimeoutError(
                f"Peer endpoint {peer} did not answer a {request.op} request "
                f"within {self._request_timeout:g} s."
            ) from None
        finally:
            self._pending.pop(request.uuid, None)
        if response.error is not None:
            raise response.error
        return response

    async def _handle_peer_messages(self) -> None:
        manager = self._peer_manager
        assert manager is not None
        while True:
            source, raw = await manager.recv()
            try:
                message = decode_request(raw.encode() if isinstance(raw, str) else raw)
            except MessageDecodeError as exc:
                logger.warning(
                    "%r: dropped a bad message from %s: %s", self, source, exc
                )
                continue
            if message.kind == "response":
                entry = self._pending.get(message.uuid)
                if entry is None or entry[0] != source or entry[1].done():
                    logger.warning(
                        "%r: response %s from %s matches no request",
                        self,
                        message.uuid,
                        source,
                    )
                else:
                    entry[1].set_result(message)
                continue
            task = asyncio.create_task(self._answer(source, message))
            self._handler_tasks.add(task)
            task.add_done_callback(self._handler_tasks.discard)

    async def _answer(self, source: UUID, message: EndpointRequest) -> None:
        try:
            if message.op == "evict":
                await self._storage.evict(message.key)
            elif message.op == "exists":
                message.exists = await self._storage.exists(message.key)
            elif message.op == "get":
                message.data = await self._storage.get(message.key, None)
            elif message.op == "set":
                await self._storage.set(message.key, message.data or b"", message.ttl)
                message.data = None
            elif message.op == "expire":
                message.exists = await self._storage.expire(message.key, message.ttl)
            elif message.op == "ttl":
                message.ttl = await self._storage.ttl(message.key)
            else:  # info
                message.data = None if self.address is None else self.address.encode()
        except Exception as exc:  # the peer gets the error, we keep serving
            message.data = None
            message.error = exc
        message.kind = "response"
        manager = self._peer_manager
        assert manager is not None
        try:
            await manager.send(source, encode_request(message))
        except Exception as exc:
            logger.warning("%r: could not answer %s: %r", self, source, exc)

    # ------------------------------------------------------------ direct path

    async def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            import aiohttp

            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._request_timeout),
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=None),
            )
        return self._http

    async def _direct_address(self, peer: UUID) -> str | None:
        if not self._direct_enabled:
            return None
        if peer in self._direct:
            return self._direct[peer]
        lock = self._direct_locks.setdefault(peer, asyncio.Lock())
        async with lock:
            if peer in self._direct:
                return self._direct[peer]
            info = await self._forward(
                peer,
                EndpointRequest(kind="request", op="info", uuid=str(uuid4()), key=""),
            )
            candidate = (
                None if info.data is None else info.data.decode(errors="replace")
            )
            pinned = (
                None
                if candidate is None
                else await _direct.pin_direct_url(candidate, self._direct_networks)
            )
            address = None
            if pinned is not None:
                address = await self._probe_briefly(peer, pinned)
            elif candidate is not None:
                logger.info(
                    "%r: not using the address %r peer %s advertised: it is not "
                    "a plain http://host:port on this machine or an allowed network",
                    self,
                    candidate[:200],
                    peer,
                )
            logger.info(
                "%r: peer %s is %s",
                self,
                peer,
                f"reachable directly at {address}"
                if address
                else "reachable over WebRTC only",
            )
            self._direct[peer] = address
            return address

    async def _probe_briefly(self, peer: UUID, address: str) -> str | None:
        """`address` if it answers as `peer` within `_DIRECT_PROBE_WAIT`, else `None`.

        A slower check (an address that drops packets) does not hold the request
        back: it goes on in the background and, if it succeeds, later requests
        to `peer` take the direct path.
        """
        probe = asyncio.create_task(self._probe(peer, address))
        done, _ = await asyncio.wait({probe}, timeout=_DIRECT_PROBE_WAIT)
        if done:
            return address if probe.result() else None

        def finished(task: asyncio.Task[bool]) -> None:
            self._handler_tasks.discard(task)
            if not task.cancelled() and task.exception() is None and task.result():
                logger.info(
                    "%r: peer %s now reachable directly at %s", self, peer, address
                )
                self._direct[peer] = address

        self._handler_tasks.add(probe)
        probe.add_done_callback(finished)
        return None

    async def _probe(self, peer: UUID, address: str) -> bool:
        import aiohttp

        session = await self._session()
        try:
            async with session.get(
                f"{address}/endpoint",
                timeout=aiohttp.ClientTimeout(total=_DIRECT_PROBE_TIMEOUT),
                allow_redirects=False,
            ) as response:
                if response.status != 200:
                    return False
                body = json.loads(await response.content.read(_PROBE_BODY_LIMIT))
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return False
        try:
            return isinstance(body, dict) and UUID(str(body.get("uuid"))) == peer
        except ValueError:
            return False

    async def _direct_op(
        self,
        peer: UUID,
        address: str,
        op: _Op,
        key: str,
        data: bytes | None,
        ttl: float | None = None,
    ) -> EndpointRequest:
        import aiohttp

        session = await self._session()
        params = {"key": key}
        if ttl is not None:
            params["ttl"] = repr(ttl)
        response = EndpointRequest(kind="response", op=op, uuid="", key=key)
        method = "POST" if op in ("set", "evict", "expire") else "GET"
        try:
            async with session.request(
                method,
                f"{address}/{op}",
                params=params,
                data=_body(data),
                allow_redirects=False,
            ) as resp:
                if op == "get" and resp.status == 404:
                    return response
                if 300 <= resp.status < 400:
                    raise _DirectUnavailableError(
                        f"{address} answered {resp.status} (redirects are not followed)"
                    )
                if resp.status >= 400:
                    text = await resp.text()
                    raise _http_error(peer, resp.headers.get(ERROR_HEADER), text)
                if op == "get":
                    response.data = await resp.read()
                elif op in ("exists", "expire"):
                    response.exists = bool((await resp.json())["exists"])
                elif op == "ttl":
                    left = (await resp.json())["ttl"]
                    response.ttl = None if left is None else float(left)
        except aiohttp.ClientConnectionError as exc:
            raise _DirectUnavailableError(str(exc)) from exc
        except TimeoutError:
            raise PeerTimeoutError(
                f"Peer endpoint {peer} did not answer a {op} request within "
                f"{self._request_timeout:g} s."
            ) from None
        return response


def _body(data: bytes | None) -> Any:
    """Request body for aiohttp: small bodies as is, large ones in slices."""
    if data is None or len(data) <= MAX_CHUNK_LENGTH:
        return data

    async def slices() -> Any:
        view = memoryview(data)
        for start in range(0, len(view), MAX_CHUNK_LENGTH):
            yield view[start : start + MAX_CHUNK_LENGTH]

    return slices()


class _DirectUnavailableError(Exception):
    """The direct HTTP path to a peer stopped answering."""


def _http_error(peer: UUID, name: str | None, text: str) -> Exception:
    if name == ObjectSizeExceededError.__name__:
        return ObjectSizeExceededError(text)
    if name == PeerTimeoutError.__name__:
        return PeerTimeoutError(text)
    return PeerRequestError(f"Peer endpoint {peer} failed the request: {text}")


def _peer_error(peer: UUID, exc: Exception) -> PeerRequestError:
    """Translate a peer-manager failure into the endpoint's error tree."""
    text = f"{type(exc).__name__}: {exc}"
    lowered = text.lower()
    if "unknown" in lowered or "not registered" in lowered or "not found" in lowered:
        return UnknownPeerError(
            f"Peer endpoint {peer} is unknown to the relay ({text})."
        )
    if isinstance(exc, TimeoutError):
        return PeerTimeoutError(f"Peer endpoint {peer} timed out ({text}).")
    return PeerRequestError(f"Request to peer endpoint {peer} failed ({text}).")
