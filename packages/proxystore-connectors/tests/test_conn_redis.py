"""Unit tests of proxystore.connectors.redis that need no server.

Real-server behaviour (the conformance suite, clusters, restarts) is tested in
tests/integration/test_redis_*.py.
"""

from __future__ import annotations

import array
import pickle
import socket
from collections.abc import Iterator

import pytest
import redis.exceptions

from proxystore.connectors.exceptions import (
    ConnectorConnectionError,
    ConnectorError,
    ConnectorTimeoutError,
)
from proxystore.connectors.protocols import (
    Connector,
    DeferrableConnector,
    EvictingConnector,
    WaitableConnector,
)
from proxystore.connectors.redis import (
    RedisConnector,
    RedisKey,
    _as_payload,
    _ErrorBoundary,
)

# Static proof that RedisConnector satisfies every contract (checked by mypy); the
# constructor does not connect, so this needs no server.
_connector: Connector[RedisKey] = RedisConnector("localhost", 6379)
_deferrable: DeferrableConnector[RedisKey] = RedisConnector("localhost", 6379)
_waitable: WaitableConnector[RedisKey] = RedisConnector("localhost", 6379)
_evicting: EvictingConnector[RedisKey] = RedisConnector("localhost", 6379)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections (backlog) but never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def test_constructor_does_not_connect(closed_port: int) -> None:
    connector = RedisConnector("127.0.0.1", closed_port)
    assert (
        repr(connector) == f"RedisConnector(hostname='127.0.0.1', port={closed_port})"
    )
    connector.close()  # nothing to close, nothing raised
    connector.close()


def test_unreachable_server_raises_connection_error_naming_address(
    closed_port: int,
) -> None:
    with RedisConnector("127.0.0.1", closed_port) as connector:
        for operation in (
            lambda: connector.put(b"x"),
            lambda: connector.get(RedisKey("k")),
            lambda: connector.get_evict(RedisKey("k")),
            lambda: connector.exists(RedisKey("k")),
            lambda: connector.get_batch([RedisKey("k")]),
            lambda: connector.wait(RedisKey("k"), timeout=1),
        ):
            with pytest.raises(ConnectorConnectionError) as info:
                operation()
            assert info.value.address == f"127.0.0.1:{closed_port}"
            assert f"127.0.0.1:{closed_port}" in str(info.value)
            assert isinstance(info.value.__cause__, redis.exceptions.ConnectionError)


def test_unreachable_cluster_raises_connection_error(closed_port: int) -> None:
    connector = RedisConnector("127.0.0.1", closed_port, clustered=True)
    with pytest.raises(ConnectorConnectionError, match=f"127.0.0.1:{closed_port}"):
        connector.put(b"x")
    connector.close()


def test_silent_server_raises_timeout_error(silent_port: int) -> None:
    with (
        RedisConnector("127.0.0.1", silent_port, socket_timeout=0.1) as connector,
        pytest.raises(ConnectorTimeoutError, match="did not answer"),
    ):
        connector.exists(RedisKey("k"))


def test_clearing_an_unreachable_server_raises(closed_port: int) -> None:
    connector = RedisConnector("127.0.0.1", closed_port, clear=True)
    with pytest.raises(ConnectorConnectionError):
        connector.close()
    connector.close(clear=False)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (redis.exceptions.TimeoutError("slow"), ConnectorTimeoutError),
        (redis.exceptions.ConnectionError("refused"), ConnectorConnectionError),
        (redis.exceptions.ClusterDownError("down"), ConnectorConnectionError),
        (redis.exceptions.ResponseError("WRONGTYPE"), ConnectorError),
        (redis.exceptions.DataError("bad value"), ConnectorError),
        (
            redis.exceptions.RedisClusterException("Redis Cluster cannot be connected"),
            ConnectorConnectionError,
        ),
        (redis.exceptions.RedisClusterException("no slots"), ConnectorError),
    ],
)
def test_error_boundary_translates(error: Exception, expected: type[Exception]) -> None:
    with pytest.raises(expected) as info, _ErrorBoundary("h:1", "GET"):
        raise error
    assert type(info.value) is expected
    assert info.value.__cause__ is error
    assert "h:1" in str(info.value)
    assert "GET" in str(info.value)


