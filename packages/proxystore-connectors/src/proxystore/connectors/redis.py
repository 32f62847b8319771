"""Connector to a Redis server or a Redis Cluster.

Any server speaking the Redis protocol is served by `RedisConnector`: Redis
itself, and its forks Valkey and KeyDB (tested against Valkey 8, which stands in for
KeyDB here). Needs the ``redis`` client package (the ``redis`` extra); this is the only
module that imports it.

Design notes:

* **Lazy connection.** Nothing connects until the first operation, and a connector
  rebuilt from `RedisConnector.config` (e.g. inside an unpickled proxy in another
  process) opens its own connection there. A pickled connector travels as its config.
* **One round trip per batch.** ``put_batch`` is one ``MSET`` and ``get_batch`` one
  ``MGET``. With ``clustered=True`` a batch's keys share a hash tag
  (``{<batch id>}<random hex>``), so every key of one ``put_batch`` lands in one
  slot and the batch stays a single ``MSET`` on one node; ``get_batch`` over keys of
  any origin is split per hash slot (one ``MGET`` per slot, pipelined per node).
* **Expiry on the server.** ``put(..., ttl=)`` sends ``SET key value PX ms``: the
  expiry is part of the write, so no crash can leave the value without it, and
  Redis removes it whether or not any client is alive. `RedisConnector.expire`
  is ``PEXPIRE`` (``PERSIST`` to drop the expiry), `RedisConnector.ttl` ``PTTL``.
* **Listing.** `RedisConnector.scan` walks the database with ``SCAN`` (a large
  ``COUNT``) and asks ``STRLEN`` and ``PTTL`` of each batch in one pipeline, over
  a bare socket where it can (``proxystore.connectors._redis_list``: no client
  parser in the way), through the client otherwise (TLS, clusters).
* **Notify instead of poll.** `RedisConnector.set` also ``PUBLISH``-es on the
  key's channel (``proxystore:set:<key>``); `RedisConnector.wait` subscribes,
  re-checks ``EXISTS`` (the object may already be there), then waits for the notice.
  A periodic ``EXISTS`` re-check covers writers that do not publish.
* **One error boundary.** Every ``redis`` exception is translated by
  `_ErrorBoundary` into `ConnectorConnectionError`
  (naming ``host:port``), `ConnectorTimeoutError`
  or `ConnectorError`.
* **Self-healing.** A command that fails on a dead connection (say, after the server
  restarted) is retried once on a new connection, so a restarted server is used again
  without any action from the caller.
* **No extra copies.** Values are sent as ``memoryview``-s (the client writes them to
  the socket as they are). A reply of 64 KiB or more is received with ``recv_into``
  straight into the ``bytearray`` that `RedisConnector.get` returns, instead
  of the pure-Python parser's chunked buffer (about five copies); about twice as
  fast for 100 MB (standalone servers; skipped when the C parser ``hiredis`` is
  installed, and for clusters, whose node clients redis-py builds itself).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, NamedTuple, Self, cast

import redis
import redis.cluster
import redis.exceptions
import redis.utils
from redis._parsers import _RESP2Parser, _RESP3Parser
from redis._parsers.socket import SERVER_CLOSED_CONNECTION_ERROR, SocketBuffer
from redis.backoff import NoBackoff
from redis.connection import DefaultParser
from redis.retry import Retry

from proxystore.connectors import _redis_list
from proxystore.connectors.exceptions import (
    ConnectorConnectionError,
    ConnectorError,
    ConnectorTimeoutError,
)
from proxystore.connectors.protocols import BytesLike, KeyInfo, check_ttl
from proxystore.utils._closeable import Closeable
from proxystore.utils.credentials import (
    resolve_secret_options,
    split_secret_options,
)

__all__ = ["RedisConnector", "RedisKey"]

_log = logging.getLogger(__name__)

#: Channel on which `RedisConnector.set` announces a key (suffix: the key).
CHANNEL_PREFIX = "proxystore:set:"
# How often wait() re-checks EXISTS in case a writer stored the key without publishing.
_WAIT_RECHECK_S = 1.0
_DEFAULT_CONNECT_TIMEOUT_S = 10.0
#: Client options that are secrets: never part of config(). Each may instead be
#: given by reference as ``<name>_env`` / ``<name>_credential``.
_SECRET_OPTIONS = ("password", "username", "ssl_password", "ssl_keyfile")


class RedisKey(NamedTuple):
    """Key of an object in a `RedisConnector`."""

    redis_key: str
    """The Redis key: a random 128-bit hex string, prefixed by a ``{hash tag}`` for
    the objects stored by one ``put_batch`` on a cluster."""


_Client = redis.Redis | redis.cluster.RedisCluster

#: Keys asked for per SCAN call by `RedisConnector.scan` (one round trip each).
_SCAN_COUNT = 5000


def _ms(ttl: float) -> int:
    """Milliseconds of a checked ``ttl`` (at least 1: ``PX 0`` is an error)."""
    return max(1, round(ttl * 1000))


#: Bulk replies at least this large are received straight into their final buffer
#: (measured: a 1 MB GET takes half the time, a 100 KB one 20 % less).
_LARGE_REPLY = 64 << 10
_UNSET = object()


class _LargeReplyBuffer(SocketBuffer):
    """redis-py's socket buffer, receiving large bulk replies without extra copies.

    The pure-Python parser collects a bulk reply chunk by chunk in a ``BytesIO``,
    then reads, concatenates and slices it: about five copies of a 100 MB value.
    Here a large reply is received with ``recv_into`` directly into one
    ``bytearray`` (after draining what the buffer already holds), and its CRLF
    terminator is cut off in place: one copy, from the kernel.
    """

    def read(self, length: int, timeout: object = _UNSET) -> Any:
        if length < _LARGE_REPLY:
            if timeout is _UNSET:
                return super().read(length)
            return super().read(length, timeout)
        total = length + 2  # payload and its CRLF terminator
        out = bytearray(total)
        with memoryview(out) as view:
            got = self._buffer.readinto(view)
            sock = self._sock
            # redis-py passes its own sentinel object for "no custom timeout".
            custom = timeout is None or isinstance(timeout, int | float)
            if custom:
                sock.settimeout(cast("float | None", timeout))
            try:
                while got < total:
                    # socket.timeout / OSError propagate: the connection turns them
                    # into redis TimeoutError / ConnectionError and disconnects.
                    received = sock.recv_into(view[got:])
                    if not received:
                        raise redis.exceptions.ConnectionError(
                            SERVER_CLOSED_CONNECTION_ERROR
                        )
                    got += received
            finally:
                if custom:
                    sock.settimeout(self.socket_timeout)
        del out[length:]  # drop the CRLF: shrinks at the end, no copy
        return out


def _attach_large_reply_buffer(parser: Any, connection: Any) -> None:
    parser._buffer = _LargeReplyBuffer(
        connection._sock, parser.socket_read_size, connection.socket_timeout
    )


class _LargeReplyRESP2Parser(_RESP2Parser):
    """The pure-Python RESP2 parser, with `_LargeReplyBuffer` as its buffer."""

    def on_connect(self, connection: Any) -> None:
        super().on_connect(connection)  # type: ignore[no-untyped-call]
        _attach_large_reply_buffer(self, connection)


class _LargeReplyRESP3Parser(_RESP3Parser):
    """The pure-Python RESP3 parser, with `_LargeReplyBuffer` as its buffer."""

    def on_connect(self, connection: Any) -> None:
        super().on_connect(connection)  # type: ignore[no-untyped-call]
        _attach_large_reply_buffer(self, connection)


def _use_large_reply_parser(client: redis.Redis) -> None:
    """Install a large-reply parser on ``client``'s pool where it applies.

    Only when redis-py would use one of its pure-Python parsers anyway: hiredis (a
    C parser) is left alone when installed, and so is a parser chosen by the user.
    The protocol (RESP2 or RESP3, redis-py's default depends on its version) picks
    the matching subclass.
    """
    kwargs = client.connection_pool.connection_kwargs
    if DefaultParser is not _RESP2Parser or "parser_class" in kwargs:
        return
    # redis-py 8 speaks RESP3 unless told otherwise; older releases RESP2.
    protocol = kwargs.get("protocol") or getattr(redis.utils, "DEFAULT_RESP_VERSION", 2)
    if str(protocol) == "3":
        kwargs["parser_class"] = _LargeReplyRESP3Parser
    elif str(protocol) == "2":
        kwargs["parser_class"] = _LargeReplyRESP2Parser


def _translate(exc: Exception, address: str, action: str) -> ConnectorError:
    """Return the connector error that stands for a ``redis`` exception."""
    if isinstance(exc, redis.exceptions.TimeoutError):
        return ConnectorTimeoutError(
            f"Redis at {address} did not answer in time ({action}): {exc}"
        )
    if isinstance(
        exc,
        redis.exceptions.ConnectionError
        | redis.exceptions.ClusterDownError
        | redis.exceptions.MasterDownError,
    ) or (
        # Raised (outside the RedisError tree) when no cluster startup node answers.
        isinstance(exc, redis.exceptions.RedisClusterException)
        and "connect" in str(exc).lower()
    ):
        return ConnectorConnectionError(
            f"Cannot reach Redis at {address} ({action}): {exc}", address=address
        )
    return ConnectorError(f"Redis at {address} ({action}): {exc}")


class _ErrorBoundary:
    """Context manager translating every ``redis`` exception into a connector error.

    The one place where client exceptions cross into our tree (a class rather than a
    generator-based context manager: it wraps every operation, so it must be cheap).

    Raises:
        ConnectorTimeoutError: for a client-side timeout.
        ConnectorConnectionError: when the server (or every cluster node) cannot be
            reached; the message and ``address`` attribute name ``host:port``.
        ConnectorError: for any other error reported by the client or the server.
    """

    __slots__ = ("action", "address")

    def __init__(self, address: str, action: str) -> None:
        self.address = address
        self.action = action

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(
            exc, redis.exceptions.RedisError | redis.exceptions.RedisClusterException
        ):
            raise _translate(exc, self.address, self.action) from exc


def _new_names(count: int) -> list[str]:
    """Return ``count`` random 128-bit hex key names (one ``urandom`` call)."""
    hexed = os.urandom(16 * count).hex()
    return [hexed[i : i + 32] for i in range(0, 32 * count, 32)]


def _as_payload(obj: BytesLike) -> bytes | memoryview:
    """Return ``obj`` in a form the client sends without copying.

    The client writes ``bytes`` and ``memoryview`` values as they are but rejects
    ``bytearray``, and uses ``len()`` as the byte count, so views are flattened to
    unsigned bytes first (a no-copy cast for contiguous memory).
    """
    if isinstance(obj, bytes):
        return obj
    view = memoryview(obj)
    if view.format == "B" and view.ndim == 1:
        return view
    if view.c_contiguous:
        return view.cast("B")
    return view.tobytes()  # non-contiguous: one copy is unavoidable


class RedisConnector(Closeable):
    """Connector storing objects in Redis (or Valkey, KeyDB, or a Redis Cluster).

    Args:
        hostname: Host of the server (of any node, for a cluster).
        port: Port of that server.
        clear: Flush the database (``FLUSHDB``; every node of a cluster) on
            `close`. This removes *all* keys in it, not only ours.
        clustered: Talk to a Redis Cluster (``redis.cluster.RedisCluster``); the
            given node is the seed from which the others are discovered.
        kwargs: Extra options for the ``redis`` client (``socket_timeout``,
            ``ssl``, ``ssl_ca_certs``, ...). They are part of `config`, so
            they must be plain data for the connector to travel inside a proxy.
            Secrets (``password``, ``username``, ``ssl_password``,
            ``ssl_keyfile``) are the exception: passed directly they are used by
            this connector only and never enter `config`. Pass them by
            reference instead (``password_env="REDIS_PASSWORD"``,
            ``password_credential="redis-prod"``, see
            `proxystore.utils.credentials`) for copies rebuilt elsewhere (e.g.
            inside a proxy) to authenticate too.

    Raises:
        ValueError: if ``decode_responses`` is requested (values are raw bytes),
            or a secret reference is not a non-empty string.

    Nothing connects until the first operation; errors surface there (including
    `proxystore.utils.credentials.CredentialError` for a reference that does not
    resolve in this process).
    """

    def __init__(
        self,
        hostname: str,
        port: int,
        clear: bool = False,
        *,
        clustered: bool = False,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("decode_responses"):
            raise ValueError("RedisConnector stores raw bytes: decode_responses=True")
        kwargs.pop("decode_responses", None)
        self.hostname = hostname
        self.port = port
        self.clear = clear
        self.clustered = clustered
        # Secrets passed directly stay in this object; references stay in kwargs.
        self.kwargs, self._secrets = split_secret_options(kwargs, _SECRET_OPTIONS)
        self._client: _Client | None = None
        self._connections = 0  # clients made so far (a second one is a reconnect)
        self._lock = threading.Lock()
        # Cleared when the server turns out to predate GETDEL (Redis < 6.2).
        self._has_getdel = True
        self._boundaries: dict[str, _ErrorBoundary] = {}

    @property
    def address(self) -> str:
        """``host:port`` of the server (of the seed node, for a cluster)."""
        return f"{self.hostname}:{self.port}"

    def __repr__(self) -> str:
        cluster = ", clustered=True" if self.clustered else ""
        return (
            f"{type(self).__name__}(hostname={self.hostname!r}, "
            f"port={self.port}{cluster})"
        )

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        # Travel as configuration: the live client (sockets, locks) stays here and
        # the copy connects lazily wherever it is unpickled.
        return (type(self).from_config, (self.config(),))

    def __del__(self) -> None:
        # Release sockets of a connector nobody closed (e.g. one rebuilt from config
        # inside a worker). Never raise from a finalizer, and use no module globals:
        # at interpreter shutdown they may already be gone.
        client = self.__dict__.get("_client")
        if client is not None:
            try:  # noqa: SIM105 (contextlib may already be torn down)
                client.close()
            except Exception:
                pass

    # ------------------------------------------------------------------ connection
    @property
    def _redis(self) -> _Client:
        """The client, connected on first use (thread-safe)."""
        client = self._client
        if client is None:
            with self._lock:
                client = self._client
                if client is None:
                    client = self._client = self._connect()
        return client

    def _connect(self) -> _Client:
        options: dict[str, Any] = {
            "socket_connect_timeout": _DEFAULT_CONNECT_TIMEOUT_S,
            # A stale pooled connection (server restarted) fails once, then the
            # command is replayed on a fresh one. Every command we send is idempotent.
            "retry": Retry(NoBackoff(), 1),
            **resolve_secret_options(self.kwargs, self._secrets, _SECRET_OPTIONS),
            "decode_responses": False,
        }
        if _log.isEnabledFor(logging.INFO):
            _log.info(
                "RedisConnector %s to %s%s",
                "reconnecting" if self._connections else "connecting",
                self.address,
                " (cluster)" if self.clustered else "",
            )
        self._connections += 1
        with self._errors("connect"):
            if self.clustered:
                return redis.cluster.RedisCluster(
                    host=self.hostname, port=self.port, **options
                )
            client = redis.Redis(host=self.hostname, port=self.port, **options)
            _use_large_reply_parser(client)
            return client

    def _errors(self, action: str) -> _ErrorBoundary:
        # Boundaries hold no per-use state, so one per action is reused (this
        # wraps every operation).
        boundary = self._boundaries.get(action)
        if boundary is None:
            boundary = self._boundaries[action] = _ErrorBoundary(self.address, action)
        return boundary

    # ------------------------------------------------------------------ lifecycle
    def close(self, clear: bool | None = None) -> None:
        """Close the connection, flushing the database first when clearing.

        Args:
            clear: Flush the database (every node of a cluster); ``None`` uses the
                ``clear`` given to the constructor. Closing twice is harmless; a
                closed connector reconnects if used again.

        Raises:
            ConnectorConnectionError: if clearing and the server cannot be reached.
        """
        with self._lock:
            client, self._client = self._client, None
        try:
            if self.clear if clear is None else clear:
                client = client or self._connect()
                with self._errors("FLUSHDB"):
                    if isinstance(client, redis.cluster.RedisCluster):
                        client.flushdb(
                            target_nodes=redis.cluster.RedisCluster.PRIMARIES
                        )
                    else:
                        client.flushdb()
        finally:
            if client is not None:
                client.close()

    def config(self) -> dict[str, Any]:
        """Return the options that `from_config` takes (plain data)."""
        return {
            "hostname": self.hostname,
            "port": self.port,
            "clear": self.clear,
            "clustered": self.clustered,
            **self.kwargs,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        """Create a connector from the output of `config`.

        Also accepts the configuration of the reference release
        (``hostname``, ``port``, ``clear``).

        Raises:
            TypeError: if ``hostname`` or ``port`` is missing.
        """
        return cls(**config)

    # ------------------------------------------------------------------ operations
    def evict(self, key: RedisKey) -> None:
        """Remove the object at ``key``; a missing key is ignored.

        Raises:
            ConnectorConnectionError: if the server cannot be reached.
        """
        with self._errors("DEL"):
            self._redis.delete(key.redis_key)

    def exists(self, key: RedisKey) -> bool:
        """Return whether an object is stored at ``key``.

        Raises:
            ConnectorConnectionError: if the server cannot be reached.
        """
        with self._errors("EXISTS"):
            return bool(self._redis.exists(key.redis_key))

    def get(self, key: RedisKey) -> BytesLike | None:
        """Return the object at ``key``, or ``None`` when missing.

        Large objects come back as a ``bytearray`` received in place (no copy
        after the socket); small ones as ``bytes``.

        Raises:
            ConnectorConnectionError: if the server cannot be reached.
        """
        with self._errors("GET"):
            # execute_command: client.get() and client.set() only add argument
            # handling (and set() an option parser) around it.
            return cast(
                "BytesLike | None",
                self._redis.execute_command("GET", key.redis_key),  # type: ignore[no-untyped-call]
            )

    def get_evict(self, key: RedisKey) -> BytesLike | None:
        """Return the object at ``key`` and delete it, in one round trip.

        One ``GETDEL`` (Redis 6.2 or later, Valkey, KeyDB); on an older server,
        a ``MULTI``/``GET``/``DEL``/``EXEC`` transaction (two round trips on a
        cluster). Returns ``None`` when nothing is stored at ``key``.

        Raises:
            ConnectorConnectionError: if the server cannot be reached.
        """
        name = key.redis_key
        with self._errors("GETDEL"):
            client = self._redis
            if self._has_getdel:
                try:
                    return cast("BytesLike | None", client.getdel(name))
                except redis.exceptions.ResponseError as e:
                    if "unknown command" not in str(e).lower():
                        raise
                    self._has_getdel = False
            if isinstance(client, redis.cluster.RedisCluster):
                value = client.get(name)
                client.delete(name)
            else:
                with client.pipeline(transaction=True) as pipe:
                    pipe.get(name)
                    pipe.delete(name)
                    value = pipe.execute()[0]
            return cast("BytesLike | None", value)

    def get_batch(self, keys: Sequence[RedisKey]) -> list[BytesLike | None]:
        """Return the object at each key (``None`` where missing), in order.

        One ``MGET`` (one per hash slot on a cluster).

        Raises:
            ConnectorConnectionError: if the server cannot be reached.
        """
        if not keys:
            return []
        names = [key.redis_key for key in keys]
        with self._errors("MGET"):
            client = self._redis
            if isinstance(client, redis.cluster.RedisCluster):
                values = client.mget_nonatomic(names)
            else:
                values = client.mget(names)
        return cast("list[BytesLike | None]", list(values))

    def new_key(self, obj: BytesLike | None = None) -> RedisKey:
        """Return a fresh key for a later `set` (like the reference, ignores `obj`)."""
        return RedisKey(os.urandom(16).hex())

    def put(self, obj: BytesLike, *, ttl: float | None = None) -> RedisKey:
        """Store ``obj`` at a new key and return the key.

        Args:
            obj: Bytes to store.
            ttl: Seconds after which Redis removes the object (``SET ... PX``,
                atomic with the value); ``None``: no expiry.

        Raises:
            ValueError: if ``ttl`` is not a positive, finite number.
            ConnectorConnectionError: if the server cannot be reached.
        """
        key = RedisKey(os.urandom(16).hex())
        with self._errors("SET"):
            if ttl is None:
                self._redis.execute_command(  # type: ignore[no-untyped-call]
                    "SET", key.redis_key, _as_payload(obj)
                )
            else:
                self._redis.execute_command(  # type: ignore[no-untyped-call]
                    "SET", key.redis_key, _as_payload(obj), "PX", _ms(check_ttl(ttl))
                )
        return key

    def put_batch(
        self, objs: Sequence[BytesLike], *, ttl: float | None = None
    ) -> list[RedisKey]:
        """Store each object at a new key in one ``MSET``; return the keys in order.

        With ``ttl``, one pipeline of ``SET ... PX`` instead (one round trip;
        each value is written together with its expiry).

        Raises:
            ValueError: if ``ttl`` is not a positive, finite number.
            ConnectorConnectionError: if the server cannot be reached.
        """
        if not objs:
            return []
        if self.clustered:
            # One hash tag per batch: all keys map to one slot, so one MSET.
            tag = f"{{{os.urandom(6).hex()}}}"
            keys = [RedisKey(tag + name) for name in _new_names(len(objs))]
        else:
            keys = [RedisKey(name) for name in _new_names(len(objs))]
        mapping = {
            key.redis_key: _as_payload(obj) for key, obj in zip(keys, objs, strict=True)
        }
        if ttl is not None:
            ms = _ms(check_ttl(ttl))
            with self._errors("SET PX"), self._redis.pipeline(False) as pipe:
                for name, value in mapping.items():
                    pipe.set(name, value, px=ms)
                pipe.execute()
            return keys
        with self._errors("MSET"):
            client = self._redis
            if isinstance(client, redis.cluster.RedisCluster):
                client.mset_nonatomic(mapping)
            else:
                client.mset(mapping)
        return keys

    def set(self, key: RedisKey, obj: BytesLike, *, ttl: float | None = None) -> None:
        """Store ``obj`` at ``key`` (overwriting) and notify `wait`-ers.

        Args:
            key: Key to store at (typically from `new_key`).
            obj: Bytes to store.
            ttl: Seconds after which Redis removes the object; ``None``: none.

        Raises:
            ValueError: if ``ttl`` is not a positive, finite number.
            ConnectorConnectionError: if the server cannot be reached.
        """
        channel = CHANNEL_PREFIX + key.redis_key
        px = None if ttl is None else _ms(check_ttl(ttl))
        with self._errors("SET"):
            client = self._redis
            if isinstance(client, redis.cluster.RedisCluster):
                client.set(key.redis_key, _as_payload(obj), px=px)
                client.publish(channel, b"")
            else:
                # One round trip for both; not a transaction (no MULTI/EXEC needed).
                with client.pipeline(transaction=False) as pipe:
                    pipe.set(key.redis_key, _as_payload(obj), px=px)
                    pipe.publish(channel, b"")
                    pipe.execute()

    def expire(self, key: RedisKey, ttl: float | None) -> bool:
        """Make the object at ``key`` expire ``ttl`` seconds from now.

        ``PEXPIRE``; with ``ttl=None``, ``PERSIST`` (the object no longer
        expires).

        Returns:
            Whether an object exists at ``key`` (when not, nothing changed).

        Raises:
            ValueError: if ``ttl`` is not a positive, finite number.
            ConnectorConnectionError: if the server cannot be reached.
        """
        name = key.redis_key
        checked = check_ttl(ttl)
        with self._errors("PEXPIRE"):
            client = self._redis
            if checked is not None:
                return bool(client.pexpire(name, _ms(checked)))
            # PERSIST answers 0 both for a missing key and one without expiry.
            with client.pipeline(transaction=False) as pipe:
                pipe.persist(name)
                pipe.exists(name)
                return bool(pipe.execute()[1])

    def ttl(self, key: RedisKey) -> float | None:
        """Return the seconds left before ``key`` expires (``PTTL``).

        Returns:
            ``None`` when the object has no expiry or does not exist.

        Raises:
            ConnectorConnectionError: if the server cannot be reached.
        """
        with self._errors("PTTL"):
            left = int(self._redis.pttl(key.redis_key))
        return None if left < 0 else left / 1000

    def scan(self) -> Iterator[KeyInfo]:
        """List every string value in the database with its size and time-to-live.

        ``SCAN`` with a large ``COUNT``, then ``STRLEN`` and ``PTTL`` of the keys
        of each reply in one pipeline: about ``n / 5000`` round trips pairs for
        ``n`` keys. Keys holding other types (streams, sets, ...) are skipped;
        Redis keeps no creation time, so ``age`` is ``None``.

        Raises:
            ConnectorConnectionError: if the server cannot be reached.
        """
        options = {**self.config(), **self._secrets}
        if _redis_list.can_list(options):
            # A bare socket: the client's pipeline parser costs ~20 us a reply.
            try:
                for name, size, left, holders in _redis_list.list_keys(options):
                    ttl = None if left < 0 else left / 1000
                    yield KeyInfo(RedisKey(name), size, None, ttl, holders)
            except (OSError, _redis_list.RedisListError) as e:
                raise ConnectorConnectionError(
                    f"Cannot list Redis at {self.address}: {e}", address=self.address
                ) from e
            return
        with self._errors("SCAN"):
            client = self._redis
            if isinstance(client, redis.cluster.RedisCluster):
                batch: list[bytes | str] = []
                for name in client.scan_iter(count=_SCAN_COUNT):
                    batch.append(name)
                    if len(batch) >= _SCAN_COUNT:
                        yield from self._describe(client, batch)
                        batch = []
                yield from self._describe(client, batch)
                return
            cursor = 0
            while True:
                cursor, names = client.scan(cursor, count=_SCAN_COUNT)
                yield from self._describe(client, names)
                if not cursor:
                    return

    @staticmethod
    def _describe(client: _Client, names: Iterable[bytes | str]) -> Iterator[KeyInfo]:
        names = list(names)
        if not names:
            return
        with client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.strlen(name)
                pipe.pttl(name)
            replies = pipe.execute(raise_on_error=False)
        for i, name in enumerate(names):
            size, left = replies[2 * i], replies[2 * i + 1]
            if isinstance(size, Exception) or isinstance(left, Exception):
                continue  # not a string value (WRONGTYPE): not one of ours
            if left == -2:
                continue  # expired or removed since the SCAN
            text = name.decode() if isinstance(name, bytes) else name
            yield KeyInfo(
                RedisKey(text), int(size), None, None if left < 0 else left / 1000
            )

    def wait(self, key: RedisKey, timeout: float | None = None) -> bool:
        """Block until an object exists at ``key`` or ``timeout`` seconds pass.

        Subscribes to the key's channel first, then checks ``EXISTS`` (so an object
        stored before the call is seen), then sleeps on the subscription.

        Returns:
            Whether an object exists at ``key`` when the call returns.

        Raises:
            ConnectorConnectionError: if the server cannot be reached.
        """
        if timeout is not None and timeout <= 0:
            return self.exists(key)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._errors("WAIT"), self._subscription(key) as pubsub:
            if self._redis.exists(key.redis_key):
                return True
            while True:
                slice_s = _WAIT_RECHECK_S
                if deadline is not None:
                    slice_s = min(slice_s, deadline - time.monotonic())
                    if slice_s <= 0:
                        return bool(self._redis.exists(key.redis_key))
                message = pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=slice_s
                )
                if message is not None and message.get("type") == "message":
                    return True
                if self._redis.exists(key.redis_key):
                    return True

    @contextlib.contextmanager
    def _subscription(self, key: RedisKey) -> Iterator[Any]:
        """Subscribe to ``key``'s channel; yield once the server confirmed it."""
        pubsub = self._redis.pubsub()  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(CHANNEL_PREFIX + key.redis_key)
            # Wait for the confirmation: only then is a later PUBLISH sure to reach
            # us, which makes the EXISTS check that follows race-free.
            deadline = time.monotonic() + _DEFAULT_CONNECT_TIMEOUT_S
            while time.monotonic() < deadline:
                reply = pubsub.get_message(timeout=0.5)
                if reply is not None and reply.get("type") == "subscribe":
                    break
            yield pubsub
        finally:
            pubsub.close()
