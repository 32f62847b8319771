"""The endpoint client as the reference's users call it: a `requests.Session`, and
`requests`' exceptions caught around every call."""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests

from proxystore.endpoint import client

# The fixtures come from conftest.py (a RunningEndpoint there).
RunningEndpoint = Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize("use_session", ["requests", "ours", "none"])
def test_client_calls_with_each_kind_of_session(
    solo_endpoint: RunningEndpoint, use_session: str
) -> None:
    session: client.Session | requests.Session | None = None
    if use_session == "requests":
        session = requests.Session()
    elif use_session == "ours":
        session = client.Session()
    address, key = solo_endpoint.address, str(uuid.uuid4())
    try:
        client.put(address, key, b"value", session=session)
        assert client.exists(address, key, session=session)
        assert client.get(address, key, session=session) == b"value"
        client.put(address, key, bytearray(b"v2"), None, session)
        assert client.get(address, key, None, session) == b"v2"
        client.put(address, key, memoryview(b"v3"), session=session)
        assert client.get(address, key, session=session) == b"v3"
        client.evict(address, key, session=session)
        assert not client.exists(address, key, session=session)
        assert client.get(address, key, session=session) is None
    finally:
        if session is not None:
            session.close()


@pytest.mark.parametrize("use_requests", [True, False])
def test_error_answers_are_requests_exceptions(
    start_endpoint: Callable[..., RunningEndpoint], use_requests: bool
) -> None:
    endpoint = start_endpoint(max_object_size=10)
    with requests.Session() as rs:
        session = rs if use_requests else None
        with pytest.raises(requests.exceptions.RequestException) as info:
            client.put(endpoint.address, "k", b"x" * 100, session=session)
    assert isinstance(info.value, client.RequestException)
    assert not isinstance(info.value, requests.exceptions.ConnectionError)
    assert info.value.status_code == 413
    assert info.value.response is not None
    assert info.value.response.status_code == 413
    assert "Endpoint returned HTTP error code 413" in str(info.value)


@pytest.mark.parametrize("use_requests", [True, False])
def test_unreachable_endpoint_is_a_requests_connection_error(
    use_requests: bool,
) -> None:
    address = f"http://127.0.0.1:{free_port()}"
    with requests.Session() as rs:
        session = rs if use_requests else None
        with pytest.raises(requests.exceptions.ConnectionError) as info:
            client.exists(address, "k", session=session)
    assert isinstance(info.value, client.EndpointConnectionError)
    assert isinstance(info.value, ConnectionError)
    assert f"Unable to connect to endpoint at {address}" in str(info.value)


def test_client_import_leaves_requests_unloaded() -> None:
    # The fast path stays free of `requests`' import cost.
    code = (
        "import sys, proxystore.endpoint.client as c;"
        "assert 'requests' not in sys.modules;"
        "import requests;"
        "assert issubclass(c.RequestException, requests.exceptions.RequestException)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
