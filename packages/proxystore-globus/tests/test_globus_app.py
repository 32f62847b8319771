"""Unit tests of proxystore.globus.app (no Globus service needed)."""

from __future__ import annotations

import importlib
import os
import pathlib
import stat
import sys
import uuid
from unittest import mock

import pytest
from globus_sdk import ClientApp, UserApp
from globus_sdk.token_storage import MemoryTokenStorage

from proxystore.globus.app import (
    PROXYSTORE_GLOBUS_CLIENT_ID,
    PROXYSTORE_GLOBUS_CLIENT_ID_ENV_NAME,
    PROXYSTORE_GLOBUS_CLIENT_SECRET_ENV_NAME,
    get_client_app,
    get_client_credentials_from_env,
    get_globus_app,
    get_token_storage,
    get_user_app,
    is_client_login,
)


@pytest.fixture
def env_credentials(monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    client_id = str(uuid.uuid4())
    monkeypatch.setenv(PROXYSTORE_GLOBUS_CLIENT_ID_ENV_NAME, client_id)
    monkeypatch.setenv(PROXYSTORE_GLOBUS_CLIENT_SECRET_ENV_NAME, "not-a-real-secret")
    return client_id, "not-a-real-secret"


def _mode(path: pathlib.Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_token_storage_default_is_in_home_dir_and_owner_only() -> None:
    home = pathlib.Path(os.environ["PROXYSTORE_HOME"])
    assert not home.exists()
    storage = get_token_storage()
    try:
        db = home / "storage.db"
        assert db.is_file()
        assert _mode(db) == 0o600
        assert _mode(home) == 0o700
    finally:
        storage.close()


def test_token_storage_tightens_an_existing_file(tmp_path: pathlib.Path) -> None:
    db = tmp_path / "tokens.db"
    db.touch(mode=0o644)
    db.chmod(0o644)
    storage = get_token_storage(db, namespace="other")
    try:
        assert _mode(db) == 0o600
        assert storage.namespace == "other"
    finally:
        storage.close()


def test_token_storage_round_trips_tokens(tmp_path: pathlib.Path) -> None:
    from globus_sdk.token_storage import TokenStorageData

    data = TokenStorageData(
        resource_server="transfer.api.globus.org",
        identity_id=None,
        scope="urn:globus:auth:scope:transfer.api.globus.org:all",
        access_token="access",
        refresh_token=None,
        expires_at_seconds=2_000_000_000,
        token_type="Bearer",
    )
    path = tmp_path / "tokens.db"
    storage = get_token_storage(path)
    storage.store_token_data_by_resource_server({data.resource_server: data})
    storage.close()
    reopened = get_token_storage(path)
    try:
        got = reopened.get_token_data("transfer.api.globus.org")
        assert got is not None
        assert got.access_token == "access"
    finally:
        reopened.close()


def test_credentials_from_env(env_credentials: tuple[str, str]) -> None:
    assert get_client_credentials_from_env() == env_credentials
    assert is_client_login()


@pytest.mark.parametrize(
    "present",
    [
        (),
        (PROXYSTORE_GLOBUS_CLIENT_ID_ENV_NAME,),
        (PROXYSTORE_GLOBUS_CLIENT_SECRET_ENV_NAME,),
    ],
)
def test_missing_credentials_name_the_variable(
    present: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in present:
        monkeypatch.setenv(name, "x")
    with pytest.raises(ValueError, match="not set") as info:
        get_client_credentials_from_env()
    for name in (
        PROXYSTORE_GLOBUS_CLIENT_ID_ENV_NAME,
        PROXYSTORE_GLOBUS_CLIENT_SECRET_ENV_NAME,
    ):
        if name not in present:
            assert name in str(info.value).split(" not set")[0]
    assert not is_client_login()


@mock.patch("proxystore.globus.app.get_token_storage")
def test_globus_app_is_client_app_with_env(
    storage: mock.Mock, env_credentials: tuple[str, str]
) -> None:
    storage.return_value = MemoryTokenStorage()
    app = get_globus_app()
    assert isinstance(app, ClientApp)
    assert str(app.client_id) == env_credentials[0]


@mock.patch("proxystore.globus.app.get_token_storage")
def test_globus_app_is_user_app_without_env(storage: mock.Mock) -> None:
    storage.return_value = MemoryTokenStorage()
    app = get_globus_app()
    assert isinstance(app, UserApp)
    assert str(app.client_id) == PROXYSTORE_GLOBUS_CLIENT_ID


@mock.patch("proxystore.globus.app.get_token_storage")
def test_client_app_explicit_credentials(storage: mock.Mock) -> None:
    storage.return_value = MemoryTokenStorage()
    client_id = str(uuid.uuid4())
    app = get_client_app(client_id, "<secret>")
    assert isinstance(app, ClientApp)
    assert str(app.client_id) == client_id


def test_client_app_without_credentials_fails() -> None:
    with pytest.raises(ValueError, match=PROXYSTORE_GLOBUS_CLIENT_SECRET_ENV_NAME):
        get_client_app()


def test_user_app_stores_tokens_in_home_dir() -> None:
    app = get_user_app()
    assert isinstance(app, UserApp)
    assert (pathlib.Path(os.environ["PROXYSTORE_HOME"]) / "storage.db").is_file()


def test_import_without_globus_sdk_gives_install_hint() -> None:
    hidden = {
        name: None
        for name in list(sys.modules)
        if name == "globus_sdk" or name.startswith(("globus_sdk.", "proxystore.globus"))
    }
    hidden["globus_sdk"] = None
    with mock.patch.dict(sys.modules, hidden):
        for name in list(sys.modules):
            if name.startswith("proxystore.globus"):
                del sys.modules[name]
        with pytest.raises(ImportError) as info:
            importlib.import_module("proxystore.globus.app")
    assert "pip install proxystore-globus" in str(info.value)
