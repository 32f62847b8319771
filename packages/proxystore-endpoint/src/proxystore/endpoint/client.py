"""Blocking clients of an endpoint's REST API.

`get`, `put`, `exists` and `evict` take the endpoint's address
(`http://host:port`), the object key and, optionally, the UUID of the endpoint the
operation is meant for (the endpoint forwards it there). Pass a `Session` to keep
the HTTP connection open across calls: endpoint requests are small and frequent,
so reconnecting would dominate their latency.

The client is built on the standard library's `http.client` (one keep-alive
connection per thread and address): it ignores HTTP proxies (endpoints are
local), and sends and receives bodies without intermediate copies. As in the
reference, a `requests.Session` is accepted too (the request then goes through
it), and the errors raised (`RequestException`, `EndpointConnectionError`) are
also `requests.exceptions.RequestException` (and `ConnectionError`), so code
catching those keeps working; `requests` is imported only when one is raised.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import urllib.parse
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests

    from proxystore.endpoint._client_errors import (
        EndpointConnectionError,
        RequestException,
    )

__all__ = [
    "EndpointConnectionError",
    "RequestException",
    "Session",
    "evict",
    "exists",
    "expire",
    "get",
    "listing",
    "put",
    "ttl",
]

_ERROR_HEADER = "X-ProxyStore-Error"
_DEFAULT_TIMEOUT = 300.0
_STALE = (
    http.client.RemoteDisconnected,
    http.client.CannotSendRequest,
    BrokenPipeError,
    ConnectionResetError,
)


def __getattr__(name: str) -> type[Exception]:
    # The error classes subclass `requests`' and are imported on first use
    # (see `proxystore.endpoint._client_errors`).
    if name in ("RequestException", "EndpointConnectionError"):
        from proxystore.endpoint import _client_errors

        found: type[Exception] = getattr(_client_errors, name)
        globals()[name] = found
        return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Session:
    """Keep-alive HTTP connections to endpoints, one per thread and address.

    Args:
        timeout: Socket timeout in seconds for each request.
    """

    def __init__(self, timeout: float = _DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection this session opened."""
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    def _connection(self, netloc: str) -> tuple[http.client.HTTPConnection, bool]:
        if os.getpid() != self._pid:  # forked: never share a parent's socket
            self._pid = os.getpid()
            self._local = threading.local()
            self._all = []
        conns: dict[str, http.client.HTTPConnection] | None = getattr(
            self._local, "conns", None
        )
        if conns is None:
            conns = self._local.conns = {}
        conn = conns.get(netloc)
        if conn is not None:
            return conn, True
        host, _, port = netloc.rpartition(":")
        conn = http.client.HTTPConnection(
            host.strip("[]") or netloc, int(port) if port else 80, timeout=self.timeout
        )
        conns[netloc] = conn
        with self._lock:
            self._all.append(conn)
        return conn, False

    def _drop(self, netloc: str) -> None:
        conn = self._local.conns.pop(netloc, None)
        if conn is not None:
            conn.close()

    def request(
        self,
        method: str,
        address: str,
        path: str,
        params: dict[str, str],
        body: bytes | bytearray | memoryview | None = None,
    ) -> tuple[int, str | None, bytes]:
        """Send one request; return the status, error header and body.

        Raises:
            EndpointConnectionError: If the address cannot be reached.
        """
        parsed = urllib.parse.urlsplit(address)
        netloc = parsed.netloc or parsed.path
        target = f"{parsed.path.rstrip('/') if parsed.netloc else ''}/{path}?"
        target += urllib.parse.urlencode(params)
        headers = {"Content-Length": "0" if body is None else str(len(body))}
        if body is not None:
            headers["Content-Type"] = "application/octet-stream"
        for attempt in (0, 1):
            conn, reused = self._connection(netloc)
            try:
                try:
                    conn.request(method, target, body=body, headers=headers)
                except (BrokenPipeError, ConnectionResetError):
                    # The server may answer (e.g. 413) and close before the
                    # whole body is sent: its answer is still worth reading.
                    if body is None or reused:
                        raise
                response = conn.getresponse()
                data = response.read()
            except _STALE as exc:
                self._drop(netloc)
                if reused and attempt == 0:
                    continue  # the server closed an idle keep-alive connection
                raise _unreachable(address, exc) from exc
            except OSError as exc:
                self._drop(netloc)
                raise _unreachable(address, exc) from exc
            if response.will_close:
                self._drop(netloc)
            return response.status, response.getheader(_ERROR_HEADER), data
        raise AssertionError("unreachable")


def _unreachable(address: str, exc: BaseException) -> EndpointConnectionError:
    from proxystore.endpoint._client_errors import EndpointConnectionError

    return EndpointConnectionError(f"Unable to connect to endpoint at {address}: {exc}")


def _send(
    session: Session | requests.Session | None,
    method: str,
    address: str,
    path: str,
    params: dict[str, str],
    body: bytes | bytearray | memoryview | None = None,
) -> tuple[int, str | None, bytes]:
    if isinstance(session, Session):
        return session.request(method, address, path, params, body)
    if session is not None:
        return _send_requests(session, method, address, path, params, body)
    # No session: one connection for this request only, closed afterwards.
    with Session() as once:
        return once.request(method, address, path, params, body)


