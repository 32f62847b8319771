"""Endpoints peering through a relay, each a separate process started by the CLI.

One relay and two or three endpoints, each configured in its own proxystore home
directory; WebRTC between loopback addresses only. A proxy made on endpoint A is
resolved in a spawned process that only knows endpoint B.
"""

from __future__ import annotations

import hashlib
import http.client
import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from proxystore.connectors.endpoint import (
    EndpointConnector,
    EndpointConnectorError,
    EndpointKey,
)
from proxystore.store import Store
from tests.integration.harness.endpoint import (
    EndpointProcess,
    RelayProcess,
    start_endpoint,
    start_relay,
)

_100MB = 100 * 1000 * 1000


# --------------------------------------------------------------- spawned side


def resolve_in_child(home: str, proxies: list[Any], big: Any) -> dict[str, Any]:
    """Run in a spawned process that only knows the endpoint in `home`."""
    os.environ["PROXYSTORE_HOME"] = home
    from proxystore.store import get_store, unregister_store

    small = [bytes(p) for p in proxies]
    digest = hashlib.sha256(bytes(big)).hexdigest() if big is not None else None
    store = get_store(proxies[0])
    connector = None if store is None else store.connector
    result = {
        "small": small,
        "big": digest,
        "local": None if connector is None else str(connector.endpoint_uuid),
    }
    if store is not None:
        unregister_store(store)
        store.close()
    return result


def _spawn(home: Path, proxies: list[Any], big: Any) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        result: dict[str, Any] = pool.apply(resolve_in_child, (str(home), proxies, big))
    return result


# --------------------------------------------------------------- fixtures


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[RelayProcess]:
    relay = start_relay(tmp_path / "relay")
    try:
        yield relay
    finally:
        relay.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Any]:
    """Factory for endpoints; every one is stopped (and its port checked)."""
    started: list[EndpointProcess] = []

    def make(name: str, relay: RelayProcess | None, **kwargs: Any) -> EndpointProcess:
        endpoint = start_endpoint(tmp_path / f"home-{name}", name, relay, **kwargs)
        started.append(endpoint)
        return endpoint

    try:
        yield make
    finally:
        for endpoint in started:
            endpoint.stop()


def _store(endpoint: EndpointProcess, *others: EndpointProcess) -> Store[Any]:
    connector = EndpointConnector(
        [endpoint.uuid, *(o.uuid for o in others)],
        proxystore_dir=None,
    )
    return Store(f"endpoint-{uuid.uuid4()}", connector, register=True)


