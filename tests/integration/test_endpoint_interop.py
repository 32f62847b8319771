"""The reference release's `EndpointConnector` (1.1.0, run in `.bench-venv/`)
talks to our endpoints: it reads the configurations our CLI writes and speaks the
REST protocol; a put on one endpoint is read on the other through peering.

The reference venv is created on first use (it needs the package index); under
`CI=true` failing to create it is an error, elsewhere a skip.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from proxystore.connectors.endpoint import EndpointConnector, EndpointKey
from tests.integration.harness.endpoint import (
    EndpointProcess,
    RelayProcess,
    start_endpoint,
    start_relay,
)
from tests.integration.harness.mode import in_ci

_REFERENCE = """
import json, os, sys
from proxystore.connectors.endpoint import EndpointConnector, EndpointKey
op, endpoint, key_id, key_ep = sys.argv[1:5]
with EndpointConnector([endpoint]) as c:
    if op == "put":
        key = c.put(bytes.fromhex(sys.argv[5]))
        print(json.dumps(list(key)))
    elif op == "get":
        data = c.get(EndpointKey(key_id, key_ep))
        print(json.dumps(None if data is None else data.hex()))
    elif op == "exists":
        print(json.dumps(c.exists(EndpointKey(key_id, key_ep))))
    elif op == "evict":
        c.evict(EndpointKey(key_id, key_ep))
        print(json.dumps(True))
"""


@pytest.fixture(scope="module")
def reference() -> Any:
    from scripts.bench import _refvenv

    try:
        _refvenv.ensure()
        _refvenv.run_json(
            "import json, proxystore.connectors.endpoint; print(json.dumps(1))"
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        if in_ci():
            pytest.fail(f"reference venv unavailable: {exc}")
        pytest.skip(f"reference venv unavailable: {exc}")
    return _refvenv


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[EndpointProcess, EndpointProcess]]:
    relay: RelayProcess = start_relay(tmp_path / "relay")
    started: list[EndpointProcess] = []
    try:
        for name in ("A", "B"):
            started.append(
                start_endpoint(tmp_path / f"home-{name}", name, relay, direct=False)
            )
        yield started[0], started[1]
    finally:
        for endpoint in started:
            endpoint.stop()
        relay.stop()


def _ref(
    reference: Any, home: Path, op: str, endpoint: str, key: list[Any], *extra: str
) -> Any:
    return reference.run_json(
        _REFERENCE,
        op,
        endpoint,
        str(key[0]),
        str(key[1]),
        *extra,
        env={"PROXYSTORE_HOME": str(home)},
    )


def test_reference_client_put_on_one_get_on_other(
    reference: Any, pair: tuple[EndpointProcess, EndpointProcess]
) -> None:
    a, b = pair
    payload = bytes(range(256)) * 40
    key = _ref(reference, a.home, "put", a.uuid, ["", ""], payload.hex())
    assert key[1] == a.uuid
    # Reference client on B reads A's object through the peer connection.
    assert bytes.fromhex(_ref(reference, b.home, "get", b.uuid, key)) == payload
    assert _ref(reference, b.home, "exists", b.uuid, key) is True
    # Our connector reads what the reference wrote, and the other way round.
    with EndpointConnector([a.uuid], proxystore_dir=str(a.home)) as ours:
        assert ours.get(EndpointKey(*key)) == payload
        our_key = ours.put(b"from ours")
    got = _ref(reference, b.home, "get", b.uuid, list(our_key))
    assert bytes.fromhex(got) == b"from ours"
    _ref(reference, b.home, "evict", b.uuid, key)
    assert _ref(reference, a.home, "exists", a.uuid, key) is False
    missing = [str(uuid.uuid4()), a.uuid]
    assert _ref(reference, b.home, "get", b.uuid, missing) is None
