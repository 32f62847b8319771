"""Unit tests of proxystore.connectors.local."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Iterator

import pytest

from proxystore.connectors.local import LocalConnector, LocalKey
from proxystore.connectors.protocols import (
    Connector,
    DeferrableConnector,
    EvictingConnector,
    WaitableConnector,
)
from tests.conformance.connector_suite import ConnectorSuite

# Static proof that LocalConnector satisfies every contract (checked by mypy).
_connector: Connector[LocalKey] = LocalConnector()
_deferrable: DeferrableConnector[LocalKey] = LocalConnector()
_waitable: WaitableConnector[LocalKey] = LocalConnector()
_evicting: EvictingConnector[LocalKey] = LocalConnector()


class TestLocalConformance(ConnectorSuite):
    """Shared data through config() needs include_data_in_config=True."""

    @pytest.fixture
    def connector(self) -> Iterator[LocalConnector]:
        with LocalConnector(include_data_in_config=True) as connector:
            yield connector


class TestLocalConformanceWithoutData(ConnectorSuite):
    config_shares_data = False

    @pytest.fixture
    def connector(self) -> Iterator[LocalConnector]:
        with LocalConnector() as connector:
            yield connector


def test_repr() -> None:
    assert repr(LocalConnector()) == "LocalConnector()"


def test_config_without_data_is_plain_and_rebuilds_empty() -> None:
    connector = LocalConnector()
    key = connector.put(b"x")
    config = connector.config()
    assert config == {"include_data_in_config": False}
    clone = LocalConnector.from_config(config)
    assert clone.get(key) is None


def test_config_with_data_shares_the_dict() -> None:
    data: dict[LocalKey, bytes] = {}
    connector = LocalConnector(data, include_data_in_config=True)
    key = connector.put(b"x")
    assert data == {key: b"x"}
    assert connector.config()["store_dict"] is data


def test_store_dict_is_shared_not_copied() -> None:
    data: dict[LocalKey, bytes] = {}
    first = LocalConnector(data)
    second = LocalConnector(data)
    key = first.put(b"shared")
    assert second.get(key) == b"shared"


def test_from_config_rejects_unknown_option() -> None:
    with pytest.raises(TypeError):
        LocalConnector.from_config({"bogus": 1})


def test_bytes_stored_without_copy() -> None:
    connector = LocalConnector()
    data = b"z" * 1000
    assert connector.get(connector.put(data)) is data


def test_mutable_input_is_copied() -> None:
    connector = LocalConnector()
    buffer = bytearray(b"abc")
    key = connector.put(buffer)
    buffer[0] = ord("X")
    assert connector.get(key) == b"abc"
    assert type(connector.get(key)) is bytes


def test_key_is_a_uuid_string() -> None:
    key = LocalConnector().new_key()
    assert isinstance(key.id, str)
    assert len(key.id) == 36
    assert pickle.loads(pickle.dumps(key)) == key


def test_wait_sees_write_through_another_connector_sharing_the_dict() -> None:
    data: dict[LocalKey, bytes] = {}
    waiter = LocalConnector(data)
    writer = LocalConnector(data)
    key = waiter.new_key()
    thread = threading.Timer(0.01, writer.set, args=(key, b"v"))
    thread.start()
    try:
        assert waiter.wait(key, timeout=30)
    finally:
        thread.join()


def test_wait_without_timeout_returns_after_set() -> None:
    connector = LocalConnector()
    key = connector.new_key()
    thread = threading.Timer(0.01, connector.set, args=(key, b"v"))
    thread.start()
    try:
        assert connector.wait(key)
    finally:
        thread.join()


def test_put_parts_keeps_immutable_bytes_by_reference() -> None:
    connector = LocalConnector()
    big = bytes(1_000_000)
    key = connector.put_parts([b"\x01BS", big])
    parts = connector.get_parts(key)
    assert parts is not None
    assert parts[1] is big  # no copy on the way in
    assert connector.get(key) == b"\x01BS" + big  # plain readers see joined bytes
    assert connector.get_batch([key]) == [b"\x01BS" + big]
    single = connector.put_parts([b"abc"])
    assert connector.get(single) == b"abc"
    assert connector.get_parts(single) == (b"abc",)
    plain = connector.put(b"xyz")
    assert connector.get_parts(plain) == (b"xyz",)
    assert connector.get_evict(key) == b"\x01BS" + big
    assert connector.get_parts(key) is None
    assert connector.get_parts(single, evict=True) == (b"abc",)
    assert not connector.exists(single)


def test_put_parts_copies_mutable_parts() -> None:
    connector = LocalConnector()
    mutable = bytearray(b"before")
    key = connector.put_parts([b"\x01BS", memoryview(mutable)])
    mutable[:] = b"AFTER!"
    assert connector.get(key) == b"\x01BSbefore"
    assert connector.get_parts(key) == (b"\x01BSbefore",)


def test_parts_survive_a_config_round_trip() -> None:
    connector = LocalConnector(include_data_in_config=True)
    key = connector.put_parts([b"\x01BS", b"data"])
    clone = LocalConnector.from_config(pickle.loads(pickle.dumps(connector.config())))
    assert clone.get(key) == b"\x01BSdata"
