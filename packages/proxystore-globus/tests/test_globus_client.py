"""Tests of proxystore.globus.client and proxystore.globus.scopes."""

from __future__ import annotations

import uuid
from unittest import mock

import globus_sdk
import pytest
from globus_sdk.testing import RegisteredResponse, load_response
from globus_sdk.token_storage import MemoryTokenStorage

from proxystore.globus.app import (
    PROXYSTORE_GLOBUS_CLIENT_ID,
    get_client_app,
    get_globus_app,
)
from proxystore.globus.client import (
    get_confidential_app_auth_client,
    get_native_app_auth_client,
    get_transfer_client,
)
from proxystore.globus.scopes import (
    ProxyStoreRelayScopes,
    get_all_scopes_by_resource_server,
    get_auth_scopes_by_resource_server,
    get_relay_scopes_by_resource_server,
    get_transfer_scopes_by_resource_server,
    uses_data_access,
)

MAPPED = str(uuid.UUID(int=1))
HIGH_ASSURANCE = str(uuid.UUID(int=2))
GUEST = str(uuid.UUID(int=3))


def _collection(collection: str, entity_type: str, high_assurance: bool) -> None:
    RegisteredResponse(
        service="transfer",
        path=f"/v0.10/endpoint/{collection}",
        json={
            "DATA_TYPE": "endpoint",
            "id": collection,
            "entity_type": entity_type,
            "high_assurance": high_assurance,
        },
    ).add()


@pytest.fixture
def collections() -> None:
    _collection(MAPPED, "GCSv5_mapped_collection", False)
    _collection(HIGH_ASSURANCE, "GCSv5_mapped_collection", True)
    _collection(GUEST, "GCSv5_guest_collection", False)


def test_confidential_client_explicit_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    client = get_confidential_app_auth_client("id-1", "secret")
    assert isinstance(client, globus_sdk.ConfidentialAppAuthClient)
    assert client.client_id == "id-1"
    monkeypatch.setenv("PROXYSTORE_GLOBUS_CLIENT_ID", "id-2")
    monkeypatch.setenv("PROXYSTORE_GLOBUS_CLIENT_SECRET", "secret")
    assert get_confidential_app_auth_client().client_id == "id-2"


def test_confidential_client_needs_credentials() -> None:
    with pytest.raises(ValueError, match="PROXYSTORE_GLOBUS_CLIENT_ID"):
        get_confidential_app_auth_client()


def test_native_client() -> None:
    client = get_native_app_auth_client()
    assert client.client_id == PROXYSTORE_GLOBUS_CLIENT_ID
    assert get_native_app_auth_client("abc", app_name="mine").client_id == "abc"


def test_scopes_by_resource_server() -> None:
    auth = get_auth_scopes_by_resource_server()
    assert list(auth) == ["auth.globus.org"]
    assert "openid" in [str(s) for s in auth["auth.globus.org"]]
    transfer = get_transfer_scopes_by_resource_server([MAPPED])
    scope = str(transfer["transfer.api.globus.org"][0])
    assert scope.startswith("urn:globus:auth:scope:transfer.api.globus.org:all")
    assert f"{MAPPED}/data_access" in scope
    relay = get_relay_scopes_by_resource_server()
    assert list(relay) == [ProxyStoreRelayScopes.resource_server]
    assert str(relay[ProxyStoreRelayScopes.resource_server][0]).endswith("/relay_all")
    assert set(get_all_scopes_by_resource_server()) == {
        "auth.globus.org",
        ProxyStoreRelayScopes.resource_server,
        "transfer.api.globus.org",
    }


def test_uses_data_access(collections: None) -> None:
    client = globus_sdk.TransferClient(authorizer=globus_sdk.NullAuthorizer())
    assert uses_data_access(client, MAPPED)
    assert not uses_data_access(client, HIGH_ASSURANCE)
    assert not uses_data_access(client, GUEST)


def test_transfer_client_requests_data_access_only_where_needed(
    collections: None,
) -> None:
    with mock.patch(
        "proxystore.globus.app.get_token_storage", return_value=MemoryTokenStorage()
    ):
        app = get_client_app(str(uuid.uuid4()), "secret")
    # The client app gets its token by the client-credentials grant.
    load_response(globus_sdk.ConfidentialAppAuthClient.oauth2_client_credentials_tokens)
    client = get_transfer_client(app, collections=[MAPPED, HIGH_ASSURANCE, GUEST])
    assert isinstance(client, globus_sdk.TransferClient)
    required = " ".join(
        str(s) for s in app.scope_requirements["transfer.api.globus.org"]
    )
    assert f"{MAPPED}/data_access" in required
    assert HIGH_ASSURANCE not in required
    assert GUEST not in required


def test_transfer_client_default_app_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROXYSTORE_GLOBUS_CLIENT_ID", str(uuid.uuid4()))
    monkeypatch.setenv("PROXYSTORE_GLOBUS_CLIENT_SECRET", "secret")
    made: list[globus_sdk.GlobusApp] = []

    def spy() -> globus_sdk.GlobusApp:
        made.append(get_globus_app())
        return made[-1]

    with mock.patch("proxystore.globus.client.get_globus_app", spy):
        client = get_transfer_client()
    assert isinstance(client, globus_sdk.TransferClient)
    assert len(made) == 1
    assert isinstance(made[0], globus_sdk.ClientApp)
