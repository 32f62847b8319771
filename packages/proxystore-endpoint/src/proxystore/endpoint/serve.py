"""Serve an endpoint's REST API with aiohttp.

Routes (query parameters `key`, and `endpoint` naming the endpoint to operate on,
this one when absent):

* `GET /` answers 200 (liveness);
* `GET /endpoint` answers `{"uuid": "<this endpoint's UUID>"}`, plus, when the
  endpoint peers, `"relay": {"address": ..., "status": "connected" | "connecting" |
  "refused", "error": <why the last registration failed, or null>}` (what
  `proxystore-endpoint list` and `start` report);
* `GET /get` answers the object's bytes, or 404 when there is none;
* `POST /set` stores the request body (`Content-Length` or chunked); with
  `ttl=<seconds>`, the object expires after that time (the endpoint process
  sweeps it; a read never returns it once expired);
* `GET /exists` answers `{"exists": true|false}`;
* `POST /evict` removes the object;
* `POST /expire` (`ttl=<seconds>`, or none to remove the deadline) answers
  `{"exists": true|false}`;
* `GET /ttl` answers `{"ttl": <seconds left> | null}`;
* `GET /list` (no `key`) answers `{"objects": [{"key", "size", "age", "ttl"}]}`
  for this endpoint's own objects.
* `POST /holders` (JSON body `{"holds": [[key, holder, lease, token,
  transfer lease], ...]}`)
  adds or renews holds of refcounted objects stored here and answers
  `{"found": [true|false, ...]}`; `POST /release` (`key`, `holder`) drops one and
  answers `{"evicted": true|false}` (see `proxystore.connectors.holders`).

Malformed or empty input is answered as the reference release answers it: a
missing `key` 400 (an empty `key=` is a key like any other), an `endpoint` that is
present but not a UUID (empty included) 400, a chunked `/set` without data 400,
a body that does not arrive within the body timeout 408, an object above the
maximum size 413. One deliberate difference: `/set` with `Content-Length: 0`
stores an empty object (the reference answers 400, so its own connector cannot
put `b""`). A failed request to a peer endpoint (unknown, dead,
too slow, relay not connected) answers 424 (the reference: 500). Error answers
carry the endpoint error's class name in the `X-ProxyStore-Error` header and a
one-line message in the body.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import signal
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

from proxystore.endpoint._preflight import listen_problem
from proxystore.endpoint._relay_state import relay_state
from proxystore.endpoint.config import (
    EndpointConfig,
    daemon_umask,
    file_mode,
    secure_file,
)
from proxystore.endpoint.constants import MAX_CHUNK_LENGTH
from proxystore.endpoint.endpoint import ERROR_HEADER, Endpoint
from proxystore.endpoint.exceptions import (
    EndpointListenError,
    ObjectSizeExceededError,
    PeeringNotAvailableError,
    PeerRequestError,
)
from proxystore.endpoint.storage import DictStorage, SQLiteStorage, Storage

if TYPE_CHECKING:
    from proxystore.p2p.manager import PeerManager

__all__ = [
    "create_app",
    "endpoint_handler",
    "evict_handler",
    "exists_handler",
    "expire_handler",
    "get_handler",
    "holders_handler",
    "list_handler",
    "release_handler",
    "serve",
    "set_handler",
    "ttl_handler",
]

logger = logging.getLogger(__name__)

_ENDPOINT_KEY = web.AppKey("endpoint", Endpoint)
_LIMITS_KEY = web.AppKey("limits", dict)
_HTTP_FAILED_DEPENDENCY = 424


class _BadRequestError(Exception):
    pass


class _BodyTimeoutError(Exception):
    pass


def create_app(
    endpoint: Endpoint,
    max_content_length: int | None = None,
    body_timeout: int = 300,
) -> web.Application:
    """Return the aiohttp application serving `endpoint`'s REST API.

    Args:
        endpoint: Endpoint the routes operate on. It is started with the
            application and closed when the application shuts down.
        max_content_length: Largest request body accepted, in bytes (413 above).
        body_timeout: Seconds allowed for receiving a request body.
    """
    app = web.Application(client_max_size=2**63)
    app[_ENDPOINT_KEY] = endpoint
    app[_LIMITS_KEY] = {"max": max_content_length, "timeout": body_timeout}
    app.router.add_get("/", _home)
    app.router.add_get("/endpoint", endpoint_handler)
    app.router.add_post("/evict", evict_handler)
    app.router.add_get("/exists", exists_handler)
    app.router.add_get("/get", get_handler)
    app.router.add_post("/set", set_handler)
    app.router.add_post("/expire", expire_handler)
    app.router.add_get("/ttl", ttl_handler)
    app.router.add_get("/list", list_handler)
    app.router.add_post("/holders", holders_handler)
    app.router.add_post("/release", release_handler)

    async def _lifecycle(app: web.Application) -> Any:
        await app[_ENDPOINT_KEY].async_init()
        yield
        await app[_ENDPOINT_KEY].close()

    app.cleanup_ctx.append(_lifecycle)
    return app


def _error(status: int, exc: Exception | str) -> web.Response:
    headers = {} if isinstance(exc, str) else {ERROR_HEADER: type(exc).__name__}
    return web.Response(status=status, text=str(exc), headers=headers)


def _args(request: web.Request) -> tuple[str, uuid.UUID | None]:
    key = request.query.get("key")
    if key is None:
        raise _BadRequestError("request missing key")
    raw = request.query.get("endpoint")
    if raw is None:
        return key, None
    try:
        return key, uuid.UUID(raw)
    except ValueError:
        raise _BadRequestError(f"endpoint {raw!r} is not a valid UUID") from None


def _ttl_arg(request: web.Request) -> float | None:
    raw = request.query.get("ttl")
    if raw is None:
        return None
    try:
        ttl = float(raw)
    except ValueError:
        ttl = float("nan")
    if not 0 < ttl < float("inf"):
        raise _BadRequestError(f"ttl {raw!r} is not a positive number of seconds")
    return ttl


async def _call(request: web.Request, op: str) -> web.StreamResponse:
    try:
        key, target = _args(request)
        ttl = _ttl_arg(request)
    except _BadRequestError as exc:
        return _error(400, str(exc))
    endpoint = request.app[_ENDPOINT_KEY]
    try:
        if op == "get":
            data = await endpoint.get(key, target)
            if data is None:
                return _error(404, "no data associated with request key")
            return await _send_bytes(request, data)
        if op == "exists":
            exists = await endpoint.exists(key, target)
            return web.json_response({"exists": exists})
        if op == "evict":
            await endpoint.evict(key, target)
            return web.Response()
        if op == "expire":
            exists = await endpoint.expire(key, ttl, target)
            return web.json_response({"exists": exists})
        if op == "ttl":
            return web.json_response({"ttl": await endpoint.ttl(key, target)})
        data = await _read_body(request)
        await endpoint.set(key, data, target, ttl)
        return web.Response()
    except _BadRequestError as exc:
        return _error(400, str(exc))
    except _BodyTimeoutError as exc:
        return _error(408, str(exc))
    except ObjectSizeExceededError as exc:
        return _error(413, exc)
    except (PeerRequestError, PeeringNotAvailableError) as exc:
        return _error(_HTTP_FAILED_DEPENDENCY, exc)


async def _send_bytes(request: web.Request, data: bytes) -> web.StreamResponse:
    # Written in slices: one huge write would make the transport copy whatever
    # the socket does not take at once, and would hold the event loop.
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    response.content_length = len(data)
    await response.prepare(request)
    view = memoryview(data)
    for start in range(0, len(view), MAX_CHUNK_LENGTH):
        await response.write(view[start : start + MAX_CHUNK_LENGTH])
    await response.write_eof()
    return response


async def _read_body(request: web.Request) -> bytes:
    limits = request.app[_LIMITS_KEY]
    limit: int | None = limits["max"]
    length = request.content_length
    if limit is not None and length is not None and length > limit:
        raise ObjectSizeExceededError(
            f"Object of {length} bytes exceeds the endpoint's maximum object "
            f"size of {limit} bytes."
        )
    chunks: list[bytes] = []
    total = 0
    try:
        async with asyncio.timeout(limits["timeout"]):
            async for chunk in request.content.iter_any():
                total += len(chunk)
                if limit is not None and total > limit:
                    raise ObjectSizeExceededError(
                        f"Object exceeds the endpoint's maximum object size of "
                        f"{limit} bytes."
                    )
                chunks.append(chunk)
    except TimeoutError:
        raise _BodyTimeoutError(
            f"request body not received within {limits['timeout']} s"
        ) from None
    if total == 0 and length is None:
        # A chunked body with no data: 400, as in the reference. An explicit
        # `Content-Length: 0` stores an empty object, which the reference
        # refuses too; we do not, so every connector round-trips b"" (the
        # shared connector conformance suite).
        raise _BadRequestError("received empty payload")
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _home(request: web.Request) -> web.Response:
    return web.Response()


async def endpoint_handler(request: web.Request) -> web.Response:
    """`GET /endpoint`: answer `{"uuid": ...}` with this endpoint's UUID.

    A peering endpoint adds `"relay"`: the relay's address and whether this
    endpoint is registered with it.
    """
    endpoint = request.app[_ENDPOINT_KEY]
    answer: dict[str, Any] = {"uuid": str(endpoint.uuid)}
    try:
        manager = endpoint.peer_manager
    except PeeringNotAvailableError:
        manager = None
    state = None if manager is None else relay_state(manager)
    if state is not None:
        answer["relay"] = state
    return web.json_response(answer)


async def evict_handler(request: web.Request) -> web.StreamResponse:
    """`POST /evict`: remove the object at `key`."""
    return await _call(request, "evict")


async def exists_handler(request: web.Request) -> web.StreamResponse:
    """`GET /exists`: answer `{"exists": bool}`."""
    return await _call(request, "exists")


async def get_handler(request: web.Request) -> web.StreamResponse:
    """`GET /get`: answer the object's bytes, 404 when missing."""
    return await _call(request, "get")