def _send_requests(
    session: requests.Session,
    method: str,
    address: str,
    path: str,
    params: dict[str, str],
    body: bytes | bytearray | memoryview | None,
) -> tuple[int, str | None, bytes]:
    """Send one request through a `requests.Session` (the reference's client)."""
    import requests

    try:
        response = session.request(
            method,
            f"{address.rstrip('/')}/{path}",
            params=params,
            # requests takes bytes as a body (any other iterable is form data).
            data=None if body is None else bytes(body),
            proxies={"http": "", "https": ""},  # endpoints are local
        )
    except requests.exceptions.ConnectionError as exc:
        raise _unreachable(address, exc) from exc
    return response.status_code, response.headers.get(_ERROR_HEADER), response.content


def _params(key: str, endpoint: uuid.UUID | str | None) -> dict[str, str]:
    params = {"key": key}
    if endpoint is not None:
        params["endpoint"] = str(endpoint)
    return params


def _check(
    status: int, error: str | None, body: bytes, address: str, path: str
) -> None:
    if status >= 400:
        from proxystore.endpoint._client_errors import (
            RequestException,
            error_response,
        )

        text = body.decode("utf-8", "replace")
        raise RequestException(
            f"Endpoint returned HTTP error code {status}. {text}",
            status_code=status,
            error=error,
            text=text,
            response=error_response(f"{address}/{path}", status, error, body),
        )


def evict(
    address: str,
    key: str,
    endpoint: uuid.UUID | str | None = None,
    session: Session | requests.Session | None = None,
) -> None:
    """Remove the object at `key`.

    Raises:
        RequestException: If the endpoint answers with an error status.
        EndpointConnectionError: If the endpoint cannot be reached.
    """
    answer = _send(session, "POST", address, "evict", _params(key, endpoint))
    _check(*answer, address, "evict")


def exists(
    address: str,
    key: str,
    endpoint: uuid.UUID | str | None = None,
    session: Session | requests.Session | None = None,
) -> bool:
    """Return whether an object is stored at `key`.

    Raises:
        RequestException: If the endpoint answers with an error status.
        EndpointConnectionError: If the endpoint cannot be reached.
    """
    status, error, body = _send(
        session, "GET", address, "exists", _params(key, endpoint)
    )
    _check(status, error, body, address, "exists")
    answer: Any = json.loads(body)
    return bool(answer["exists"])


def get(
    address: str,
    key: str,
    endpoint: uuid.UUID | str | None = None,
    session: Session | requests.Session | None = None,
) -> bytes | None:
    """Return the object at `key`, or `None` when there is none.

    Raises:
        RequestException: If the endpoint answers with an error status other
            than 404 (no such object).
        EndpointConnectionError: If the endpoint cannot be reached.
    """
    status, error, body = _send(session, "GET", address, "get", _params(key, endpoint))
    if status == 404 and error is None:
        return None
    _check(status, error, body, address, "get")
    return body


def put(
    address: str,
    key: str,
    data: bytes | bytearray | memoryview,
    endpoint: uuid.UUID | str | None = None,
    session: Session | requests.Session | None = None,
    *,
    ttl: float | None = None,
) -> None:
    """Store `data` at `key`, expiring after `ttl` seconds when given.

    Raises:
        RequestException: If the endpoint answers with an error status (413 when
            the object exceeds its maximum size).
        EndpointConnectionError: If the endpoint cannot be reached.
    """
    params = _params(key, endpoint)
    if ttl is not None:
        params["ttl"] = repr(float(ttl))
    answer = _send(session, "POST", address, "set", params, data)
    _check(*answer, address, "set")


def expire(
    address: str,
    key: str,
    ttl: float | None,
    endpoint: uuid.UUID | str | None = None,
    session: Session | requests.Session | None = None,
) -> bool:
    """Give the object at `key` a new time-to-live (`None`: no deadline).

    Returns:
        Whether an (unexpired) object exists at `key`.

    Raises:
        RequestException: If the endpoint answers with an error status.
        EndpointConnectionError: If the endpoint cannot be reached.
    """
    params = _params(key, endpoint)
    if ttl is not None:
        params["ttl"] = repr(float(ttl))
    status, error, body = _send(session, "POST", address, "expire", params)
    _check(status, error, body, address, "expire")
    answer: Any = json.loads(body)
    return bool(answer["exists"])


def ttl(
    address: str,
    key: str,
    endpoint: uuid.UUID | str | None = None,
    session: Session | requests.Session | None = None,
) -> float | None:
    """Return the seconds before the object at `key` expires (`None`: no deadline).

    Raises:
        RequestException: If the endpoint answers with an error status.
        EndpointConnectionError: If the endpoint cannot be reached.
    """
    params = _params(key, endpoint)
    status, error, body = _send(session, "GET", address, "ttl", params)
    _check(status, error, body, address, "ttl")
    left: Any = json.loads(body)["ttl"]
    return None if left is None else float(left)


def listing(
    address: str, session: Session | requests.Session | None = None
) -> list[dict[str, Any]]:
    """Return the endpoint's objects: `{"key", "size", "age", "ttl"}` each.

    Raises:
        RequestException: If the endpoint answers with an error status.
        EndpointConnectionError: If the endpoint cannot be reached.
    """
    status, error, body = _send(session, "GET", address, "list", {})
    _check(status, error, body, address, "list")
    objects: list[dict[str, Any]] = json.loads(body)["objects"]
    return objects
