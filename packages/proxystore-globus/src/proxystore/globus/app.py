"""The Globus app proxystore logs in with, and where it keeps the tokens.

Two kinds of login:

- **user** (the default): a native app (`globus_sdk.UserApp`) with proxystore's
  registered client ID; the first use prints a URL, the user logs in with a browser
  and pastes back the code. `proxystore-globus-auth login` does this ahead of time.
- **client**: a confidential app (`globus_sdk.ClientApp`) for services and batch jobs,
  chosen when both `PROXYSTORE_GLOBUS_CLIENT_ID` and `PROXYSTORE_GLOBUS_CLIENT_SECRET`
  are set.

Tokens live in one SQLite file in the proxystore home directory
(`proxystore.utils.environment.home_dir()`), readable by its owner only (mode 0600).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
import stat

import click
from globus_sdk import ClientApp, GlobusApp, GlobusAppConfig, UserApp
from globus_sdk.login_flows import CommandLineLoginFlowManager
from globus_sdk.token_storage import SQLiteTokenStorage, TokenValidationError

from proxystore.utils.environment import home_dir

__all__ = [
    "PROXYSTORE_GLOBUS_CLIENT_ID",
    "PROXYSTORE_GLOBUS_CLIENT_ID_ENV_NAME",
    "PROXYSTORE_GLOBUS_CLIENT_SECRET_ENV_NAME",
    "GlobusLoginRequiredError",
    "get_client_app",
    "get_client_credentials_from_env",
    "get_globus_app",
    "get_token_storage",
    "get_user_app",
    "is_client_login",
]

logger = logging.getLogger(__name__)

PROXYSTORE_GLOBUS_CLIENT_ID = "a3379dba-a492-459a-a8df-5e7676a0472f"
"""Client ID of the native Globus app registered for ProxyStore (public, not secret)."""
PROXYSTORE_GLOBUS_CLIENT_ID_ENV_NAME = "PROXYSTORE_GLOBUS_CLIENT_ID"
"""Environment variable holding a confidential app's client ID."""
PROXYSTORE_GLOBUS_CLIENT_SECRET_ENV_NAME = "PROXYSTORE_GLOBUS_CLIENT_SECRET"
"""Environment variable holding a confidential app's client secret."""

_APP_NAME = "proxystore"
_TOKENS_FILE = "storage.db"
_OWNER_ONLY_FILE = stat.S_IRUSR | stat.S_IWUSR  # 0600
_OWNER_ONLY_DIR = stat.S_IRWXU  # 0700


class _PromptLoginFlowManager(CommandLineLoginFlowManager):
    """Command-line login flow whose prompts go through click (styled, testable)."""

    def print_authorize_url(self, authorize_url: str) -> None:
        click.secho("Please visit the following URL to log in:", fg="cyan")
        click.echo(authorize_url)

    def prompt_for_code(self) -> str:
        code: str = click.prompt(
            click.style("Enter the authorization code:", fg="cyan"),
            prompt_suffix=" ",
        )
        return code.strip()


class GlobusLoginRequiredError(RuntimeError):
    """Raised by a non-interactive app when the stored tokens do not suffice."""


def _refuse_login(app: GlobusApp, error: TokenValidationError) -> None:
    """Token-validation handler of non-interactive apps: fail, never prompt."""
    raise GlobusLoginRequiredError(
        f"No usable Globus login ({error}); run `proxystore-globus-auth login` first."
    ) from error


def get_token_storage(
    filepath: str | pathlib.Path | None = None,
    *,
    namespace: str = "DEFAULT",
) -> SQLiteTokenStorage:
    """Open (creating if needed) the SQLite file that holds the Globus tokens.

    The file is made readable and writable by its owner only (0600), also when it
    existed before with wider permissions; a parent directory created here is 0700.

    Args:
        filepath: Database file; defaults to `storage.db` in the proxystore home
            directory.
        namespace: Partition inside the database (one per app or environment).

    Returns:
        The token storage; call its `close()` when done.

    Raises:
        OSError: if the directory or the file cannot be created.
    """
    path = pathlib.Path(
        os.path.join(home_dir(), _TOKENS_FILE) if filepath is None else filepath
    )
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=_OWNER_ONLY_DIR)
    storage = SQLiteTokenStorage(path, namespace=namespace)
    os.chmod(path, _OWNER_ONLY_FILE)
    return storage


