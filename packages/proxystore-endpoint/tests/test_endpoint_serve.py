"""The REST surface of a running endpoint, spoken to with raw HTTP."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from proxystore.endpoint.endpoint import Endpoint
from proxystore.endpoint.serve import create_app

# The fixtures come from conftest.py (a RunningEndpoint there).
RunningEndpoint = Any


def _request(
    ep: RunningEndpoint,
    method: str,
    target: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", ep.config.port, timeout=10)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_home_and_identity(solo_endpoint: RunningEndpoint) -> None:
    assert _request(solo_endpoint, "GET", "/")[0] == 200
    status, _, body = _request(solo_endpoint, "GET", "/endpoint")
    assert status == 200
    assert json.loads(body) == {"uuid": solo_endpoint.config.uuid}


def test_set_get_exists_evict(solo_endpoint: RunningEndpoint) -> None:
    ep = solo_endpoint
    assert _request(ep, "POST", "/set?key=a", b"hello")[0] == 200
    status, headers, body = _request(ep, "GET", "/get?key=a")
    assert (status, body) == (200, b"hello")
    assert headers["Content-Type"] == "application/octet-stream"
    assert json.loads(_request(ep, "GET", "/exists?key=a")[2]) == {"exists": True}
    assert _request(ep, "POST", "/evict?key=a")[0] == 200
    assert json.loads(_request(ep, "GET", "/exists?key=a")[2]) == {"exists": False}
    assert _request(ep, "GET", "/get?key=a")[0] == 404


def test_own_uuid_is_local(solo_endpoint: RunningEndpoint) -> None:
    ep = solo_endpoint
    target = f"/set?key=b&endpoint={ep.config.uuid}"
    assert _request(ep, "POST", target, b"x")[0] == 200
    assert _request(ep, "GET", "/get?key=b")[2] == b"x"


def test_chunked_upload(solo_endpoint: RunningEndpoint) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", solo_endpoint.config.port)
    try:
        conn.request(
            "POST",
            "/set?key=c",
            body=iter([b"ab", b"cd", b"ef"]),
            encode_chunked=True,
            headers={"Transfer-Encoding": "chunked"},
        )
        assert conn.getresponse().status == 200
    finally:
        conn.close()
    assert _request(solo_endpoint, "GET", "/get?key=c")[2] == b"abcdef"


def test_empty_chunked_upload_is_400(solo_endpoint: RunningEndpoint) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", solo_endpoint.config.port)
    try:
        conn.request(
            "POST",
            "/set?key=d",
            body=iter([]),
            encode_chunked=True,
            headers={"Transfer-Encoding": "chunked"},
        )
        response = conn.getresponse()
        assert response.status == 400
        assert b"empty" in response.read()
    finally:
        conn.close()


def test_explicit_empty_body_stores_empty_object(
    solo_endpoint: RunningEndpoint,
) -> None:
    # Deliberately unlike the reference (400): connectors round-trip b"".
    status = _request(solo_endpoint, "POST", "/set?key=e", b"")[0]
    assert status == 200
    assert _request(solo_endpoint, "GET", "/get?key=e")[:3:2] == (200, b"")


def test_empty_key_is_a_key_as_in_the_reference(
    solo_endpoint: RunningEndpoint,
) -> None:
    assert _request(solo_endpoint, "POST", "/set?key=", b"v")[0] == 200
    assert _request(solo_endpoint, "GET", "/get?key=")[::2] == (200, b"v")
    assert _request(solo_endpoint, "GET", "/get?key=other")[0] == 404


def test_body_timeout_is_408() -> None:
    async def body() -> None:
        app = create_app(Endpoint("slow", uuid.uuid4()), body_timeout=1)
        runner = web.AppRunner(app, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"POST /set?key=k HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"
            )
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), 10)
            writer.close()
            await writer.wait_closed()
            assert status_line.split()[1] == b"408", status_line
        finally:
            await runner.cleanup()

    asyncio.run(body())


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("GET", "/get"),
        ("GET", "/get?endpoint="),
        ("GET", "/get?key=a&endpoint="),
        ("GET", "/exists"),
        ("POST", "/evict"),
        ("POST", "/set"),
        ("GET", "/get?key=a&endpoint=not-a-uuid"),
        ("GET", "/exists?key=a&endpoint=123"),
        ("POST", "/evict?key=a&endpoint=%00"),
        ("POST", "/set?key=a&endpoint=zz"),
    ],
)
def test_bad_query_parameters_are_400(
    solo_endpoint: RunningEndpoint, method: str, target: str
) -> None:
    status, _, body = _request(solo_endpoint, method, target, b"x")
    assert status == 400, body
    assert body


def test_oversized_object_is_413(
    start_endpoint: Callable[..., RunningEndpoint],
) -> None:
    ep = start_endpoint(max_object_size=1000)
    status, headers, body = _request(ep, "POST", "/set?key=big", b"x" * 1001)
    assert status == 413
    assert headers["X-ProxyStore-Error"] == "ObjectSizeExceededError"
    assert b"maximum object size" in body
    assert _request(ep, "GET", "/get?key=big")[0] == 404
    assert _request(ep, "POST", "/set?key=ok", b"x" * 1000)[0] == 200


def test_oversized_chunked_object_is_413(
    start_endpoint: Callable[..., RunningEndpoint],
) -> None:
    ep = start_endpoint(max_object_size=1000)
    conn = http.client.HTTPConnection("127.0.0.1", ep.config.port)
    try:
        conn.request(
            "POST",
            "/set?key=big",
            body=iter([b"x" * 600, b"x" * 600]),
            encode_chunked=True,
            headers={"Transfer-Encoding": "chunked"},
        )
        assert conn.getresponse().status == 413
    finally:
        conn.close()


def test_solo_endpoint_serves_other_uuid_locally(
    solo_endpoint: RunningEndpoint,
) -> None:
    # Like the reference, an endpoint without peering ignores `endpoint`.
    other = uuid.uuid4()
    status = _request(solo_endpoint, "GET", f"/get?key=zz&endpoint={other}")[0]
    assert status == 404


def test_persisted_objects_survive_restart(
    start_endpoint: Callable[..., RunningEndpoint],
) -> None:
    ep = start_endpoint("persist", persist=True)
    assert _request(ep, "POST", "/set?key=p", b"kept")[0] == 200
    ep.stop()
    assert (ep.home / "persist" / "blobs.db").exists()


def test_serves_at_once_while_the_relay_does_not_answer(
    start_endpoint: Callable[..., RunningEndpoint],
) -> None:
    # A "relay" that accepts TCP connections (the kernel completes them) but
    # never answers the websocket handshake: registering would wait for the
    # relay client's 10 s timeout. The endpoint must serve long before that,
    # and say that it is still connecting.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        started = time.monotonic()
        endpoint = start_endpoint(relay_address=f"ws://127.0.0.1:{port}")
        assert time.monotonic() - started < 5
        status, _, body = _request(endpoint, "GET", "/endpoint")
        assert status == 200
        assert json.loads(body)["relay"]["status"] == "connecting"
        assert _request(endpoint, "POST", "/set?key=k", b"v")[0] == 200
        endpoint.stop()
