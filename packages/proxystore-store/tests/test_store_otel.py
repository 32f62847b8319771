"""OpenTelemetry instrumentation of stores (the ``otel`` extra)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

from proxystore.connectors.file import FileConnector
from proxystore.connectors.local import LocalConnector
from proxystore.store import Store, otel
from proxystore.store.base import Store as BaseStore
from proxystore.store.factory import StoreFactory


@pytest.fixture
def telemetry() -> Iterator[tuple[InMemorySpanExporter, InMemoryMetricReader]]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    otel.instrument(tracer_provider, MeterProvider(metric_readers=[reader]))
    try:
        yield spans, reader
    finally:
        otel.uninstrument()


def _metric_points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    assert data is not None
    out: dict[str, list[Any]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                out.setdefault(metric.name, []).extend(metric.data.data_points)
    return out


def test_spans_for_put_get_resolve_evict(
    telemetry: tuple[InMemorySpanExporter, InMemoryMetricReader],
    tmp_path: pathlib.Path,
) -> None:
    spans, reader = telemetry
    with Store(
        "traced", FileConnector(str(tmp_path / "o")), cache_size=0, register=True
    ) as store:
        key = store.put(b"x" * 1000, ttl=60)
        assert store.get(key) == b"x" * 1000
        proxy = store.proxy([1, 2, 3], populate_target=False)
        assert proxy == [1, 2, 3]  # resolves
        store.evict(key)
    done = spans.get_finished_spans()
    # The first of each name: the calls above (the proxy's put and get follow).
    finished = {s.name: s for s in reversed(done)}
    assert {"proxystore.put", "proxystore.get", "proxystore.resolve"} <= set(finished)
    assert "proxystore.evict" in finished
    put = finished["proxystore.put"]
    assert put.attributes is not None
    assert put.attributes["proxystore.store"] == "traced"
    assert put.attributes["proxystore.connector"] == "FileConnector"
    assert put.attributes["proxystore.ttl"] == 60.0
    size = put.attributes["proxystore.size"]
    assert isinstance(size, int)
    assert size > 1000
    get = finished["proxystore.get"]
    assert get.attributes is not None
    assert get.attributes["proxystore.size"] == size
    resolve = finished["proxystore.resolve"]
    assert resolve.attributes is not None
    assert resolve.attributes["proxystore.connector"] == "FileConnector"
    points = _metric_points(reader)
    operations = {
        p.attributes["operation"]: p.value for p in points["proxystore.operations"]
    }
    assert operations["store.put"] >= 2  # put, and the put behind the proxy
    assert operations["store.get"] >= 2
    assert operations["store.evict"] == 1
    assert operations["factory.resolve"] == 1
    durations = {
        p.attributes["operation"] for p in points["proxystore.operation.duration"]
    }
    assert "store.put" in durations
    sizes = list(points["proxystore.object.size"])
    assert any(p.attributes["operation"] == "store.put" for p in sizes)


def test_batch_sizes_are_counted_once(
    telemetry: tuple[InMemorySpanExporter, InMemoryMetricReader],
    tmp_path: pathlib.Path,
) -> None:
    spans, _ = telemetry
    with Store("batched", FileConnector(str(tmp_path / "b"))) as store:
        store.put_batch([b"a" * 100, b"b" * 100])
    (span,) = [
        s for s in spans.get_finished_spans() if s.name == "proxystore.put_batch"
    ]
    assert span.attributes is not None
    size = span.attributes["proxystore.size"]
    assert isinstance(size, int)
    assert 200 < size < 400  # two payloads, not four


def test_uninstrument_restores_the_original_methods() -> None:
    before = (BaseStore.__dict__["put"], StoreFactory.__dict__["__call__"])
    local_put = LocalConnector.__dict__["put"]
    otel.instrument()
    try:
        assert otel.instrumented()
        assert BaseStore.__dict__["put"] is not before[0]
        with Store("wrapped", LocalConnector()) as store:
            store.get(store.put(1))
        assert LocalConnector.__dict__["put"] is not local_put
    finally:
        otel.uninstrument()
    assert not otel.instrumented()
    assert (BaseStore.__dict__["put"], StoreFactory.__dict__["__call__"]) == before
    assert LocalConnector.__dict__["put"] is local_put


def test_environment_variable_instruments_at_import() -> None:
    code = (
        "from proxystore.store import otel, Store\n"
        "from proxystore.connectors.local import LocalConnector\n"
        "print(otel.instrumented())\n"
    )
    env = {**os.environ, "PROXYSTORE_OTEL": "1"}
    on = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    env["PROXYSTORE_OTEL"] = "0"
    off = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    assert on.stdout.strip() == "True"
    assert off.stdout.strip() == "False"
