"""Fixtures yielding real servers (addresses only), for tests under tests/integration.

Session-scoped servers run once per process (once per xdist worker). The mode —
Testcontainers or plain processes — is chosen by ``PROXYSTORE_TEST_BACKEND`` (see
:mod:`tests.integration.harness.mode`) and printed in the pytest header. A server that
cannot be started is a skip on a developer machine and an error under ``CI=true``.
Nothing we start outlives the session: the last fixture torn down, and the
session-finish hook, stop any survivor and report it as a failure.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn, TypeVar

import pytest

from tests.integration.harness import (
    BackendUnavailableError,
    Server,
    ServerAddress,
    reap,
    select_mode,
)
from tests.integration.harness.kafka import start_tansu
from tests.integration.harness.mode import BACKEND_ENV, in_ci
from tests.integration.harness.redis import (
    ping,
    start_cluster,
    start_redis,
    valkey_program,
)
from tests.integration.harness.secure_redis import SecureRedis, start_secure_redis

_HERE = Path(__file__).parent
T = TypeVar("T")


def pytest_report_header(config: pytest.Config) -> str:
    try:
        return f"integration backend: {select_mode().describe()}"
    except BackendUnavailableError as exc:
        return f"integration backend: UNAVAILABLE ({exc})"


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Backstop for servers whose fixture teardown never ran (e.g. interrupted runs).
    survivors = reap()
    if survivors:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = f"servers still running at session end (now stopped): {survivors}"
        if reporter is not None:
            reporter.write_line(message, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _unavailable(exc: BackendUnavailableError) -> NoReturn:
    """A missing backend fails under CI (or when asked for), skips elsewhere."""
    if in_ci() or os.environ.get(BACKEND_ENV, "auto") == "testcontainers":
        pytest.fail(f"integration backend unavailable: {exc}", pytrace=False)
    pytest.skip(f"integration backend unavailable: {exc}")


def _guarded(start: Callable[[], T]) -> T:
    try:
        return start()
    except BackendUnavailableError as exc:
        _unavailable(exc)


@pytest.fixture(scope="session", autouse=True)
def _no_server_survives() -> Iterator[None]:
    """Set up first, torn down last: every server fixture must have stopped by then."""
    yield
    survivors = reap()
    if survivors:
        pytest.fail(f"servers outlived their fixtures (now stopped): {survivors}")


def _stop_all(servers: list[Server]) -> None:
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[ServerAddress]:
    """A standalone Redis on 127.0.0.1 (shared by the session: use fresh keys)."""
    server = _guarded(start_redis)
    try:
        yield server.address
    finally:
        server.stop()


@pytest.fixture(scope="session")
def valkey_server() -> Iterator[ServerAddress]:
    """A standalone Valkey 8 (Redis protocol; stands in for KeyDB)."""
    server = _guarded(lambda: start_redis(valkey_program()))
    try:
        yield server.address
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[list[ServerAddress]]:
    """A Redis Cluster of 3 masters (no replicas); the addresses of its nodes."""
    nodes = _guarded(start_cluster)
    try:
        yield [node.address for node in nodes]
    finally:
        _stop_all(nodes)


@pytest.fixture(scope="session")
def kafka_server() -> Iterator[ServerAddress]:
    """A tansu broker speaking the Kafka protocol (memory storage)."""
    server = _guarded(start_tansu)
    try:
        yield server.address
    finally:
        server.stop()


class RestartableServer:
    """A private server a test may SIGKILL and start again on the same port."""

    def __init__(self, server: Server) -> None:
        self._server = server

    @property
    def address(self) -> ServerAddress:
        """Where the server listens (unchanged across restarts)."""
        return self._server.address

    def kill(self) -> None:
        """SIGKILL the server and wait until it is gone."""
        self._server.kill()

    def restart(self, timeout: float = 30.0) -> None:
        """Start the server again and wait until it answers PING."""
        self._server.start()
        self._server.wait_ready(ping, timeout)


@pytest.fixture
def restartable_redis() -> Iterator[RestartableServer]:
    """A throwaway standalone Redis for tests that kill and restart it."""
    server = _guarded(start_redis)
    try:
        yield RestartableServer(server)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def secure_redis() -> Iterator[SecureRedis]:
    """A Redis requiring a password (and an ACL user) on a plain and a TLS port."""
    server = _guarded(start_secure_redis)
    try:
        yield server
    finally:
        server.stop()
