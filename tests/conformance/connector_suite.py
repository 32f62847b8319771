"""Behaviour every connector must share, as a reusable pytest test class.

How a connector joins the suite (one small class in its own test module)::

    import pytest
    from tests.conformance.connector_suite import ConnectorSuite

    class TestRedisConformance(ConnectorSuite):
        # Set to False when a connector rebuilt from config() does not see the
        # objects of the original (e.g. LocalConnector without its data).
        config_shares_data = True

        @pytest.fixture
        def connector(self, redis_server):
            with RedisConnector(redis_server.host, redis_server.port) as c:
                yield c

The fixture must yield a fresh, open connector and close it afterwards (closing a
connector twice must be harmless: one test closes it itself). The context-manager test
wraps ``close`` on the instance, so connectors must not use ``__slots__``. Tests for
:class:`~proxystore.connectors.protocols.DeferrableConnector` (``new_key``/``set``) and
:class:`~proxystore.connectors.protocols.WaitableConnector` (``wait``) and
:class:`~proxystore.connectors.protocols.EvictingConnector` (``get_evict``) run only
when the connector is an instance of those protocols, and are skipped otherwise.

``ConnectorSuite`` has no ``Test`` prefix so pytest does not collect it by itself; only
its subclasses run. Override a single test in a subclass (or mark it ``xfail``) when a
backend documents a deliberate difference.
"""

from __future__ import annotations

import pickle
import threading
from typing import Any, ClassVar
from unittest import mock

import pytest

from proxystore.connectors.protocols import (
    BytesLike,
    Connector,
    DeferrableConnector,
    EvictingConnector,
    WaitableConnector,
)

__all__ = ["ConnectorSuite"]

_FIVE_MB = 5 * 1000 * 1000


