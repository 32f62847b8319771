"""What the store logs: one DEBUG line per put, get and evict; registration at INFO."""

from __future__ import annotations

import logging
import subprocess
import sys
import uuid

import pytest

from proxystore.connectors.local import LocalConnector
from proxystore.store import Store

_SCRIPT = """
import logging
logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(message)s")
from proxystore.connectors.local import LocalConnector
from proxystore.store import Store
store = Store("logged", LocalConnector())
print("-- put", flush=True)
key = store.put([1, 2])
print("-- get", flush=True)
store.get(key)
print("-- evict", flush=True)
store.evict(key)
print("-- end", flush=True)
"""


def test_debug_logging_prints_one_line_per_put_get_evict() -> None:
    # basicConfig as a user would, in a fresh interpreter: logs go to stderr.
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    # Every DEBUG line of the run: exactly one per operation.
    lines = [line for line in done.stderr.splitlines() if line.startswith("DEBUG ")]
    assert [line.split()[2] for line in lines] == ["PUT", "GET", "EVICT"]
    assert all("connector=LocalConnector" in line for line in lines)
    key_text = lines[0].split(" ", 3)[3]
    assert key_text.startswith("LocalKey(")
    assert "Initialized Store(name=logged" in done.stderr


def test_lines_name_the_key_and_note_cache_hits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="proxystore.store")
    name = f"log-{uuid.uuid4().hex[:8]}"
    with Store(name, LocalConnector(), register=True) as store:
        key = store.put("x")
        store.get(key)
        store.get(key)
        store.get(store.connector.new_key())
    messages = [r.getMessage() for r in caplog.records]
    assert f"Registered a store named {name!r}" in messages
    ops = [m for m in messages if m.startswith(f'Store(name="{name}")')]
    assert len(ops) == 4
    assert repr(key) in ops[0]
    assert ops[2].endswith("(cached)")
    assert ops[3].endswith("(missing)")
    assert f"Unregistered the store named {name!r}" in messages


def test_quiet_by_default(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    with Store(f"quiet-{uuid.uuid4().hex[:8]}", LocalConnector()) as store:
        store.evict(store.put(1))
    assert not [r for r in caplog.records if r.name.startswith("proxystore")]
