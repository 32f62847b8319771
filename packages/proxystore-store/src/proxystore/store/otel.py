"""Optional OpenTelemetry instrumentation of stores (the ``otel`` extra).

`instrument` makes every store of the process report, through the OpenTelemetry
API (``opentelemetry-api``; install ``proxystore-store[otel]``):

* a span per operation: ``proxystore.put``, ``proxystore.put_batch``,
  ``proxystore.get``, ``proxystore.get_evict``, ``proxystore.evict`` and
  ``proxystore.resolve`` (a proxy fetching its object), with the attributes
  ``proxystore.store`` (store name), ``proxystore.connector`` (connector class),
  ``proxystore.size`` (bytes moved through the connector, when it moved any)
  and, for puts with one, ``proxystore.ttl``;
* the measurements `proxystore.store.metrics.StoreMetrics` records per key, as
  OpenTelemetry instruments: a counter ``proxystore.operations`` and histograms
  ``proxystore.operation.duration`` (milliseconds) and ``proxystore.object.size``
  (bytes), each with the attributes ``operation`` (``store.put``,
  ``store.get``, ... as `StoreMetrics` names them), ``store`` and ``connector``.

Costing nothing while off: instrumenting *replaces* the store's methods with
traced ones, and `uninstrument` puts the originals back, so an uninstrumented
process runs exactly the code it runs without this module or OpenTelemetry
installed (no flag is tested on any call). ``PROXYSTORE_OTEL=1`` in the
environment instruments at the first import of `proxystore.store` (the variable
is read once).

While instrumented, connector classes used by a store are wrapped too (their
``put``/``get`` families, to learn sizes), which takes stores off their
``put_parts``/``get_parts`` shortcuts: the instrumented path costs one more copy
for the connectors that have them (shared memory, the local connector).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["instrument", "instrumented", "uninstrument"]

_lock = threading.Lock()
# (owner class, attribute) -> original function, for everything replaced.
_originals: dict[tuple[type, str], Any] = {}
_state: dict[str, Any] = {}

_STORE_METHODS = {
    "put": "store.put",
    "put_batch": "store.put_batch",
    "get": "store.get",
    "get_evict": "store.get_evict",
    "evict": "store.evict",
}
_CONNECTOR_PUTS = ("put", "put_batch", "put_parts", "set")
_CONNECTOR_GETS = ("get", "get_batch", "get_parts", "get_evict")


def instrumented() -> bool:
    """Return whether stores are instrumented now."""
    return bool(_originals)


def _nbytes(data: Any) -> int:
    if data is None:
        return 0
    if isinstance(data, bytes | bytearray):
        return len(data)
    if isinstance(data, memoryview):
        return data.nbytes
    if isinstance(data, list | tuple):
        return sum(_nbytes(part) for part in data)
    try:
        return memoryview(data).nbytes
    except TypeError:
        return 0


def _replace(owner: type, name: str, make: Callable[[Any], Any]) -> None:
    if (owner, name) in _originals or name not in owner.__dict__:
        return
    original = owner.__dict__[name]
    _originals[(owner, name)] = original
    setattr(owner, name, functools.wraps(original)(make(original)))


def _size_recorder(original: Any, result_sized: bool) -> Any:
    trace = _state["trace"]
    local = _state["sizes"]

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        # Only the outermost connector call counts (a put_batch may call put).
        depth = getattr(local, "depth", 0)
        local.depth = depth + 1
        try:
            result = original(self, *args, **kwargs)
        finally:
            local.depth = depth
        if depth == 0:
            span = trace.get_current_span()
            if span.is_recording():
                data = result if result_sized else (args[0] if args else None)
                local.value = getattr(local, "value", 0) + _nbytes(data)
                span.set_attribute("proxystore.size", local.value)
        return result

    return wrapper


def _wrap_connector_class(kind: type) -> None:
    if kind in _state["connectors"]:
        return
    with _lock:
        if kind in _state["connectors"] or not _originals:
            return
        _state["connectors"].add(kind)
        for cls in kind.__mro__:
            if cls is object:
                continue
            for name in _CONNECTOR_PUTS:
                if name == "set":
                    _replace(cls, name, _set_recorder)
                else:
                    _replace(cls, name, lambda f: _size_recorder(f, False))
            for name in _CONNECTOR_GETS:
                _replace(cls, name, lambda f: _size_recorder(f, True))


def _set_recorder(original: Any) -> Any:
    trace = _state["trace"]
    local = _state["sizes"]

    def wrapper(self: Any, key: Any, obj: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, key, obj, *args, **kwargs)
        span = trace.get_current_span()
        if span.is_recording() and not getattr(local, "depth", 0):
            local.value = getattr(local, "value", 0) + _nbytes(obj)
            span.set_attribute("proxystore.size", local.value)
        return result

    return wrapper


def _store_method(original: Any, operation: str) -> Any:
    tracer = _state["tracer"]
    counter = _state["counter"]
    duration = _state["duration"]
    sizes = _state["sizes"]
    object_size = _state["object_size"]
    span_name = "proxystore." + operation.split(".", 1)[1]

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        connector = self.connector
        kind = type(connector)
        if kind not in _state["connectors"]:
            _wrap_connector_class(kind)
        attributes = {
            "proxystore.store": self.name,
            "proxystore.connector": kind.__name__,
        }
        ttl = kwargs.get("ttl")
        if ttl is not None:
            attributes["proxystore.ttl"] = float(ttl)
        outer = getattr(sizes, "value", 0)
        sizes.value = 0
        start = time.perf_counter_ns()
        try:
            with tracer.start_as_current_span(span_name, attributes=attributes):
                return original(self, *args, **kwargs)
        finally:
            elapsed = (time.perf_counter_ns() - start) / 1e6
            moved = sizes.value
            sizes.value = outer + moved
            labels = {
                "operation": operation,
                "store": self.name,
                "connector": kind.__name__,
            }
            counter.add(1, labels)
            duration.record(elapsed, labels)
            if moved:
                object_size.record(moved, labels)

    return wrapper


def _resolve_method(original: Any) -> Any:
    tracer = _state["tracer"]
    counter = _state["counter"]
    duration = _state["duration"]

    def wrapper(self: Any) -> Any:
        config = self.store_config
        kind = config.connector.kind.rsplit(".", 1)[-1]
        attributes = {"proxystore.store": config.name, "proxystore.connector": kind}
        start = time.perf_counter_ns()
        try:
            with tracer.start_as_current_span(
                "proxystore.resolve", attributes=attributes
            ):
                return original(self)
        finally:
            labels = {
                "operation": "factory.resolve",
                "store": config.name,
                "connector": kind,
            }
            counter.add(1, labels)
            duration.record((time.perf_counter_ns() - start) / 1e6, labels)

    return wrapper


def instrument(tracer_provider: Any = None, meter_provider: Any = None) -> None:
    """Trace and measure every store operation of this process (idempotent).

    Args:
        tracer_provider: OpenTelemetry tracer provider (default: the global one).
        meter_provider: OpenTelemetry meter provider (default: the global one).

    Raises:
        ImportError: if ``opentelemetry-api`` is not installed (install the
            ``otel`` extra).
    """
    try:
        from opentelemetry import metrics, trace
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError(
            "OpenTelemetry instrumentation needs opentelemetry-api: install "
            "proxystore-store[otel] (or proxystore[otel])."
        ) from e
    from proxystore.store.base import Store
    from proxystore.store.factory import StoreFactory

    with _lock:
        if _originals:
            return
        meter = metrics.get_meter("proxystore.store", meter_provider=meter_provider)
        _state.update(
            trace=trace,
            tracer=trace.get_tracer(
                "proxystore.store", tracer_provider=tracer_provider
            ),
            counter=meter.create_counter(
                "proxystore.operations", description="Store operations."
            ),
            duration=meter.create_histogram(
                "proxystore.operation.duration",
                unit="ms",
                description="Time a store operation took.",
            ),
            object_size=meter.create_histogram(
                "proxystore.object.size",
                unit="By",
                description="Bytes a store operation moved through its connector.",
            ),
            sizes=threading.local(),
            connectors=set(),
        )
        for name, operation in _STORE_METHODS.items():
            _replace(Store, name, functools.partial(_store_method, operation=operation))
        _replace(StoreFactory, "__call__", _resolve_method)


def uninstrument() -> None:
    """Put every original method back: stores run exactly as uninstrumented."""
    with _lock:
        for (owner, name), original in _originals.items():
            setattr(owner, name, original)
        _originals.clear()
        _state.clear()
