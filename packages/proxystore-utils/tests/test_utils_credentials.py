"""Secrets by reference: environment variables and the 0600 credentials file."""

from __future__ import annotations

import os
import pathlib

import pytest

from proxystore.utils import credentials
from proxystore.utils.credentials import (
    CredentialError,
    CredentialNotFoundError,
    InsecureCredentialsFileError,
    resolve_secret,
    resolve_secret_bytes,
    resolve_secret_options,
    split_secret_options,
)


@pytest.fixture
def home(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    monkeypatch.setenv("PROXYSTORE_HOME", str(tmp_path))
    return tmp_path


def _write(home: pathlib.Path, text: str, mode: int = 0o600) -> pathlib.Path:
    path = home / credentials.CREDENTIALS_FILENAME
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_env_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PS_TEST_SECRET", "abc")
    assert resolve_secret("env:PS_TEST_SECRET") == "abc"
    monkeypatch.delenv("PS_TEST_SECRET")
    with pytest.raises(CredentialNotFoundError, match="PS_TEST_SECRET") as info:
        resolve_secret("env:PS_TEST_SECRET")
    assert isinstance(info.value, KeyError)


def test_file_reference(home: pathlib.Path) -> None:
    assert credentials.credentials_path() == str(
        home / credentials.CREDENTIALS_FILENAME
    )
    with pytest.raises(CredentialNotFoundError, match="'redis'"):
        resolve_secret("redis")  # no file at all
    _write(home, 'redis = "pw1"\nkey = "base64:AAEC"\nhexkey = "hex:0a0b"\nn = 3\n')
    assert resolve_secret("redis") == "pw1"
    assert resolve_secret("cred:redis") == "pw1"
    assert resolve_secret_bytes("key") == b"\x00\x01\x02"
    assert resolve_secret_bytes("hexkey") == b"\n\x0b"
    assert resolve_secret_bytes("redis") == b"pw1"
    with pytest.raises(CredentialError, match="must be a string"):
        resolve_secret("n")
    with pytest.raises(CredentialNotFoundError, match="missing"):
        resolve_secret("missing")
    # Edits are picked up (the parsed file is cached by mtime/size/inode).
    _write(home, 'redis = "pw2-longer"\n')
    assert resolve_secret("redis") == "pw2-longer"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o644])
def test_file_open_to_others_is_refused(home: pathlib.Path, mode: int) -> None:
    _write(home, 'redis = "pw"\n', mode)
    with pytest.raises(InsecureCredentialsFileError, match="chmod 600") as info:
        resolve_secret("redis")
    assert isinstance(info.value, PermissionError)
    assert "pw" not in str(info.value).replace("pwd", "")


def test_invalid_file_and_values(home: pathlib.Path) -> None:
    _write(home, 'x = "secret-value\n')
    with pytest.raises(CredentialError, match="not valid TOML") as info:
        resolve_secret("x")
    assert "secret-value" not in str(info.value)
    _write(home, 'bad = "base64:!!!"\nempty = ""\n')
    with pytest.raises(CredentialError, match="does not decode"):
        resolve_secret_bytes("bad")
    with pytest.raises(CredentialError, match="empty"):
        resolve_secret_bytes("empty")
    with pytest.raises(ValueError, match="non-empty"):
        resolve_secret("")


def test_split_and_resolve_options(
    home: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ("password", "token")
    public, secrets = split_secret_options(
        {"host": "h", "password": "direct", "token_credential": "tok"}, names
    )
    assert public == {"host": "h", "token_credential": "tok"}
    assert secrets == {"password": "direct"}
    _write(home, 'tok = "T"\n')
    assert resolve_secret_options(public, secrets, names) == {
        "host": "h",
        "password": "direct",
        "token": "T",
    }
    monkeypatch.setenv("PW", "from-env")
    resolved = resolve_secret_options(
        {"password_env": "PW", "password_credential": "tok"}, {}, names
    )
    assert resolved == {"password": "from-env"}
    with pytest.raises(ValueError, match="token_env"):
        split_secret_options({"token_env": 3}, names)
