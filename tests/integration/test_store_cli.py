"""``proxystore-store list`` against a real Redis and a real endpoint."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from proxystore.connectors.endpoint import EndpointConnector, EndpointKey
from proxystore.connectors.redis import RedisConnector
from proxystore.store import Store
from tests.integration.harness import ServerAddress
from tests.integration.harness.endpoint import start_endpoint

# A database of its own: the session's Redis is shared with other tests.
_DB = 9


def _script() -> str:
    found = shutil.which(
        "proxystore-store", path=os.path.dirname(sys.executable)
    ) or shutil.which("proxystore-store")
    assert found, "the proxystore-store console script is not installed"
    return found


def _list_json(config: Path) -> dict[str, Any]:
    done = subprocess.run(
        [_script(), "list", "--json", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def test_lists_ten_thousand_redis_keys(
    redis_server: ServerAddress, tmp_path: Path
) -> None:
    connector = RedisConnector(redis_server.host, redis_server.port, db=_DB)
    store = Store("redis-listed", connector)
    try:
        connector.close(clear=True)  # an empty database to start with
        plain = connector.put_batch([b"v" * 10] * 9_000)
        leased = connector.put_batch([b"w" * 20] * 1_000, ttl=600)
        config = tmp_path / "redis.toml"
        store.config().write_toml(config)
        answer = _list_json(config)
        (listed,) = answer["stores"]
        objects = {tuple(o["key"]): o for o in listed["objects"]}
        assert len(objects) == 10_000
        assert listed["total"] == {
            "objects": 10_000,
            "bytes": 9_000 * 10 + 1_000 * 20,
            "expiring": 1_000,
        }
        sample = objects[tuple(leased[0])]
        assert sample["size"] == 20
        assert 590 < sample["ttl"] <= 600
        assert sample["age"] is None  # Redis records no creation time
        assert objects[tuple(plain[0])]["ttl"] is None
    finally:
        connector.close(clear=True)
        store.close()


def test_lists_an_endpoints_objects(tmp_path: Path) -> None:
    home = tmp_path / "home"
    endpoint = start_endpoint(home, "listed", None)
    try:
        connector = EndpointConnector([endpoint.uuid], proxystore_dir=str(home))
        with Store("ep-listed", connector) as store:
            kept = EndpointKey(*store.put(b"x" * 50))
            expiring = EndpointKey(*store.put(b"y", ttl=120))
            config = tmp_path / "ep.toml"
            store.config().write_toml(config)
            (listed,) = _list_json(config)["stores"]
            objects = {o["key"][0]: o for o in listed["objects"]}
            assert set(objects) == {kept.object_id, expiring.object_id}
            assert objects[kept.object_id]["ttl"] is None
            assert 100 < objects[expiring.object_id]["ttl"] <= 120
            assert listed["total"]["expiring"] == 1
    finally:
        endpoint.stop()
