"""EndpointConnector and the blocking client against a running endpoint."""

from __future__ import annotations

import pickle
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from proxystore.connectors.endpoint import (
    EndpointConnector,
    EndpointConnectorError,
    EndpointKey,
)
from proxystore.connectors.exceptions import ConnectorError
from proxystore.connectors.protocols import Connector, DeferrableConnector
from proxystore.endpoint import client
from proxystore.store import Store

# The fixtures come from conftest.py (a RunningEndpoint there).
RunningEndpoint = Any


def _connector(ep: RunningEndpoint) -> EndpointConnector:
    return EndpointConnector([ep.config.uuid], proxystore_dir=str(ep.home))


def test_put_get_exists_evict(solo_endpoint: RunningEndpoint) -> None:
    with _connector(solo_endpoint) as connector:
        key = connector.put(b"data")
        assert key.endpoint_id == solo_endpoint.config.uuid
        assert connector.exists(key)
        assert connector.get(key) == b"data"
        connector.evict(key)
        assert not connector.exists(key)
        assert connector.get(key) is None
        keys = connector.put_batch([b"a", b"b"])
        assert connector.get_batch([*keys, key]) == [b"a", b"b", None]


def test_protocols(solo_endpoint: RunningEndpoint) -> None:
    with _connector(solo_endpoint) as connector:
        assert isinstance(connector, Connector)
        assert isinstance(connector, DeferrableConnector)
        key = connector.new_key()
        assert connector.get(key) is None
        connector.set(key, b"later")
        assert connector.get(key) == b"later"
        assert connector.get(connector.new_key(b"ignored")) is None  # as the reference
        assert "connected to" in repr(connector)


def test_config_round_trip(solo_endpoint: RunningEndpoint) -> None:
    with _connector(solo_endpoint) as connector:
        config = connector.config()
        assert config == {
            "endpoints": [solo_endpoint.config.uuid],
            "proxystore_dir": str(solo_endpoint.home),
        }
        key = connector.put(b"shared")
        with EndpointConnector.from_config(config) as other:
            assert other.get(key) == b"shared"
        assert len(pickle.dumps(key)) < 200


def test_first_running_endpoint_is_used(
    start_endpoint: Callable[..., RunningEndpoint],
) -> None:
    first = start_endpoint("first")
    second = start_endpoint("second")
    first.stop()
    unknown = uuid.uuid4()
    with EndpointConnector(
        [unknown, first.config.uuid, second.config.uuid],
        proxystore_dir=str(second.home),
    ) as connector:
        assert str(connector.endpoint_uuid) == second.config.uuid


def test_no_endpoints_is_value_error() -> None:
    with pytest.raises(ValueError, match="At least one"):
        EndpointConnector([])


def test_endpoint_name_instead_of_uuid_says_what_fits(tmp_path: Any) -> None:
    # A newcomer passes the endpoint's name: the error says UUIDs are wanted and
    # where to find them (not a bare "badly formed hexadecimal UUID string").
    with pytest.raises(ValueError, match="takes endpoint UUIDs") as info:
        EndpointConnector(["site-a"], proxystore_dir=str(tmp_path))
    message = str(info.value)
    assert "'site-a'" in message
    assert "endpoint UUIDs" in message
    assert "proxystore-endpoint list" in message


def test_no_running_endpoint_names_them(tmp_path: Any) -> None:
    wanted = uuid.uuid4()
    with pytest.raises(EndpointConnectorError, match=str(wanted)):
        EndpointConnector([wanted], proxystore_dir=str(tmp_path))


def test_stopped_endpoint_raises_typed_error(solo_endpoint: RunningEndpoint) -> None:
    connector = _connector(solo_endpoint)
    key = connector.put(b"x")
    solo_endpoint.stop()
    with pytest.raises(EndpointConnectorError, match=solo_endpoint.config.uuid) as info:
        connector.get(key)
    assert isinstance(info.value, ConnectorError)
    assert "not reachable" in str(info.value)
    for op in (connector.exists, connector.evict):
        with pytest.raises(EndpointConnectorError, match="stopped"):
            op(key)
    with pytest.raises(EndpointConnectorError):
        connector.put(b"y")
    connector.close()
    connector.close()


def test_oversized_put_raises_typed_error(
    start_endpoint: Callable[..., RunningEndpoint],
) -> None:
    ep = start_endpoint(max_object_size=100)
    with (
        _connector(ep) as connector,
        pytest.raises(EndpointConnectorError, match="413"),
    ):
        connector.put(b"x" * 101)


def test_store_round_trip_and_threads(solo_endpoint: RunningEndpoint) -> None:
    with Store("endpoint-unit", _connector(solo_endpoint), register=False) as store:
        proxy = store.proxy({"a": [1, 2, 3]})
        assert proxy["a"] == [1, 2, 3]
        results: list[object] = []

        def work(i: int) -> None:
            key = store.put(list(range(i)))
            results.append(store.get(key))

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(len(r) for r in results) == list(range(8))  # type: ignore[arg-type]


def test_client_functions(solo_endpoint: RunningEndpoint) -> None:
    address = solo_endpoint.address
    client.put(address, "k", b"v")
    assert client.get(address, "k") == b"v"
    assert client.exists(address, "k", solo_endpoint.config.uuid)
    client.evict(address, "k")
    assert client.get(address, "k") is None
    with client.Session() as session:
        for i in range(5):
            client.put(address, f"k{i}", bytes([i]), session=session)
        assert client.get(address, "k3", session=session) == b"\x03"


def test_client_error_status(solo_endpoint: RunningEndpoint) -> None:
    with pytest.raises(client.RequestException) as info:
        client.get(solo_endpoint.address, "k", endpoint="nope")
    assert info.value.status_code == 400
    assert "not a valid UUID" in info.value.text


def test_client_connection_error() -> None:
    with pytest.raises(client.EndpointConnectionError, match="Unable to connect"):
        client.get("http://127.0.0.1:1", "k")


def test_session_reconnects_after_server_restart(
    start_endpoint: Callable[..., RunningEndpoint],
) -> None:
    ep = start_endpoint()
    with client.Session() as session:
        client.put(ep.address, "k", b"1", session=session)
        ep.stop()
        with pytest.raises(client.EndpointConnectionError):
            client.get(ep.address, "k", session=session)


def test_keys_are_plain_tuples() -> None:
    key = EndpointKey("a", None)
    assert key == ("a", None)


def test_large_oversized_put_reports_413(
    start_endpoint: Callable[..., RunningEndpoint],
) -> None:
    ep = start_endpoint(max_object_size=1000)
    with pytest.raises(client.RequestException) as info:
        client.put(ep.address, "big", b"x" * 20_000_000)
    assert info.value.status_code == 413
    assert info.value.error == "ObjectSizeExceededError"
