"""Tests of GlobusAuthenticator: token introspection served by globus_sdk.testing."""

from __future__ import annotations

import threading
import uuid
from typing import Any
from unittest import mock

import pytest
from globus_sdk import ConfidentialAppAuthClient
from globus_sdk.testing import RegisteredResponse, get_last_request

from proxystore.globus.relay_auth import (
    PROXYSTORE_RESOURCE_SERVER_NAME,
    GlobusAuthenticator,
    GlobusUser,
    get_token_from_headers,
)
from proxystore.p2p.relay.exceptions import ForbiddenError, UnauthorizedError

APP_ID = str(uuid.UUID(int=0xA11CE))
USER_CLIENT_ID = str(uuid.UUID(int=0xB0B))
HEADERS = {"Authorization": "Bearer user-access-token"}


def _introspection(**fields: Any) -> None:
    body: dict[str, Any] = {
        "active": True,
        "aud": [PROXYSTORE_RESOURCE_SERVER_NAME, "auth.globus.org"],
        "sub": APP_ID,
        "username": "someone@example.org",
        "client_id": USER_CLIENT_ID,
        "email": "someone@example.org",
        "name": "Some One",
    }
    body.update(fields)
    RegisteredResponse(
        service="auth", path="/v2/oauth2/token/introspect", method="POST", json=body
    ).add()


@pytest.fixture
def authenticator() -> GlobusAuthenticator:
    return GlobusAuthenticator(APP_ID, "not-a-real-secret")


def test_valid_token_gives_user(authenticator: GlobusAuthenticator) -> None:
    _introspection()
    user = authenticator.authenticate_user(HEADERS)
    assert user == GlobusUser("other", uuid.UUID(USER_CLIENT_ID))
    assert user.username == "someone@example.org"
    assert user.email == "someone@example.org"
    assert user.display_name == "Some One"
    request = get_last_request()
    assert request is not None
    assert "token=user-access-token" in str(request.body)
    # Introspection is authenticated with the app's own credentials (basic auth).
    assert str(request.headers["Authorization"]).startswith("Basic ")


def test_user_equality_is_by_client_id() -> None:
    a = GlobusUser("a", uuid.UUID(USER_CLIENT_ID), email="x")
    b = GlobusUser("b", uuid.UUID(USER_CLIENT_ID))
    assert a == b
    assert hash(a) == hash(b)
    assert a != GlobusUser("a", uuid.uuid4())
    assert a != "a"


def test_user_has_the_references_sub_and_keeps_client_id(
    authenticator: GlobusAuthenticator,
) -> None:
    _introspection()
    user = authenticator.authenticate_user(HEADERS)
    assert user.sub == uuid.UUID(USER_CLIENT_ID)
    assert user.client_id == user.sub
    assert GlobusUser(username="u", sub=user.sub) == user


def test_introspection_stand_in_may_return_a_plain_mapping(
    authenticator: GlobusAuthenticator,
) -> None:
    # Tests written for the reference replace the introspection call by a dict.
    meta = {
        "active": True,
        "aud": [PROXYSTORE_RESOURCE_SERVER_NAME],
        "sub": APP_ID,
        "client_id": USER_CLIENT_ID,
        "username": "u",
    }
    with mock.patch.object(
        authenticator.auth_client, "oauth2_token_introspect", return_value=meta
    ):
        user = authenticator.authenticate_user(HEADERS)
    assert user.sub == uuid.UUID(USER_CLIENT_ID)


def test_inactive_token_is_forbidden(authenticator: GlobusAuthenticator) -> None:
    RegisteredResponse(
        service="auth",
        path="/v2/oauth2/token/introspect",
        method="POST",
        json={"active": False},
    ).add()
    with pytest.raises(ForbiddenError, match="expired or has been revoked"):
        authenticator.authenticate_user(HEADERS)


def test_wrong_audience_is_forbidden() -> None:
    authenticator = GlobusAuthenticator(APP_ID, "s", audience="my-relay")
    _introspection()
    with pytest.raises(ForbiddenError, match='does not include "my-relay"'):
        authenticator.authenticate_user(HEADERS)


def test_other_identity_set_is_forbidden(authenticator: GlobusAuthenticator) -> None:
    _introspection(sub=str(uuid.uuid4()))
    with pytest.raises(ForbiddenError, match="identity set"):
        authenticator.authenticate_user(HEADERS)


def test_garbled_client_id_is_forbidden(authenticator: GlobusAuthenticator) -> None:
    _introspection(client_id="not-a-uuid")
    with pytest.raises(ForbiddenError, match="client_id"):
        authenticator.authenticate_user(HEADERS)


@pytest.mark.parametrize(
    ("headers", "match"),
    [
        ({}, "missing authorization header"),
        ({"Authorization": "user-access-token"}, "malformed"),
        ({"Authorization": "Basic abc"}, "malformed"),
        ({"Authorization": "Bearer a b"}, "malformed"),
        ({"Authorization": "Bearer "}, "malformed"),
    ],
)
def test_bad_headers_are_unauthorized(
    authenticator: GlobusAuthenticator, headers: dict[str, str], match: str
) -> None:
    with pytest.raises(UnauthorizedError, match=match):
        authenticator.authenticate_user(headers)
    assert get_last_request() is None  # rejected before any call to Globus


def test_get_token_from_headers() -> None:
    assert get_token_from_headers({"Authorization": "Bearer tok"}) == "tok"
    assert get_token_from_headers({"authorization": "Bearer tok"}) == "tok"


def test_credentials_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROXYSTORE_GLOBUS_CLIENT_ID", APP_ID)
    monkeypatch.setenv("PROXYSTORE_GLOBUS_CLIENT_SECRET", "from-env")
    authenticator = GlobusAuthenticator()
    assert str(authenticator.auth_client.client_id) == APP_ID
    assert "from-env" not in repr(authenticator)


def test_missing_credentials_fail_early() -> None:
    with pytest.raises(ValueError, match="PROXYSTORE_GLOBUS_CLIENT_ID"):
        GlobusAuthenticator()


def test_one_auth_client_per_thread(authenticator: GlobusAuthenticator) -> None:
    _introspection()
    _introspection()
    seen: list[object] = []

    def other_thread() -> None:
        authenticator.authenticate_user(HEADERS)
        seen.append(authenticator._client())

    authenticator.authenticate_user(HEADERS)
    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert authenticator._client() is authenticator.auth_client
    assert seen[0] is not authenticator.auth_client
    assert isinstance(seen[0], ConfidentialAppAuthClient)
    assert str(seen[0].client_id) == APP_ID