def get_client_credentials_from_env() -> tuple[str, str]:
    """Read a confidential app's client ID and secret from the environment.

    The values are not validated here; Globus Auth rejects wrong ones on first use.

    Returns:
        `(client_id, client_secret)` from `PROXYSTORE_GLOBUS_CLIENT_ID` and
        `PROXYSTORE_GLOBUS_CLIENT_SECRET`.

    Raises:
        ValueError: if either variable is unset.
    """
    client_id = os.environ.get(PROXYSTORE_GLOBUS_CLIENT_ID_ENV_NAME)
    client_secret = os.environ.get(PROXYSTORE_GLOBUS_CLIENT_SECRET_ENV_NAME)
    if client_id is None or client_secret is None:
        missing = [
            name
            for name, value in (
                (PROXYSTORE_GLOBUS_CLIENT_ID_ENV_NAME, client_id),
                (PROXYSTORE_GLOBUS_CLIENT_SECRET_ENV_NAME, client_secret),
            )
            if value is None
        ]
        raise ValueError(
            f"{' and '.join(missing)} not set: a Globus client login needs both "
            f"{PROXYSTORE_GLOBUS_CLIENT_ID_ENV_NAME} and "
            f"{PROXYSTORE_GLOBUS_CLIENT_SECRET_ENV_NAME}. Set both, or unset both "
            "to log in as a user instead.",
        )
    return client_id, client_secret


def is_client_login() -> bool:
    """Return whether both client-credential environment variables are set."""
    try:
        get_client_credentials_from_env()
    except ValueError:
        return False
    return True


def get_globus_app(*, interactive: bool = True) -> GlobusApp:
    """Return a client app when credentials are in the environment, else a user app.

    Args:
        interactive: Whether the user app may start a login flow when its tokens
            do not suffice (see `get_user_app`).
    """
    if is_client_login():
        return get_client_app()
    return get_user_app(interactive=interactive)


def get_client_app(
    client_id: str | None = None,
    client_secret: str | None = None,
) -> ClientApp:
    """Return a confidential (client-credentials) Globus app.

    Args:
        client_id: Client ID; when it or `client_secret` is `None`, both are read
            with `get_client_credentials_from_env()`.
        client_secret: Client secret.

    Raises:
        ValueError: if a value is missing and the environment does not supply it.
    """
    if client_id is None or client_secret is None:
        client_id, client_secret = get_client_credentials_from_env()
    config = GlobusAppConfig(
        token_storage=get_token_storage(),
        request_refresh_tokens=True,
    )
    logger.debug("Using a Globus client app (client ID %s)", client_id)
    return ClientApp(
        app_name=_APP_NAME,
        client_id=client_id,
        client_secret=client_secret,
        config=config,
    )


def get_user_app(*, interactive: bool = True) -> UserApp:
    """Return the native (user) Globus app.

    Args:
        interactive: Start a login flow (a prompt) when the stored tokens do not
            suffice. Without it such a use raises `GlobusLoginRequiredError`:
            what a process without a terminal (an endpoint daemon) needs.
    """
    config = GlobusAppConfig(
        login_flow_manager=_PromptLoginFlowManager,
        token_storage=get_token_storage(),
        request_refresh_tokens=True,
    )
    if not interactive:
        config = dataclasses.replace(
            config, token_validation_error_handler=_refuse_login
        )
    return UserApp(
        app_name=_APP_NAME,
        client_id=PROXYSTORE_GLOBUS_CLIENT_ID,
        config=config,
    )