async def set_handler(request: web.Request) -> web.StreamResponse:
    """`POST /set`: store the request body at `key`."""
    return await _call(request, "set")


async def expire_handler(request: web.Request) -> web.StreamResponse:
    """`POST /expire`: set (or with no `ttl`, remove) the object's deadline."""
    return await _call(request, "expire")


async def ttl_handler(request: web.Request) -> web.StreamResponse:
    """`GET /ttl`: answer `{"ttl": seconds | null}`."""
    return await _call(request, "ttl")


async def list_handler(request: web.Request) -> web.StreamResponse:
    """`GET /list`: answer this endpoint's objects with size, age and TTL."""
    objects = await request.app[_ENDPOINT_KEY].listing()
    return web.json_response({"objects": [o._asdict() for o in objects]})


async def holders_handler(request: web.Request) -> web.StreamResponse:
    """`POST /holders`: add or renew holds; answer `{"found": [bool, ...]}`."""
    try:
        body = await request.json()
        holds = body["holds"]
        if not isinstance(holds, list) or not all(
            isinstance(h, list) and len(h) in (4, 5) for h in holds
        ):
            raise TypeError(
                "holds must be a list of [key, holder, lease, token, transfer lease]"
            )
        found = await request.app[_ENDPOINT_KEY].hold(holds)
    except (ValueError, TypeError, KeyError) as exc:
        return _error(400, f"malformed holds: {exc}")
    return web.json_response({"found": found})


