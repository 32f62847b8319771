"""Globus service clients: Auth (native and confidential apps) and Transfer."""

from __future__ import annotations

from collections.abc import Iterable

import globus_sdk

from proxystore.globus.app import (
    _APP_NAME,
    PROXYSTORE_GLOBUS_CLIENT_ID,
    get_client_credentials_from_env,
    get_globus_app,
)
from proxystore.globus.scopes import uses_data_access

__all__ = [
    "get_confidential_app_auth_client",
    "get_native_app_auth_client",
    "get_transfer_client",
]


def get_confidential_app_auth_client(
    client_id: str | None = None,
    client_secret: str | None = None,
) -> globus_sdk.ConfidentialAppAuthClient:
    """Return an Auth client for a confidential app (no login happens here).

    Args:
        client_id: Client ID; when it or `client_secret` is `None`, both are read
            with `proxystore.globus.app.get_client_credentials_from_env()`.
        client_secret: Client secret.

    Raises:
        ValueError: if a value is missing and the environment does not supply it.
    """
    if client_id is None or client_secret is None:
        client_id, client_secret = get_client_credentials_from_env()
    return globus_sdk.ConfidentialAppAuthClient(
        client_id=str(client_id),
        client_secret=str(client_secret),
    )


def get_native_app_auth_client(
    client_id: str = PROXYSTORE_GLOBUS_CLIENT_ID,
    app_name: str | None = None,
) -> globus_sdk.NativeAppAuthClient:
    """Return an Auth client for a native app (no login happens here).

    Args:
        client_id: Native app client ID; proxystore's registered app by default.
        app_name: Name sent to Globus with each request; `"proxystore"` by default.
    """
    return globus_sdk.NativeAppAuthClient(
        client_id=client_id,
        app_name=_APP_NAME if app_name is None else app_name,
    )


def get_transfer_client(
    globus_app: globus_sdk.GlobusApp | None = None,
    collections: Iterable[str] = (),
) -> globus_sdk.TransferClient:
    """Return a Transfer client backed by a Globus app.

    Args:
        globus_app: App providing the tokens; `get_globus_app()` by default (a
            client app when credentials are in the environment, else a user app
            that asks the user to log in when it has no valid tokens).
        collections: Collection UUIDs to request `data_access` consent for; each is
            looked up first and only those that need the scope get it.

    Raises:
        globus_sdk.GlobusAPIError: if a collection lookup fails.
    """
    app = get_globus_app() if globus_app is None else globus_app
    client = globus_sdk.TransferClient(app=app)
    needs_consent = [c for c in collections if uses_data_access(client, c)]
    if needs_consent:
        client.add_app_data_access_scope(needs_consent)
    return client
