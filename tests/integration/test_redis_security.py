"""Redis with AUTH, an ACL user and TLS; secrets only by reference in proxies."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import pathlib
import pickle
import ssl
from typing import Any

import pytest
import redis

from proxystore.connectors.exceptions import ConnectorConnectionError, ConnectorError
from proxystore.connectors.redis import RedisConnector, RedisKey
from proxystore.serialize import PayloadAuthenticationError
from proxystore.store import Store
from proxystore.store.utils import get_key
from proxystore.stream.events import NewObjectKeyEvent, event_to_bytes
from proxystore.utils.credentials import CREDENTIALS_FILENAME
from tests.integration.harness.secure_redis import SecureRedis

PW_VAR = "PS_IT_REDIS_PASSWORD"
KEY_VAR = "PS_IT_STORE_HMAC"


@pytest.fixture
def home(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, secure_redis: SecureRedis
) -> pathlib.Path:
    """A proxystore home whose 0600 credentials file holds the ACL user's secrets."""
    monkeypatch.setenv("PROXYSTORE_HOME", str(tmp_path))
    path = tmp_path / CREDENTIALS_FILENAME
    path.write_text(
        f'acl-user = "{secure_redis.user}"\n'
        f'acl-password = "{secure_redis.user_password}"\n'
        f'client-key = "{secure_redis.files.client_key}"\n'
    )
    path.chmod(0o600)
    return tmp_path


@pytest.fixture
def password_env(monkeypatch: pytest.MonkeyPatch, secure_redis: SecureRedis) -> str:
    monkeypatch.setenv(PW_VAR, secure_redis.password)
    return PW_VAR


def _round_trip(connector: RedisConnector) -> None:
    with connector:
        key = connector.put(b"payload")
        assert connector.get(key) == b"payload"
        connector.evict(key)


def test_requirepass_by_environment_reference(
    secure_redis: SecureRedis, password_env: str
) -> None:
    host, port = secure_redis.plain
    _round_trip(RedisConnector(host, port, password_env=password_env))
    with (
        pytest.raises(ConnectorError, match=r"(?i)auth"),
        RedisConnector(host, port) as anonymous,
    ):
        anonymous.put(b"x")
    with (
        pytest.raises(ConnectorError, match=r"(?i)(invalid|wrong).*password"),
        RedisConnector(host, port, password="not-the-password") as wrong,
    ):
        wrong.put(b"x")


def test_acl_user_from_credentials_file(
    secure_redis: SecureRedis, home: pathlib.Path
) -> None:
    host, port = secure_redis.plain
    connector = RedisConnector(
        host, port, username_credential="acl-user", password_credential="acl-password"
    )
    assert connector.config()["username_credential"] == "acl-user"
    _round_trip(connector)
    check = RedisConnector(
        host, port, username_credential="acl-user", password_credential="acl-password"
    )
    with check:
        whoami = check._redis.acl_whoami()
    assert whoami in (secure_redis.user, secure_redis.user.encode())


def test_tls_with_server_verification(
    secure_redis: SecureRedis, password_env: str
) -> None:
    host, port = secure_redis.tls
    ca = str(secure_redis.files.ca)
    _round_trip(
        RedisConnector(host, port, ssl=True, ssl_ca_certs=ca, password_env=password_env)
    )
    # Plain text against the TLS port: the server never answers a command.
    with (
        pytest.raises(ConnectorConnectionError, match=f"{host}:{port}"),
        RedisConnector(
            host, port, password_env=password_env, socket_timeout=2
        ) as plain,
    ):
        plain.put(b"x")


def test_tls_rejects_an_unknown_ca(
    secure_redis: SecureRedis, password_env: str, tmp_path: pathlib.Path
) -> None:
    from tests.integration.harness.secure_redis import make_tls_files

    other = make_tls_files(tmp_path)
    host, port = secure_redis.tls
    with (
        pytest.raises(ConnectorConnectionError, match=r"(?i)certificate"),
        RedisConnector(
            host, port, ssl=True, ssl_ca_certs=str(other.ca), password_env=password_env
        ) as connector,
    ):
        connector.put(b"x")


def _mutual_tls(server: SecureRedis, **options: Any) -> RedisConnector:
    host, port = server.tls
    return RedisConnector(
        host,
        port,
        ssl=True,
        ssl_ca_certs=str(server.files.ca),
        ssl_certfile=str(server.files.client_cert),
        ssl_keyfile_credential="client-key",
        ssl_cert_reqs="required",
        **options,
    )


def test_mutual_tls_key_path_by_reference(
    secure_redis: SecureRedis, password_env: str, home: pathlib.Path
) -> None:
    files = secure_redis.files
    connector = _mutual_tls(secure_redis, password_env=password_env)
    assert str(files.client_key) not in repr(connector.config())
    _round_trip(connector)
    assert ssl.OPENSSL_VERSION  # the client really spoke TLS (ssl importable)


# ---------------------------------------------------------------- no secret inside
def _secrets(server: SecureRedis) -> list[bytes]:
    return [
        server.password.encode(),
        server.user_password.encode(),
        str(server.files.client_key).encode(),
    ]


def _resolve_in_child(proxy: Any) -> list[int]:
    """Runs in a spawned interpreter: the password comes from its environment."""
    return list(proxy)


def test_no_secret_in_proxy_or_stream_event(
    secure_redis: SecureRedis,
    password_env: str,
    home: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(KEY_VAR, "hmac-key-material-" + os.urandom(8).hex())
    connector = _mutual_tls(
        secure_redis,
        # Passed directly: used here only. The references are for other processes.
        ssl_keyfile=str(secure_redis.files.client_key),
        password=secure_redis.password,
        password_env=password_env,
    )
    with Store(
        "secure-redis-store", connector, register=True, auth_key_id=f"env:{KEY_VAR}"
    ) as store:
        proxy = store.proxy([1, 2, 3])
        event = NewObjectKeyEvent.from_key(
            get_key(proxy),
            evict=False,
            metadata={},
            store_config=store.config(),
            topic="t",
        )
        blobs = {
            "proxy": pickle.dumps(proxy),
            "config": pickle.dumps(store.config()),
            "event": event_to_bytes(event),
            "repr": repr(store).encode(),
        }
        forbidden = [*_secrets(secure_redis), os.environ[KEY_VAR].encode()]
        for where, blob in blobs.items():
            for secret in forbidden:
                assert secret not in blob, f"secret found in the {where}"
        assert PW_VAR.encode() in blobs["proxy"]  # the reference does travel
        # A spawned consumer resolves the references in its own environment.
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
            assert pool.submit(_resolve_in_child, proxy).result() == [1, 2, 3]


def test_tampered_value_in_redis_is_rejected(
    secure_redis: SecureRedis, password_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_VAR, "another-key")
    host, port = secure_redis.plain
    connector = RedisConnector(host, port, password_env=password_env)
    with Store(
        "signed-redis", connector, auth_key_id=f"env:{KEY_VAR}", cache_size=0
    ) as store:
        key = store.put({"x": 1})
        assert store.get(key) == {"x": 1}
        raw = redis.Redis(host=host, port=port, password=secure_redis.password)
        original: bytes
        try:
            name = RedisKey(*key).redis_key
            original = raw.get(name)  # type: ignore[assignment]
            value = bytearray(original)
            value[-1] ^= 1
            raw.set(name, bytes(value))
        finally:
            raw.close()
        with pytest.raises(PayloadAuthenticationError):
            store.get(key)