def _payload(size: int, seed: int = 0) -> bytes:
    """Deterministic, non-uniform bytes (catches offset and truncation bugs)."""
    pattern = bytes((i * 31 + seed) % 251 for i in range(251))
    return (pattern * (size // len(pattern) + 1))[:size]


def _as_bytes(value: BytesLike | None) -> bytes | None:
    return None if value is None else bytes(value)


class ConnectorSuite:
    """Tests any :class:`~proxystore.connectors.protocols.Connector` must pass.

    Subclasses provide a ``connector`` fixture; see the module docstring.
    """

    #: Whether a connector made by ``from_config(connector.config())`` reads the
    #: objects stored through the original one.
    config_shares_data: ClassVar[bool] = True
    #: Upper bound on ``len(pickle.dumps(key))``: keys travel inside every proxy.
    max_key_pickle_bytes: ClassVar[int] = 200

    # ------------------------------------------------------------- put / get

    @pytest.mark.parametrize("size", [0, 1, 1000, _FIVE_MB])
    def test_put_get_round_trip(self, connector: Connector[Any], size: int) -> None:
        data = _payload(size)
        key = connector.put(data)
        assert _as_bytes(connector.get(key)) == data
        assert connector.exists(key)

    @pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
    def test_put_accepts_bytes_like(
        self, connector: Connector[Any], kind: type[Any]
    ) -> None:
        data = _payload(4096, seed=3)
        key = connector.put(kind(data))
        assert _as_bytes(connector.get(key)) == data

    def test_objects_are_independent(self, connector: Connector[Any]) -> None:
        first = connector.put(b"first")
        second = connector.put(b"second")
        assert first != second
        assert _as_bytes(connector.get(first)) == b"first"
        assert _as_bytes(connector.get(second)) == b"second"

    def test_get_missing_key_returns_none(self, connector: Connector[Any]) -> None:
        key = connector.put(b"gone soon")
        connector.evict(key)
        assert connector.get(key) is None
        assert connector.get_batch([key]) == [None]

    # ------------------------------------------------------------- exists / evict

    def test_exists_and_evict_agree(self, connector: Connector[Any]) -> None:
        key = connector.put(b"value")
        assert connector.exists(key)
        connector.evict(key)
        assert not connector.exists(key)
        assert connector.get(key) is None

    def test_evict_missing_key_is_fine(self, connector: Connector[Any]) -> None:
        key = connector.put(b"value")
        connector.evict(key)
        connector.evict(key)
        assert not connector.exists(key)

    def test_evict_leaves_other_keys(self, connector: Connector[Any]) -> None:
        keep = connector.put(b"keep")
        drop = connector.put(b"drop")
        connector.evict(drop)
        assert _as_bytes(connector.get(keep)) == b"keep"

    # ------------------------------------------------------------- batches

    def test_batch_ops_equal_single_ops(self, connector: Connector[Any]) -> None:
        objs = [_payload(n, seed=n) for n in (0, 10, 3, 1000, 10)]
        keys = connector.put_batch(objs)
        assert len(keys) == len(objs)
        assert len(set(keys)) == len(objs)
        assert [_as_bytes(connector.get(k)) for k in keys] == objs
        assert [_as_bytes(v) for v in connector.get_batch(keys)] == objs

    def test_get_batch_keeps_order_and_reports_missing(
        self, connector: Connector[Any]
    ) -> None:
        keys = [connector.put(bytes([i]) * (i + 1)) for i in range(5)]
        connector.evict(keys[2])
        order = [keys[4], keys[2], keys[0], keys[3], keys[1]]
        got = [_as_bytes(v) for v in connector.get_batch(order)]
        assert got == [b"\x04" * 5, None, b"\x00", b"\x03" * 4, b"\x01" * 2]

    def test_empty_batches(self, connector: Connector[Any]) -> None:
        assert connector.put_batch([]) == []
        assert connector.get_batch([]) == []

    # ------------------------------------------------------------- keys

    def test_keys_are_hashable_picklable_and_small(
        self, connector: Connector[Any]
    ) -> None:
        key = connector.put(b"k")
        assert isinstance(key, tuple)
        assert {key: 1}[key] == 1
        raw = pickle.dumps(key)
        assert len(raw) <= self.max_key_pickle_bytes
        restored = pickle.loads(raw)
        assert restored == key
        assert type(restored) is type(key)
        assert hash(restored) == hash(key)
        assert _as_bytes(connector.get(restored)) == b"k"

    def test_concurrent_puts_from_threads(self, connector: Connector[Any]) -> None:
        results: dict[int, Any] = {}

        def worker(i: int) -> None:
            results[i] = connector.put(_payload(100 + i, seed=i))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(set(results.values())) == len(threads)
        for i, key in results.items():
            assert _as_bytes(connector.get(key)) == _payload(100 + i, seed=i)

    # ------------------------------------------------------------- config / lifecycle

    def test_config_round_trip(self, connector: Connector[Any]) -> None:
        key = connector.put(b"shared?")
        clone = type(connector).from_config(connector.config())
        try:
            assert type(clone) is type(connector)
            if self.config_shares_data:
                assert _as_bytes(clone.get(key)) == b"shared?"
            other = clone.put(b"from clone")
            assert _as_bytes(clone.get(other)) == b"from clone"
            if self.config_shares_data:
                assert _as_bytes(connector.get(other)) == b"from clone"
        finally:
            # Evict before closing: closing a clone may clear a shared backend.
            clone.evict(key)
            clone.close()

    def test_context_manager_closes(self, connector: Connector[Any]) -> None:
        with mock.patch.object(connector, "close", wraps=connector.close) as close:
            with connector as entered:
                assert entered is connector
                close.assert_not_called()
            close.assert_called_once_with()

    def test_close_twice_is_harmless(self, connector: Connector[Any]) -> None:
        connector.close()
        connector.close()
        assert repr(connector)

    # ------------------------------------------------------------- deferrable

    @staticmethod
    def _deferrable(connector: Connector[Any]) -> DeferrableConnector[Any]:
        if not isinstance(connector, DeferrableConnector):
            pytest.skip(f"{type(connector).__name__} is not a DeferrableConnector")
        return connector

    def test_new_key_then_set(self, connector: Connector[Any]) -> None:
        deferrable = self._deferrable(connector)
        key = deferrable.new_key()
        assert not deferrable.exists(key)
        assert deferrable.get(key) is None
        deferrable.set(key, b"later")
        assert deferrable.exists(key)
        assert _as_bytes(deferrable.get(key)) == b"later"

    def test_set_overwrites(self, connector: Connector[Any]) -> None:
        deferrable = self._deferrable(connector)
        key = deferrable.put(b"old value")
        deferrable.set(key, bytearray(b"new"))
        assert _as_bytes(deferrable.get(key)) == b"new"

    def test_new_key_ignores_the_object(self, connector: Connector[Any]) -> None:
        # As in the reference: the object is only a hint; it is stored by set().
        deferrable = self._deferrable(connector)
        key = deferrable.new_key(b"now")
        assert not deferrable.exists(key)
        assert deferrable.get(key) is None
        deferrable.set(key, b"now")
        assert _as_bytes(deferrable.get(key)) == b"now"
        assert deferrable.new_key() != deferrable.new_key()

    # ------------------------------------------------------------- waitable

    @staticmethod
    def _waitable(connector: Connector[Any]) -> WaitableConnector[Any]:
        if not isinstance(connector, WaitableConnector):
            pytest.skip(f"{type(connector).__name__} is not a WaitableConnector")
        return connector

    def test_wait_on_existing_key(self, connector: Connector[Any]) -> None:
        waitable = self._waitable(connector)
        key = connector.put(b"here")
        assert waitable.wait(key, timeout=0)
        assert waitable.wait(key, timeout=5)

    def test_wait_times_out_on_missing_key(self, connector: Connector[Any]) -> None:
        waitable = self._waitable(connector)
        key = connector.put(b"x")
        connector.evict(key)
        assert waitable.wait(key, timeout=0) is False
        assert waitable.wait(key, timeout=0.05) is False

    def test_wait_returns_after_set_from_other_thread(
        self, connector: Connector[Any]
    ) -> None:
        waitable = self._waitable(connector)
        deferrable = self._deferrable(connector)
        key = deferrable.new_key()
        started = threading.Event()

        def setter() -> None:
            started.wait()
            deferrable.set(key, b"done")

        thread = threading.Thread(target=setter)
        thread.start()
        try:
            started.set()
            # Generous bound: only a hang (never a slow machine) should fail this.
            assert waitable.wait(key, timeout=30) is True
            assert _as_bytes(deferrable.get(key)) == b"done"
        finally:
            thread.join()

    # ------------------------------------------------------------- evicting

    @staticmethod
    def _evicting(connector: Connector[Any]) -> EvictingConnector[Any]:
        if not isinstance(connector, EvictingConnector):
            pytest.skip(f"{type(connector).__name__} is not an EvictingConnector")
        return connector

    @pytest.mark.parametrize("size", [0, 1000, _FIVE_MB])
    def test_get_evict_returns_then_removes(
        self, connector: Connector[Any], size: int
    ) -> None:
        evicting = self._evicting(connector)
        data = _payload(size, seed=3)
        key = connector.put(data)
        other = connector.put(b"stays")
        assert _as_bytes(evicting.get_evict(key)) == data
        assert not connector.exists(key)
        assert connector.get(key) is None
        assert evicting.get_evict(key) is None
        assert _as_bytes(connector.get(other)) == b"stays"

    def test_get_evict_missing_key_changes_nothing(
        self, connector: Connector[Any]
    ) -> None:
        evicting = self._evicting(connector)
        key = connector.put(b"x")
        connector.evict(key)
        assert evicting.get_evict(key) is None
        assert not connector.exists(key)
