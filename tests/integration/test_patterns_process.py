"""Patterns across processes: a spawn process-pool pipeline, a FaaS-style handler,
futures set by another process — on a FileConnector and on a real Redis.

Every test runs the code of ``examples/`` and ends by asserting that the backend
holds nothing the test created ("no key left behind").
"""

from __future__ import annotations

import hashlib
import pathlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from examples import (
    executor_pipeline,
    faas_handler,
    future_pattern,
    lifetimes_pattern,
    ownership_pattern,
)
from proxystore.connectors.file import FileConnector
from proxystore.store import Store
from tests.integration.test_patterns_support import pattern_store

ROOT = pathlib.Path(__file__).parents[2]


@pytest.fixture(params=["file", "redis"])
def store(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path
) -> Iterator[Store[Any]]:
    """A store over a FileConnector or a Redis server, checked for leftovers."""
    connector: Any
    if request.param == "file":
        connector = FileConnector(str(tmp_path / "store"), clear=True)
    else:
        from proxystore.connectors.redis import RedisConnector

        server = request.getfixturevalue("redis_server")
        connector = RedisConnector(server.host, server.port)
    # Workers evict moved owners just after they answer: allow them a moment.
    with pattern_store(connector, f"it-{request.param}", timeout=5) as store:
        yield store


def test_executor_pipeline_on_a_spawn_pool(store: Store[Any]) -> None:
    digests, wire = executor_pipeline.run(store, range(3))
    expected = [
        hashlib.sha256(executor_pipeline.generate(seed)).hexdigest()
        for seed in range(3)
    ]
    assert digests == expected
    assert wire < 1_000 < executor_pipeline.PAYLOAD_BYTES


def test_faas_handler_gets_only_a_small_task(store: Store[Any]) -> None:
    counts, sent = faas_handler.run(store, size=256 * 1_000)
    assert counts == [64_000] * 4
    assert sent < 2_000


def test_future_set_by_a_spawned_process(store: Store[Any]) -> None:
    assert future_pattern.across_processes(store, delay=0.05) == 42


def test_future_waiter_wakes_on_notification(store: Store[Any]) -> None:
    # The waiter's polling interval is 1 s: waking within it proves a notification
    # (Redis pub/sub) or the connector's own fast wait (files). Exact figures are
    # printed by `python -m examples.future_pattern`, not asserted here.
    latencies = future_pattern.notification_latency(store, repeats=2)
    assert max(latencies) < 0.9


def test_ownership_pattern(store: Store[Any]) -> None:
    means, scaled, evicted = ownership_pattern.run(store)
    assert means == [2.0, 2.0, 2.0]
    assert scaled == [10.0, 20.0, 30.0]
    assert evicted


def test_lifetimes_pattern(store: Store[Any]) -> None:
    assert lifetimes_pattern.context(store) == (True, False)
    assert lifetimes_pattern.lease(store, seconds=0.02) == (True, False)


@pytest.mark.parametrize(
    "example",
    [
        "future_pattern",
        "ownership_pattern",
        "lifetimes_pattern",
        "executor_pipeline",
        "faas_handler",
    ],
)
def test_example_runs_as_a_script(example: str) -> None:
    done = subprocess.run(
        [sys.executable, "-W", "error", "-m", f"examples.{example}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


def test_borrows_into_spawned_workers(store: Store[Any]) -> None:
    average, scaled = ownership_pattern.across_processes(store)
    assert average == 2.0
    assert scaled == [10.0, 20.0, 30.0]
