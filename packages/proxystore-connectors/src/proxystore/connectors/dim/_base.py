"""Connector logic shared by every DIM transport."""

from __future__ import annotations

import logging
import os
import struct
import subprocess
import warnings
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Self

from proxystore.connectors.dim.exceptions import DIMServerError, ServerTimeoutError
from proxystore.connectors.dim.models import (
    DIMKey,
    DIMType,
    Op,
    Request,
    Response,
    Status,
)
from proxystore.connectors.dim.server import stop_server_process
from proxystore.connectors.dim.transport import Transport
from proxystore.connectors.dim.utils import resolve_address
from proxystore.connectors.exceptions import ConnectorConnectionError
from proxystore.connectors.protocols import BytesLike, check_ttl
from proxystore.utils._closeable import Closeable
from proxystore.utils._ids import uuid4_hex

_log = logging.getLogger(__name__)

__all__ = ["PeerConnector"]

# Requests are bounded by `timeout` plus the time to move their bytes at this (low)
# rate, so a dead peer fails fast while a multi-GB object on a busy link is not cut
# off: ZeroMQ delivers a message whole, so progress cannot be watched instead.
_MIN_BYTES_PER_SECOND = 64 * 1024 * 1024


class PeerConnector(Closeable):
    """Connector API over a `Transport`; subclasses pick the transport.

    Objects are put on this peer's server; a get, exists or evict goes to the peer
    named in the key. A subclass sets `dim_type` and, in ``__init__``, calls
    `_locate` then `_start` with its transport and a function that
    spawns its server; everything else is shared.
    """

    dim_type: ClassVar[DIMType]
    address: str
    port: int
    timeout: float
    _address: str | None
    _interface: str | None
    _transport: Transport
    _server: subprocess.Popen[bytes] | None
    _kill_timeout: float = 1.0
    _spawner_pid: int = -1
    _closed: bool = False

    def __repr__(self) -> str:
        server = "none" if self._server is None else f"pid {self._server.pid}"
        state = "closed" if self._closed else "open"
        return (
            f"{type(self).__name__}(address={self.address!r}, port={self.port}, "
            f"timeout={self.timeout}, spawned_server={server}, {state})"
        )

    def __del__(self) -> None:
        if not self._closed and hasattr(self, "_transport"):
            warnings.warn(
                f"{type(self).__name__} for {self.address}:{self.port} was not "
                "closed; call close() or use it as a context manager",
                ResourceWarning,
                stacklevel=2,
            )

    def _locate(
        self,
        port: int,
        address: str | None,
        interface: str | None,
        timeout: float,
    ) -> None:
        """Record where this peer's server is (``address`` wins over ``interface``).

        Raises:
            ValueError: If ``interface`` has no IPv4 address.
        """
        # Kept as given so a config rebuilt on another host resolves its own address.
        self._address = address
        self._interface = interface
        self.address = resolve_address(address, interface)
        self.port = port
        self.timeout = timeout

    def config(self) -> dict[str, Any]:
        """Plain-data configuration from which `from_config` rebuilds it.

        ``address`` and ``interface`` are kept as given (not resolved), so a
        connector rebuilt on another host attaches to that host's server.
        """
        return {
            "port": self.port,
            "address": self._address,
            "interface": self._interface,
            "timeout": self.timeout,
        }

    def _start(
        self,
        transport: Transport,
        spawn: Callable[[], subprocess.Popen[bytes]],
        *,
        look_first: bool = True,
    ) -> None:
        """Attach to this peer's server, spawning it when none answers.

        Raises:
            ServerTimeoutError: If a spawned server does not answer in time.
            ConnectorConnectionError: If a spawned server exits at once and no
                other server answers on the port.
        """
        self._transport = transport
        self._server = None
        self._spawner_pid = os.getpid()
        try:
            if not (look_first and self._server_answers()):
                try:
                    self._server = spawn()
                except ConnectorConnectionError:
                    # Another process may have won the race to spawn this host's
                    # server (ours then fails to bind): use theirs if it answers.
                    if not self._server_answers():
                        raise
        except BaseException:
            self.close()
            raise
        if _log.isEnabledFor(logging.INFO):
            how = "spawned" if self._server is not None else "found running"
            _log.info(
                "%s connected to its server at %s:%s (%s)",
                type(self).__name__,
                self.address,
                self.port,
                how,
            )

    def _server_answers(self) -> bool:
        try:
            self._transport.exchange(
                self.address, self.port, [Request(Op.PING)], self.timeout
            )
        except ServerTimeoutError:
            return False
        return True

    @property
    def server(self) -> subprocess.Popen[bytes] | None:
        """The local server process this connector spawned, if any."""
        return self._server

    def close(self, kill_server: bool = True) -> None:
        """Close connections; stop the local server if this connector spawned it.

        Args:
            kill_server: Stop the spawned server (its objects are lost). With
                ``False`` it keeps serving until this process exits.
        """
        if self._closed:
            return
        self._closed = True
        self._transport.close()
        if kill_server and self._server is not None:
            # A forked child shares the handle but must not stop its parent's server.
            if self._spawner_pid == os.getpid():
                stop_server_process(self._server, self._kill_timeout)
            self._server = None

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        """Create a connector from the output of `config`."""
        return cls(**config)

    def _new_key(self, obj: BytesLike) -> DIMKey:
        return DIMKey(self.dim_type, uuid4_hex(), len(obj), self.address, self.port)

    def _send(
        self,
        host: str,
        port: int,
        requests: Sequence[Request],
        nbytes: int,
    ) -> list[Response]:
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed")
        budget = self.timeout + nbytes / _MIN_BYTES_PER_SECOND
        responses = self._transport.exchange(host, port, requests, budget)
        for response in responses:
            if response.status is Status.ERROR:
                raise DIMServerError(
                    f"DIM server at {host}:{port} failed a {response.op.name} "
                    f"request: {response.text}",
                    address=f"{host}:{port}",
                )
        return responses

    def _check(self, key: DIMKey) -> None:
        if key.dim_type != self.dim_type:
            raise ValueError(
                f"{type(self).__name__} cannot use a DIM key of type "
                f"{key.dim_type!r}: {key}",
            )

    def _one(self, key: DIMKey, op: Op) -> Response:
        """Send one request about ``key`` to its peer (the single-key fast path)."""
        self._check(key)
        nbytes = key.size if op is Op.GET else 0
        request = Request(op, key.obj_id)
        return self._send(key.peer_host, key.peer_port, (request,), nbytes)[0]

    def _by_peer(self, keys: Sequence[DIMKey], op: Op) -> list[Response]:
        """Send one request per key, pipelined per peer; responses in key order."""
        groups: dict[tuple[str, int], list[int]] = {}
        for index, key in enumerate(keys):
            self._check(key)
            groups.setdefault((key.peer_host, key.peer_port), []).append(index)
        out: list[Response | None] = [None] * len(keys)
        for (host, port), indices in groups.items():
            requests = [Request(op, keys[i].obj_id) for i in indices]
            nbytes = sum(keys[i].size for i in indices) if op is Op.GET else 0
            for i, response in zip(
                indices, self._send(host, port, requests, nbytes), strict=True
            ):
                out[i] = response
        return [r for r in out if r is not None]

    def evict(self, key: DIMKey) -> None:
        """Remove the object at ``key`` from its peer; a missing key is fine.

        Raises:
            ServerTimeoutError: If the peer does not answer in time.
            DIMServerError: If the peer fails the request.
        """
        self._one(key, Op.EVICT)

    def exists(self, key: DIMKey) -> bool:
        """Return whether the peer named in ``key`` holds its object.

        Raises:
            ServerTimeoutError: If the peer does not answer in time.
            DIMServerError: If the peer fails the request.
        """
        return self._one(key, Op.EXISTS).status is Status.OK

    def get(self, key: DIMKey) -> BytesLike | None:
        """Fetch the object at ``key`` from its peer, or ``None`` if it is gone.

        Large objects come back as a ``memoryview`` over the received buffer (no
        copy).

        Raises:
            ServerTimeoutError: If the peer does not answer in time (the allowance
                grows with ``key.size``).
            DIMServerError: If the peer fails the request.
        """
        return _payload(self._one(key, Op.GET))

    def get_batch(self, keys: Sequence[DIMKey]) -> list[BytesLike | None]:
        """Fetch several objects; requests to one peer are pipelined.

        Raises:
            ServerTimeoutError: If a peer does not answer in time.
            DIMServerError: If a peer fails a request.
        """
        return [_payload(r) for r in self._by_peer(keys, Op.GET)]

    def put(self, obj: BytesLike, *, ttl: float | None = None) -> DIMKey:
        """Store ``obj`` on this peer's server and return its key.

        Args:
            obj: Bytes to store.
            ttl: Seconds after which the server drops the object (its own
                sweep enforces it, whatever happens to this process); ``None``:
                never.

        Raises:
            ValueError: If ``ttl`` is not a positive, finite number.
            ServerTimeoutError: If the local server does not answer in time.
            DIMServerError: If the server fails the request.
        """
        return self.put_batch([obj], ttl=ttl)[0]

    def put_batch(
        self, objs: Sequence[BytesLike], *, ttl: float | None = None
    ) -> list[DIMKey]:
        """Store several objects on this peer's server (pipelined).

        Raises:
            ValueError: If ``ttl`` is not a positive, finite number.
            ServerTimeoutError: If the local server does not answer in time.
            DIMServerError: If the server fails a request.
        """
        objs = [_flat(obj) for obj in objs]
        keys = [self._new_key(obj) for obj in objs]
        if ttl is None:
            requests = [
                Request(Op.PUT, key.obj_id, (obj,))
                for key, obj in zip(keys, objs, strict=True)
            ]
        else:
            # The TTL travels in the same request as the object: never apart.
            head = _TTL_HEAD.pack(check_ttl(ttl))
            requests = [
                Request(Op.PUT_TTL, key.obj_id, (head, obj))
                for key, obj in zip(keys, objs, strict=True)
            ]
        self._send(self.address, self.port, requests, sum(k.size for k in keys))
        return keys

    def expire(self, key: DIMKey, ttl: float | None) -> bool:
        """Give the object at ``key`` a new time-to-live on its peer.

        Args:
            key: Key of the object.
            ttl: Seconds from now; ``None`` removes its expiry.

        Returns:
            Whether an (unexpired) object exists at ``key``.

        Raises:
            ValueError: If ``ttl`` is not a positive, finite number.
            ServerTimeoutError: If the peer does not answer in time.
            DIMServerError: If the peer fails the request.
        """
        checked = check_ttl(ttl)
        self._check(key)
        text = b"" if checked is None else repr(checked).encode()
        request = Request(Op.EXPIRE, key.obj_id, (text,) if text else ())
        response = self._send(key.peer_host, key.peer_port, (request,), 0)[0]
        return response.status is Status.OK

    def ttl(self, key: DIMKey) -> float | None:
        """Return the seconds before the object at ``key`` expires (``None``: never).

        Raises:
            ServerTimeoutError: If the peer does not answer in time.
            DIMServerError: If the peer fails the request.
        """
        response = self._one(key, Op.TTL)
        text = _payload(response)
        return float(bytes(text)) if text else None


_TTL_HEAD = struct.Struct("<d")


def _flat(obj: BytesLike) -> BytesLike:
    """Return ``obj`` as a flat byte buffer, so ``len()`` counts bytes (no copy).

    A memoryview over typed or strided memory (e.g. a numpy array's) has a length
    in items, not bytes; only a non-contiguous one is copied.
    """
    if isinstance(obj, memoryview) and (obj.ndim != 1 or obj.itemsize != 1):
        return obj.cast("B") if obj.c_contiguous else obj.tobytes()
    if isinstance(obj, memoryview) and not obj.c_contiguous:
        return obj.tobytes()
    return obj


def _payload(response: Response) -> BytesLike | None:
    if response.status is Status.MISSING:
        return None
    parts = response.payload
    if len(parts) == 1:
        return parts[0]
    # A chunked object arrives in several frames: one join makes it contiguous.
    return b"".join(parts)
