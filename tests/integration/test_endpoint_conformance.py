"""`EndpointConnector` on a real endpoint process (started by the CLI): the
connector suite, the store laws, futures set by a spawned process, streams, and
the cross-process patterns."""

from __future__ import annotations

import queue
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from examples import future_pattern
from proxystore.connectors.endpoint import EndpointConnector
from proxystore.connectors.protocols import (
    Connector,
    EvictingConnector,
    WaitableConnector,
)
from proxystore.proxy import Proxy
from proxystore.store import Store
from proxystore.stream import StreamConsumer, StreamProducer
from proxystore.stream.shims.queue import QueuePublisher, QueueSubscriber
from tests.conformance.connector_suite import ConnectorSuite
from tests.conformance.store_laws import StoreLaws
from tests.integration.harness.endpoint import EndpointProcess, start_endpoint


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EndpointProcess]:
    home = tmp_path_factory.mktemp("endpoint-home")
    process = start_endpoint(home, "conformance", None, max_object_size=50_000_000)
    try:
        yield process
    finally:
        process.stop()


def _connector(endpoint: EndpointProcess) -> EndpointConnector:
    return EndpointConnector([endpoint.uuid], proxystore_dir=str(endpoint.home))


class TestEndpointConformance(ConnectorSuite):
    @pytest.fixture
    def connector(self, endpoint: EndpointProcess) -> Iterator[EndpointConnector]:
        with _connector(endpoint) as connector:
            yield connector

    # Like the reference, the endpoint REST API has no blocking wait and no
    # get-and-delete: the connector does not claim those protocols (so stores
    # poll, and get then evict), which these overrides check instead of skipping.

    def test_wait_on_existing_key(self, connector: Connector[Any]) -> None:
        assert not isinstance(connector, WaitableConnector)

    def test_wait_times_out_on_missing_key(self, connector: Connector[Any]) -> None:
        assert not isinstance(connector, WaitableConnector)

    def test_wait_returns_after_set_from_other_thread(
        self, connector: Connector[Any]
    ) -> None:
        assert not isinstance(connector, WaitableConnector)

    def test_get_evict_returns_then_removes(self, connector: Connector[Any]) -> None:
        assert not isinstance(connector, EvictingConnector)

    def test_get_evict_missing_key_changes_nothing(
        self, connector: Connector[Any]
    ) -> None:
        assert not isinstance(connector, EvictingConnector)


class TestEndpointStoreLaws(StoreLaws):
    @pytest.fixture(scope="class")
    @classmethod
    def store_connector(cls, endpoint: EndpointProcess) -> Iterator[EndpointConnector]:
        with _connector(endpoint) as connector:
            yield connector


@pytest.fixture
def store(
    endpoint: EndpointProcess, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Store[EndpointConnector]]:
    # Spawned processes find the endpoint through PROXYSTORE_HOME.
    monkeypatch.setenv("PROXYSTORE_HOME", str(endpoint.home))
    connector = EndpointConnector([endpoint.uuid])
    with Store(f"endpoint-{uuid.uuid4()}", connector, register=True) as s:
        yield s


def test_future_set_by_a_spawned_process(store: Store[EndpointConnector]) -> None:
    assert future_pattern.across_processes(store, delay=0.05) == 42


def test_stream_of_proxies(store: Store[EndpointConnector]) -> None:
    q: queue.Queue[bytes] = queue.Queue()
    producer: StreamProducer[Any] = StreamProducer(
        QueuePublisher({"t": q}), default_store=store
    )
    consumer: StreamConsumer[Any] = StreamConsumer(QueueSubscriber(q))
    for i in range(20):
        producer.send("t", {"i": i, "data": bytes(1000)})
    producer.close_topics("t")
    items = list(consumer)
    assert [item["i"] for item in items] == list(range(20))
    assert all(isinstance(item, Proxy) for item in items)
    producer.close()
    consumer.close()


def test_home_directory_layout(endpoint: EndpointProcess) -> None:
    directory: Path = endpoint.home / endpoint.name
    assert (directory / "config.toml").is_file()
    assert (directory / "daemon.pid").is_file()
    assert "Serving endpoint" in endpoint.log
