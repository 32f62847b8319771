"""Tests of the proxystore-globus-auth CLI (click's runner; no Globus service)."""

from __future__ import annotations

import pathlib
import subprocess
import sys
from collections.abc import Iterator
from unittest import mock

import pytest
from click.testing import CliRunner
from globus_sdk import NativeAppAuthClient, UserApp
from globus_sdk.testing import get_last_request, load_response
from globus_sdk.token_storage import TokenStorageData

from proxystore.globus import app as app_module
from proxystore.globus.cli import cli, login, logout


@pytest.fixture
def user_app() -> Iterator[UserApp]:
    app = app_module.get_user_app()
    with mock.patch("proxystore.globus.cli.get_user_app", return_value=app):
        yield app


def test_cli_without_command_shows_help() -> None:
    result = CliRunner().invoke(cli)
    assert result.exit_code in (0, 2)  # click >= 8.2 exits 2 when no command given
    assert "login" in result.output
    assert "logout" in result.output


def test_help() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "Log in to and out of Globus Auth" in result.output
    result = CliRunner().invoke(cli, ["login", "--help"])
    assert result.exit_code == 0
    assert "--collection" in result.output
    assert "--domain" in result.output


def test_console_script_help() -> None:
    script = pathlib.Path(sys.executable).parent / "proxystore-globus-auth"
    assert script.exists(), "console script not installed"
    done = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "login" in done.stdout


def test_login_runs_flow_when_needed(user_app: UserApp) -> None:
    with (
        mock.patch.object(UserApp, "login_required", return_value=True),
        mock.patch.object(UserApp, "login") as flow,
    ):
        result = CliRunner().invoke(
            login, ["-c", "c0ffee00-0000-0000-0000-000000000001"]
        )
    assert result.exit_code == 0, result.output
    flow.assert_called_once_with(auth_params=None, force=False)
    transfer = user_app.scope_requirements["transfer.api.globus.org"]
    assert "c0ffee00-0000-0000-0000-000000000001/data_access" in str(transfer[0])
    assert "auth.globus.org" in user_app.scope_requirements


def test_login_with_domain_requires_it(user_app: UserApp) -> None:
    with (
        mock.patch.object(UserApp, "login_required", return_value=True),
        mock.patch.object(UserApp, "login") as flow,
    ):
        result = CliRunner().invoke(login, ["-d", "example.edu", "-d", "example.org"])
    assert result.exit_code == 0, result.output
    params = flow.call_args.kwargs["auth_params"]
    assert params.session_required_single_domain == ["example.edu", "example.org"]
    assert params.prompt == "login"


def test_login_skipped_when_tokens_valid(user_app: UserApp) -> None:
    with (
        mock.patch.object(UserApp, "login_required", return_value=False),
        mock.patch.object(UserApp, "login") as flow,
    ):
        result = CliRunner().invoke(login)
    assert result.exit_code == 0
    flow.assert_not_called()
    assert "already exist" in result.output


def test_login_force(user_app: UserApp) -> None:
    with (
        mock.patch.object(UserApp, "login_required", return_value=False),
        mock.patch.object(UserApp, "login") as flow,
    ):
        result = CliRunner().invoke(login, ["--force"])
    assert result.exit_code == 0
    flow.assert_called_once_with(auth_params=None, force=True)


def test_logout_revokes_and_deletes_stored_tokens(user_app: UserApp) -> None:
    storage = user_app.token_storage.token_storage  # beneath the validating layer
    storage.store_token_data_by_resource_server(
        {
            "transfer.api.globus.org": TokenStorageData(
                resource_server="transfer.api.globus.org",
                identity_id=None,
                scope="urn:globus:auth:scope:transfer.api.globus.org:all",
                access_token="stored-access-token",
                refresh_token=None,
                expires_at_seconds=2_000_000_000,
                token_type="Bearer",
            )
        }
    )
    load_response(NativeAppAuthClient.oauth2_revoke_token)
    result = CliRunner().invoke(logout)
    assert result.exit_code == 0, result.output
    request = get_last_request()
    assert request is not None
    assert str(request.url).endswith("/v2/oauth2/token/revoke")
    assert "stored-access-token" in str(request.body)
    assert storage.get_token_data("transfer.api.globus.org") is None
