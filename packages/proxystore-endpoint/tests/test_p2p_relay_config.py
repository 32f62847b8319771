"""Relay configuration files and authenticators."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import pytest

from proxystore.p2p.relay import authenticate
from proxystore.p2p.relay.authenticate import (
    Authenticator,
    NullAuthenticator,
    NullUser,
    TokenAuthenticator,
    TokenUser,
    get_authenticator,
    get_token_from_headers,
)
from proxystore.p2p.relay.config import (
    MAX_MESSAGE_BYTES,
    RelayAuthConfig,
    RelayLoggingConfig,
    RelayServingConfig,
)
from proxystore.p2p.relay.exceptions import ForbiddenError, UnauthorizedError


def test_defaults_match_the_reference() -> None:
    config = RelayServingConfig()
    assert (config.host, config.port, config.certfile, config.keyfile) == (
        None,
        8700,
        None,
        None,
    )
    assert config.auth == RelayAuthConfig()
    assert config.logging == RelayLoggingConfig()
    assert config.logging.default_level == logging.INFO
    # Deliberately not the reference's (no limit): a relay message is a few KiB.
    assert config.max_message_bytes == MAX_MESSAGE_BYTES


def test_from_toml_reads_every_table(tmp_path: Path) -> None:
    path = tmp_path / "relay.toml"
    path.write_text(
        'host = "127.0.0.1"\nport = 9000\nmax_message_bytes = 1024\n'
        '[auth]\nmethod = "token"\n[auth.kwargs]\ntoken = "s3cret"\n'
        '[logging]\nlog_dir = "/tmp/x"\ndefault_level = "DEBUG"\n'
        "current_client_interval = 5\n"
    )
    config = RelayServingConfig.from_toml(path)
    assert config.host == "127.0.0.1"
    assert config.port == 9000
    assert config.max_message_bytes == 1024
    assert config.auth.method == "token"
    assert config.auth.kwargs == {"token": "s3cret"}
    assert config.logging.log_dir == "/tmp/x"
    assert config.logging.default_level == "DEBUG"
    assert config.logging.current_client_interval == 5
    assert "s3cret" not in repr(config)


def test_unknown_keys_are_ignored_outside_auth(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "relay.toml"
    path.write_text("port = 1\nfoo = 2\n[logging]\ndefault_log_level = 'INFO'\n")
    with caplog.at_level(logging.WARNING):
        config = RelayServingConfig.from_toml(path)
    assert config.port == 1
    assert "foo" in caplog.text
    assert "default_log_level" in caplog.text
    path.write_text("[auth]\nmethd = 'token'\n")
    with pytest.raises(ValueError, match="methd"):
        RelayServingConfig.from_toml(path)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("port = ", ValueError),
        ('port = "8700"', TypeError),
        ("[auth]\nmethod = 'kerberos'", TypeError),
    ],
)
def test_bad_files_raise(tmp_path: Path, text: str, error: type[Exception]) -> None:
    path = tmp_path / "relay.toml"
    path.write_text(text)
    with pytest.raises(error):
        RelayServingConfig.from_toml(path)


def test_null_authenticator_admits_everyone_as_one_user() -> None:
    auth = NullAuthenticator()
    assert isinstance(auth, Authenticator)
    assert auth.authenticate_user({}) == NullUser()
    assert NullUser() != TokenUser()
    assert hash(NullUser()) == hash(NullUser())


def test_token_authenticator() -> None:
    auth = TokenAuthenticator("abc")
    assert isinstance(auth, Authenticator)
    assert auth.authenticate_user({"Authorization": "Bearer abc"}) == TokenUser()
    assert auth.authenticate_user({"authorization": "Bearer abc"}) == TokenUser()
    with pytest.raises(ForbiddenError):
        auth.authenticate_user({"Authorization": "Bearer abd"})
    with pytest.raises(UnauthorizedError, match="missing"):
        auth.authenticate_user({})
    assert "abc" not in repr(auth)
    with pytest.raises(ValueError, match="empty"):
        TokenAuthenticator("")


@pytest.mark.parametrize(
    "value", ["abc", "Basic abc", "Bearer", "Bearer a b", "Bearer "]
)
def test_malformed_authorization_headers(value: str) -> None:
    with pytest.raises(UnauthorizedError, match="Bearer"):
        get_token_from_headers({"Authorization": value})


def test_get_authenticator() -> None:
    assert isinstance(get_authenticator(RelayAuthConfig()), NullAuthenticator)
    token = get_authenticator(RelayAuthConfig("token", {"token": "t"}))
    assert isinstance(token, TokenAuthenticator)
    with pytest.raises(ValueError, match="'token'"):
        get_authenticator(RelayAuthConfig("token", {"secret": "t"}))
    bogus = RelayAuthConfig()
    bogus.method = "bogus"  # type: ignore[assignment]
    with pytest.raises(ValueError, match="bogus"):
        get_authenticator(bogus)


def test_globus_names_resolve_lazily() -> None:
    available = importlib.util.find_spec("proxystore.globus") is not None
    assert ("GlobusAuthenticator" in authenticate.__all__) is available
    if (
        not available
        or importlib.util.find_spec("proxystore.globus.relay_auth") is None
    ):
        with pytest.raises(AttributeError, match="Globus member"):
            authenticate.GlobusAuthenticator  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute"):
        authenticate.Nothing  # noqa: B018


def test_relay_token_by_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PROXYSTORE_HOME", str(tmp_path))
    monkeypatch.setenv("RELAY_TEST_TOKEN", "from-env")
    creds = tmp_path / "credentials.toml"
    creds.write_text('relay-token = "from-file"\n')
    creds.chmod(0o600)
    headers = {"Authorization": "Bearer from-env"}
    by_env = get_authenticator(
        RelayAuthConfig("token", {"token_env": "RELAY_TEST_TOKEN"})
    )
    assert by_env.authenticate_user(headers) == TokenUser()
    by_file = get_authenticator(
        RelayAuthConfig("token", {"token_credential": "relay-token"})
    )
    with pytest.raises(ForbiddenError):
        by_file.authenticate_user(headers)
    assert (
        by_file.authenticate_user({"Authorization": "Bearer from-file"}) == TokenUser()
    )
    assert "written in the configuration" not in caplog.text
    with caplog.at_level(logging.WARNING):
        get_authenticator(RelayAuthConfig("token", {"token": "plain"}))
    assert "written in the configuration" in caplog.text
    assert "plain" not in caplog.text


def test_unresolvable_or_exposed_relay_secrets_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROXYSTORE_HOME", str(tmp_path))
    monkeypatch.delenv("RELAY_TEST_MISSING", raising=False)
    with pytest.raises(ValueError, match="RELAY_TEST_MISSING"):
        get_authenticator(RelayAuthConfig("token", {"token_env": "RELAY_TEST_MISSING"}))
    creds = tmp_path / "credentials.toml"
    creds.write_text('relay-token = "leaky"\n')
    creds.chmod(0o644)
    with pytest.raises(ValueError, match="chmod 600") as info:
        get_authenticator(RelayAuthConfig("token", {"token_credential": "relay-token"}))
    assert "leaky" not in str(info.value)


def test_from_toml_reads_the_identity_limits(tmp_path: Path) -> None:
    path = tmp_path / "relay.toml"
    path.write_text(
        "heartbeat_seconds = 4.0\nprobe_seconds = 0.5\nmax_registrations = 2\n"
    )
    config = RelayServingConfig.from_toml(path)
    assert (
        config.heartbeat_seconds,
        config.probe_seconds,
        config.max_registrations,
    ) == (4.0, 0.5, 2)