def _http(
    endpoint: EndpointProcess, method: str, target: str, body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", endpoint.config.port, timeout=120)
    try:
        conn.request(method, target, body=body)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


# --------------------------------------------------------------- scenarios


@pytest.mark.parametrize("direct", [False, True], ids=["webrtc", "direct"])
def test_proxy_resolves_on_the_other_endpoint(
    relay: RelayProcess,
    cluster: Any,
    monkeypatch: pytest.MonkeyPatch,
    direct: bool,
) -> None:
    # 100 MB over aiortc's SCTP can take a minute on a loaded machine.
    a = cluster("A", relay, direct=direct, request_timeout=240)
    b = cluster("B", relay, direct=direct, request_timeout=240)
    monkeypatch.setenv("PROXYSTORE_HOME", str(a.home))
    with _store(a, b) as store:
        objects = [os.urandom(64) + i.to_bytes(4, "big") for i in range(1000)]
        proxies = store.proxy_batch(objects)
        big = os.urandom(_100MB)
        big_proxy = store.proxy(big)
        result = _spawn(b.home, proxies, big_proxy)
        store.close()
    assert result["local"] == b.uuid
    assert result["small"] == objects
    assert result["big"] == hashlib.sha256(big).hexdigest()
    if direct:
        assert "reachable directly" in b.log
    else:
        assert "reachable directly" not in b.log


def test_three_endpoints_and_forwarded_writes(
    relay: RelayProcess, cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, c = (cluster(n, relay, direct=False) for n in "ABC")
    monkeypatch.setenv("PROXYSTORE_HOME", str(c.home))
    with EndpointConnector([c.uuid]) as connector:
        for owner in (a, b):
            key = EndpointKey(str(uuid.uuid4()), owner.uuid)
            connector.set(key, b"written from C")
            assert connector.exists(key)
            assert connector.get(key) == b"written from C"
            status, _, body = _http(owner, "GET", f"/get?key={key.object_id}")
            assert (status, body) == (200, b"written from C")
            connector.evict(key)
            assert not connector.exists(key)


# --------------------------------------------------------------- faults


def test_unknown_endpoint_uuid_is_4xx_and_typed(
    relay: RelayProcess, cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = cluster("A", relay, request_timeout=20)
    stranger = uuid.uuid4()
    started = time.monotonic()
    status, headers, body = _http(a, "GET", f"/get?key=k&endpoint={stranger}")
    assert 400 <= status < 500
    assert headers["X-ProxyStore-Error"] in (
        "UnknownPeerError",
        "PeerTimeoutError",
        "PeerRequestError",
    )
    assert str(stranger) in body.decode()
    assert time.monotonic() - started < 25
    monkeypatch.setenv("PROXYSTORE_HOME", str(a.home))
    with EndpointConnector([a.uuid]) as connector:
        with pytest.raises(EndpointConnectorError, match=str(stranger)):
            connector.get(EndpointKey("k", str(stranger)))
        # The endpoint keeps serving.
        key = connector.put(b"still here")
        assert connector.get(key) == b"still here"


def test_peer_killed_mid_transfer(
    relay: RelayProcess, cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = cluster("A", relay, direct=False, request_timeout=15)
    b = cluster("B", relay, direct=False, request_timeout=15)
    big = os.urandom(_100MB)
    assert _http(a, "POST", "/set?key=big", big)[0] == 200
    assert _http(b, "POST", "/set?key=mine", b"kept on B")[0] == 200
    # Warm the peer connection so the kill lands during the transfer.
    assert _http(b, "GET", f"/exists?key=big&endpoint={a.uuid}")[0] == 200
    outcome: dict[str, Any] = {}

    def fetch() -> None:
        started = time.monotonic()
        outcome["answer"] = _http(b, "GET", f"/get?key=big&endpoint={a.uuid}")
        outcome["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=fetch)
    thread.start()
    time.sleep(0.5)
    a.kill()
    thread.join(60)
    assert not thread.is_alive(), "the forwarded request was not bounded"
    status, _, body = outcome["answer"]
    assert 400 <= status < 500, body[:200]
    assert str(a.uuid) in body.decode()
    assert outcome["seconds"] < 30
    # Nothing stored on the survivor is lost, and it keeps serving.
    assert _http(b, "GET", "/get?key=mine")[:3:2] == (200, b"kept on B")


def test_relay_restart_keeps_and_restores_peering(
    relay: RelayProcess, cluster: Any
) -> None:
    a = cluster("A", relay, direct=False)
    b = cluster("B", relay, direct=False)
    c = cluster("C", relay, direct=False)
    assert _http(a, "POST", "/set?key=k", b"value")[0] == 200
    assert _http(b, "GET", f"/get?key=k&endpoint={a.uuid}")[2] == b"value"
    relay.kill()
    # The established A-B connection does not need the relay.
    assert _http(b, "GET", f"/get?key=k&endpoint={a.uuid}")[2] == b"value"
    relay.start()
    # C never talked to A: that needs the relay, which the endpoints rejoin.
    deadline = time.monotonic() + 90
    answer: tuple[int, dict[str, str], bytes] = (0, {}, b"")
    while time.monotonic() < deadline:
        answer = _http(c, "GET", f"/get?key=k&endpoint={a.uuid}")
        if answer[0] == 200:
            break
        time.sleep(1)
    assert answer[0] == 200, answer[2][:300]
    assert answer[2] == b"value"


def test_oversized_objects_are_413(relay: RelayProcess, cluster: Any) -> None:
    a = cluster("A", relay, direct=False, max_object_size=500)
    b = cluster("B", relay, direct=False, max_object_size=1000)
    status, headers, _ = _http(a, "POST", "/set?key=big", b"x" * 501)
    assert status == 413
    assert headers["X-ProxyStore-Error"] == "ObjectSizeExceededError"
    # B accepts 900 bytes, but the owner A does not: its error comes back
    # through the peer connection with the same status.
    status, headers, body = _http(
        b, "POST", f"/set?key=big&endpoint={a.uuid}", b"x" * 900
    )
    assert status == 413, body
    assert headers["X-ProxyStore-Error"] == "ObjectSizeExceededError"
    assert (
        _http(b, "GET", f"/exists?key=big&endpoint={a.uuid}")[2] == b'{"exists": false}'
    )


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("GET", "/get"),
        ("GET", "/get?key=k&endpoint=bad"),
        ("GET", "/exists?endpoint=00000000"),
        ("POST", "/evict?key=k&endpoint=%20"),
        ("POST", "/set?key=k&endpoint=xyz"),
    ],
)
def test_bad_query_parameters_are_400(cluster: Any, method: str, target: str) -> None:
    a = cluster("A", None)
    assert _http(a, method, target, b"x")[0] == 400


def test_stopped_endpoint_names_itself(
    cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = cluster("A", None)
    monkeypatch.setenv("PROXYSTORE_HOME", str(a.home))
    connector = EndpointConnector([a.uuid])
    key = connector.put(b"x")
    a.stop()
    try:
        with pytest.raises(EndpointConnectorError, match=a.uuid):
            connector.get(key)
        with pytest.raises(EndpointConnectorError, match=a.uuid):
            EndpointConnector([a.uuid])
    finally:
        connector.close()