def test_error_boundary_lets_other_errors_through() -> None:
    with pytest.raises(KeyError), _ErrorBoundary("h:1", "GET"):
        raise KeyError("not ours")


def test_config_round_trip_keeps_client_options() -> None:
    connector = RedisConnector(
        "example", 1234, True, clustered=True, socket_timeout=3.0
    )
    config = connector.config()
    assert config == {
        "hostname": "example",
        "port": 1234,
        "clear": True,
        "clustered": True,
        "socket_timeout": 3.0,
    }
    clone = RedisConnector.from_config(config)
    assert clone.config() == config
    # The reference release's config is accepted too.
    legacy = RedisConnector.from_config({"hostname": "h", "port": 1, "clear": False})
    assert legacy.config()["clustered"] is False


def test_pickles_as_config_without_connection() -> None:
    connector = RedisConnector("example", 1234, socket_timeout=2.5)
    clone = pickle.loads(pickle.dumps(connector))
    assert type(clone) is RedisConnector
    assert clone.config() == connector.config()
    assert clone._client is None


def test_decode_responses_is_rejected() -> None:
    with pytest.raises(ValueError, match="decode_responses"):
        RedisConnector("h", 1, decode_responses=True)
    assert (
        "decode_responses"
        not in RedisConnector("h", 1, decode_responses=False).config()
    )


def test_payload_views_count_bytes_not_items() -> None:
    ints = array.array("i", [1, 2, 3])
    payload = _as_payload(memoryview(ints))
    assert len(payload) == 3 * ints.itemsize
    assert bytes(payload) == ints.tobytes()
    data = bytearray(b"abc")
    assert isinstance(_as_payload(data), memoryview)
    assert bytes(_as_payload(data)) == b"abc"
    strided = memoryview(b"abcdef")[::2]
    assert bytes(_as_payload(strided)) == b"ace"
    raw = b"xyz"
    assert _as_payload(raw) is raw


def test_keys_are_small_plain_tuples() -> None:
    key = RedisKey("0" * 32)
    assert pickle.loads(pickle.dumps(key)) == key
    assert key.redis_key == "0" * 32


def test_direct_secrets_stay_out_of_config_and_pickle() -> None:
    connector = RedisConnector(
        "h",
        1,
        password="pw-direct-123",
        username="acl-user-xyz",
        ssl_password="keypass-456",
        password_env="REDIS_PW",
    )
    config = connector.config()
    assert config == {
        "hostname": "h",
        "port": 1,
        "clear": False,
        "clustered": False,
        "password_env": "REDIS_PW",
    }
    blob = pickle.dumps(connector)
    for secret in (b"pw-direct-123", b"acl-user-xyz", b"keypass-456"):
        assert secret not in blob
        assert secret not in repr(connector).encode()


def test_secret_references_resolve_in_the_connecting_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import redis

    from proxystore.utils.credentials import CredentialNotFoundError

    seen: dict[str, object] = {}

    class FakeRedis:
        def __init__(self, **kwargs: object) -> None:
            seen.update(kwargs)
            self.connection_pool = type("P", (), {"connection_kwargs": {}})()

        def close(self) -> None:
            pass

    monkeypatch.setattr(redis, "Redis", FakeRedis)
    monkeypatch.delenv("REDIS_PW_T", raising=False)
    connector = RedisConnector("h", 1, password_env="REDIS_PW_T")
    with pytest.raises(CredentialNotFoundError, match="REDIS_PW_T"):
        connector._connect()
    monkeypatch.setenv("REDIS_PW_T", "from-env")
    connector._connect()
    assert seen.pop("password") == "from-env"
    assert "password_env" not in seen
    # A secret passed directly wins over the reference, in this process only.
    RedisConnector("h", 1, password="direct", password_env="REDIS_PW_T")._connect()
    assert seen.pop("password") == "direct"
    with pytest.raises(ValueError, match="password_env"):
        RedisConnector("h", 1, password_env="")


def test_connect_and_reconnect_are_logged_at_info(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="proxystore.connectors.redis")
    connector = RedisConnector("127.0.0.1", 1)
    assert connector._redis is connector._redis  # one client (no I/O yet)
    connector.close()
    assert connector._redis is not None  # used after close: a new client
    connector.close()
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert lines == [
        "RedisConnector connecting to 127.0.0.1:1",
        "RedisConnector reconnecting to 127.0.0.1:1",
    ]
