"""Objects with a time-to-live on endpoints: storages, REST, connector, messages."""

from __future__ import annotations

import asyncio
import http.client
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from proxystore.connectors.endpoint import EndpointConnector
from proxystore.connectors.protocols import ExpiringConnector, ListingConnector
from proxystore.endpoint.endpoint import Endpoint
from proxystore.endpoint.messages import (
    EndpointRequest,
    MessageDecodeError,
    decode_request,
    encode_request,
)
from proxystore.endpoint.storage import DictStorage, SQLiteStorage, Storage

RunningEndpoint = Any


def _storages(tmp_path: Path) -> list[Storage]:
    return [DictStorage(), SQLiteStorage(tmp_path / "objects.db")]


@pytest.mark.parametrize("kind", ["dict", "sqlite"])
def test_storage_deadlines(tmp_path: Path, kind: str) -> None:
    async def main() -> None:
        storage = _storages(tmp_path)[0 if kind == "dict" else 1]
        try:
            await storage.set("short", b"a", 0.3)
            await storage.set("long", b"bb", 30)
            await storage.set("plain", b"ccc")
            left = await storage.ttl("short")
            assert left is not None
            assert 0 < left <= 0.3
            assert await storage.ttl("plain") is None
            listed = {o.key: o for o in await storage.listing()}
            assert set(listed) == {"short", "long", "plain"}
            assert listed["long"].size == 2
            assert listed["plain"].ttl is None
            assert 0 <= listed["plain"].age < 5
            await asyncio.sleep(0.35)
            # Expired: never read, even before a sweep.
            assert await storage.get("short") is None
            assert not await storage.exists("short")
            assert await storage.ttl("short") is None
            assert not await storage.expire("short", 10)
            assert {o.key for o in await storage.listing()} == {"long", "plain"}
            # A deadline can be pushed back, added or removed.
            assert await storage.expire("plain", 0.02)
            assert await storage.expire("long", None)
            assert await storage.ttl("long") is None
            await asyncio.sleep(0.04)
            assert await storage.get("plain") is None
            assert await storage.get("long") == b"bb"
            await storage.sweep()
            assert [o.key for o in await storage.listing()] == ["long"]
            # Unread expired objects are removed by the sweep.
            await storage.set("x", b"1", 0.01)
            await storage.set("y", b"2", 0.01)
            await asyncio.sleep(0.02)
            assert await storage.sweep() == 2
            assert await storage.sweep() == 0
        finally:
            await storage.close()

    asyncio.run(main())


def test_sqlite_database_of_an_earlier_release_gains_the_columns(
    tmp_path: Path,
) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE blobs (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
    conn.execute("INSERT INTO blobs VALUES ('old', x'01')")
    conn.commit()
    conn.close()

    async def main() -> None:
        storage = SQLiteStorage(path)
        try:
            assert await storage.get("old") == b"\x01"
            await storage.set("new", b"x", 0.01)
            await asyncio.sleep(0.02)
            assert await storage.sweep() == 1
            assert await storage.ttl("old") is None
        finally:
            await storage.close()

    asyncio.run(main())


def test_endpoint_sweeper_removes_expired_objects() -> None:
    async def main() -> None:
        storage = DictStorage()
        async with Endpoint("ep", uuid.uuid4(), storage=storage, sweep_interval=0.02):
            await storage.set("k", b"x", 0.02)
            for _ in range(100):
                if "k" not in storage._data:
                    break
                await asyncio.sleep(0.01)
            assert "k" not in storage._data

    asyncio.run(main())


def test_messages_carry_ttl() -> None:
    request = EndpointRequest(
        kind="request", op="expire", uuid="u", key="k", data=None, ttl=2.5
    )
    again = decode_request(encode_request(request))
    assert again.op == "expire"
    assert again.ttl == 2.5
    assert (
        decode_request(encode_request(EndpointRequest("request", "set", "u", "k"))).ttl
        is None
    )
    bad = encode_request(request).replace(b'"ttl":2.5', b'"ttl":"x"')
    with pytest.raises(MessageDecodeError, match="ttl"):
        decode_request(bad)


def _connector(ep: RunningEndpoint) -> EndpointConnector:
    return EndpointConnector([ep.config.uuid], proxystore_dir=str(ep.home))


def test_connector_ttl_expire_and_scan(solo_endpoint: RunningEndpoint) -> None:
    with _connector(solo_endpoint) as connector:
        assert isinstance(connector, ExpiringConnector)
        assert isinstance(connector, ListingConnector)
        short = connector.put(b"short", ttl=0.3)
        keys = connector.put_batch([b"a", b"b"], ttl=30)
        plain = connector.put(b"plain")
        left = connector.ttl(keys[0])
        assert left is not None
        assert 20 < left <= 30
        assert connector.ttl(plain) is None
        listed = {info.key: info for info in connector.scan()}
        assert set(listed) >= {short, *keys, plain}
        assert listed[plain].size == 5
        assert listed[plain].ttl is None
        assert connector.expire(plain, 60)
        assert connector.expire(keys[1], None)
        assert connector.ttl(keys[1]) is None
        time.sleep(0.35)
        assert connector.get(short) is None
        assert not connector.exists(short)
        assert not connector.expire(short, 5)
        assert short not in {info.key for info in connector.scan()}
        with pytest.raises(ValueError, match="ttl"):
            connector.put(b"x", ttl=-1)


def test_rest_refuses_a_bad_ttl(solo_endpoint: RunningEndpoint) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", solo_endpoint.config.port)
    try:
        conn.request("POST", "/set?key=a&ttl=nope", body=b"x")
        response = conn.getresponse()
        assert response.status == 400
        assert b"ttl" in response.read()
        conn.request("GET", "/ttl?key=missing")
        response = conn.getresponse()
        assert response.status == 200
        assert json.loads(response.read()) == {"ttl": None}
    finally:
        conn.close()
