"""The Globus Compute pattern (`examples/globus_compute_pattern.py`) without Globus.

A spawn process pool stands in for the Globus Compute endpoint (both are
`concurrent.futures.Executor`s: the remote side only ever sees pickled tasks). The
store side is real: a FileConnector, and a Redis server. Every test ends with nothing
left in the store. That the pattern type-checks against the real
`globus_compute_sdk.Executor` is proven by mypy over `examples/`.
"""

from __future__ import annotations

import multiprocessing
import pathlib
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

import pytest

from examples import globus_compute_pattern as example
from proxystore.connectors.file import FileConnector
from proxystore.store import Store
from tests.integration.test_patterns_support import pattern_store

ROOT = pathlib.Path(__file__).parents[2]


@pytest.fixture(params=["file", "redis"])
def store(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path
) -> Iterator[Store[Any]]:
    connector: Any
    if request.param == "file":
        connector = FileConnector(str(tmp_path / "store"), clear=True)
    else:
        from proxystore.connectors.redis import RedisConnector

        server = request.getfixturevalue("redis_server")
        connector = RedisConnector(server.host, server.port)
    with pattern_store(connector, f"gc-{request.param}", timeout=5) as store:
        yield store


@pytest.fixture
def endpoint() -> Iterator[Executor]:
    """The stand-in for a Globus Compute endpoint: fresh interpreters, pickled tasks."""
    pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
    with pool:
        yield pool


def test_large_data_goes_through_the_store(
    store: Store[Any], endpoint: Executor
) -> None:
    with example.wrap(endpoint, store) as executor:
        summaries, wire = example.run(executor, seeds=range(2))
    assert summaries == [example.analyze(example.simulate(s)) for s in range(2)]
    assert summaries[0]["size"] == example.SAMPLE_BYTES
    # The executor carried a proxy's factory, not a 12 MB sample.
    assert wire < 1_000 < example.SAMPLE_BYTES


def test_results_come_back_as_proxies_that_resolve(
    store: Store[Any], endpoint: Executor
) -> None:
    with example.wrap(endpoint, store) as executor:
        sample = executor.submit(example.simulate, 7, 1_000).result()
        assert type(sample).__name__ == "OwnedProxy"
        assert bytes(sample) == example.simulate(7, 1_000)
        del sample


def test_example_runs_as_a_script() -> None:
    done = subprocess.run(
        [sys.executable, "-W", "error", "-m", "examples.globus_compute_pattern"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "objects left in the store: 0" in done.stdout