async def release_handler(request: web.Request) -> web.StreamResponse:
    """`POST /release`: drop `holder`'s hold on `key`; answer `{"evicted": bool}`."""
    key = request.query.get("key")
    holder = request.query.get("holder")
    if key is None or not holder:
        return _error(400, "request missing key or holder")
    evicted = await request.app[_ENDPOINT_KEY].release(key, holder)
    return web.json_response({"evicted": evicted})


def _make_storage(config: EndpointConfig) -> Storage:
    path = config.storage.database_path
    if path is not None:
        logger.info("Storing objects in SQLite database %s", path)
        return SQLiteStorage(
            path,
            max_object_size=config.storage.max_object_size,
            file_mode=file_mode(config),
        )
    from proxystore.endpoint.spill import budgeted_storage

    budgeted = budgeted_storage(config)
    if budgeted is not None:
        return budgeted
    logger.info("Storing objects in memory (not persisted)")
    return DictStorage(max_object_size=config.storage.max_object_size)


def _make_peer_manager(config: EndpointConfig) -> PeerManager | None:
    if config.relay.address is None:
        return None
    from proxystore.endpoint._peering import make_peer_manager

    return make_peer_manager(config)


async def _serve_async(config: EndpointConfig, stop: asyncio.Event) -> None:
    if config.host is None:
        raise ValueError("EndpointConfig has no host: start the endpoint first.")
    endpoint = Endpoint(
        name=config.name,
        uuid=uuid.UUID(config.uuid),
        peer_manager=_make_peer_manager(config),
        storage=_make_storage(config),
        address=f"http://{config.host}:{config.port}",
        direct=config.peering.direct,
        request_timeout=config.peering.request_timeout,
        direct_networks=config.peering.direct_networks or (),
    )
    app = create_app(endpoint, max_content_length=config.storage.max_object_size)
    # Stopping waits at most this long for requests still in flight.
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=2.0
    )
    try:
        await runner.setup()
        site = web.TCPSite(runner, config.host, config.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            raise EndpointListenError(
                listen_problem(config.host, config.port, exc)
            ) from exc
        logger.info(
            "Serving endpoint %s (%s) on %s:%s",
            config.uuid,
            config.name,
            config.host,
            config.port,
        )
        await stop.wait()
    finally:
        await runner.cleanup()
        await endpoint.close()


def serve(
    config: EndpointConfig,
    *,
    log_level: int | str = logging.INFO,
    log_file: str | None = None,
    use_uvloop: bool = True,
) -> None:
    """Run the endpoint described by `config` until SIGINT or SIGTERM.

    This is the main function of the endpoint process: it sets the process's
    umask from `config.private_files` (0o077 by default, so every file the
    endpoint creates is the user's alone), and gives the log file the same mode.

    Args:
        config: Endpoint configuration (its `host` must be set).
        log_level: Level of the root logger.
        log_file: File the log is appended to, if any.
        use_uvloop: Run on uvloop when it is installed (it is not a dependency;
            without it the standard event loop runs).

    Raises:
        ValueError: If `config.host` is not set.
        EndpointListenError: If the address cannot be bound (an `OSError`).
    """
    os.umask(daemon_umask(config))
    root = logging.getLogger()
    if log_file is not None:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        secure_file(log_file, file_mode(config))
        root.addHandler(logging.FileHandler(log_file))
    for handler in root.handlers:
        handler.setFormatter(
            logging.Formatter(
                "[%(asctime)s.%(msecs)03d] %(levelname)-5s (%(name)s) :: %(message)s",
                datefmt="%Y-%m-%d %H:%M:%S",
            )
        )
    root.setLevel(log_level)
    if use_uvloop:
        try:
            uvloop: Any = importlib.import_module("uvloop")
        except ImportError:
            logger.debug("uvloop is not installed; using asyncio's event loop")
        else:
            uvloop.install()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            await _serve_async(config, stop)
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(signum)

    try:
        asyncio.run(main())
    except EndpointListenError as exc:
        # A known cause: one line, no traceback (the daemon's start reports it).
        logger.error("Endpoint %s did not start: %s", config.name, exc)
        raise
    except Exception as exc:
        logger.exception("Endpoint %s stopped on an error: %s", config.name, exc)
        raise
    finally:
        logger.info("Finished serving endpoint %s", config.name)
