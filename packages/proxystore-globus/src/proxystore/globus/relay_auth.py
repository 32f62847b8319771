"""Globus Auth authenticator for the relay server.

The relay (`proxystore.p2p.relay`, in the `proxystore-endpoint` member) asks an
authenticator to turn a client's request headers into a user. `GlobusAuthenticator`
expects `Authorization: Bearer <access token>` and checks the token by Globus Auth
token introspection, made with the relay operator's confidential app credentials.
`proxystore.p2p.relay.authenticate` re-exports these names.

The relay's error types are imported when an error is raised, not at import time, so
this package does not depend on the endpoint member.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import globus_sdk

from proxystore.globus.client import get_confidential_app_auth_client

if TYPE_CHECKING:
    from proxystore.p2p.relay.exceptions import ForbiddenError, UnauthorizedError

__all__ = [
    "PROXYSTORE_RESOURCE_SERVER_NAME",
    "GlobusAuthenticator",
    "GlobusUser",
    "get_token_from_headers",
]

logger = logging.getLogger(__name__)

PROXYSTORE_RESOURCE_SERVER_NAME = "ProxyStore"
"""Default audience a token must name to be accepted by the relay."""


def _forbidden(message: str) -> ForbiddenError:
    from proxystore.p2p.relay.exceptions import ForbiddenError

    return ForbiddenError(message)


def _unauthorized(message: str) -> UnauthorizedError:
    from proxystore.p2p.relay.exceptions import UnauthorizedError

    return UnauthorizedError(message)


@dataclasses.dataclass(frozen=True, eq=False)
class GlobusUser:
    """A Globus Auth identity, as token introspection describes it.

    Two users are equal when their `sub` is (the other fields depend on what the
    identity chooses to share).

    Attributes:
        username: Identity username, e.g. `someone@example.org`.
        sub: Globus Auth ID of the client the introspected token was issued to
            (introspection's `client_id` field; see `GlobusAuthenticator`).
        email: Email of the effective identity, when visible.
        display_name: Display name of the effective identity, when visible.
    """

    username: str
    sub: uuid.UUID
    email: str | None = None
    display_name: str | None = None

    @property
    def client_id(self) -> uuid.UUID:
        """The same ID as `sub` (this class's earlier name for it)."""
        return self.sub

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GlobusUser):
            return NotImplemented
        return self.sub == other.sub

    def __hash__(self) -> int:
        return hash(self.sub)


class GlobusAuthenticator:
    """Authenticate relay clients by Globus Auth token introspection.

    A user is the client the token was issued to (introspection's `client_id`,
    stored as `GlobusUser.sub`); introspection's own `sub` must be this relay's app.

    Args:
        client_id: Client ID of the relay operator's confidential Globus app. When
            it or `client_secret` is `None`, both come from
            `PROXYSTORE_GLOBUS_CLIENT_ID` / `PROXYSTORE_GLOBUS_CLIENT_SECRET`.
            Ignored when `auth_client` is given.
        client_secret: Client secret of that app.
        audience: Audience a token must include, so that a token issued for another
            service cannot be replayed here (confused deputy).
        auth_client: Ready-made confidential app Auth client, used instead of one
            built from the credentials (and shared by every thread).

    Raises:
        ValueError: if credentials are neither given nor in the environment.
    """

    def __init__(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        *,
        audience: str = PROXYSTORE_RESOURCE_SERVER_NAME,
        auth_client: globus_sdk.ConfidentialAppAuthClient | None = None,
    ) -> None:
        self.auth_client = (
            get_confidential_app_auth_client(client_id, client_secret)
            if auth_client is None
            else auth_client
        )
        self.audience = audience
        self._shared_client = auth_client is not None
        self._credentials = (
            str(self.auth_client.client_id),
            None if client_secret is None else client_secret,
        )
        self._local = threading.local()
        self._local.client = self.auth_client

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(client_id={self.auth_client.client_id!s}, "
            f"audience={self.audience!r})"
        )

    def _client(self) -> globus_sdk.ConfidentialAppAuthClient:
        # A requests session is not meant to be shared by threads: a relay that
        # introspects from a thread pool gets one client per thread.
        client: globus_sdk.ConfidentialAppAuthClient | None = getattr(
            self._local, "client", None
        )
        if client is None:
            client = (
                self.auth_client
                if self._shared_client
                else get_confidential_app_auth_client(
                    self._credentials[0], self._credentials[1]
                )
            )
            self._local.client = client
        return client

    def _token_introspect(self, token: str) -> Mapping[str, Any]:
        response = self._client().oauth2_token_introspect(token)
        # The SDK's response object, or a plain mapping (what code written for the
        # reference returns from a stand-in).
        data = getattr(response, "data", response)
        return data if isinstance(data, Mapping) else {}

    def authenticate_user(self, headers: Mapping[str, str]) -> GlobusUser:
        """Return the Globus user whose bearer token is in `headers`.

        Args:
            headers: Request headers; must contain `Authorization: Bearer <token>`.

        Returns:
            The user the token belongs to.

        Raises:
            UnauthorizedError: if the `Authorization` header is missing or malformed.
            ForbiddenError: if the token is inactive (expired or revoked), does not
                include `audience`, or was issued to another identity set than this
                app's.
            globus_sdk.AuthAPIError: if Globus Auth rejects the introspection call
                itself (e.g. wrong app credentials).
        """
        token = get_token_from_headers(headers)
        meta = self._token_introspect(token)
        if not meta.get("active"):
            raise _forbidden("Token is expired or has been revoked.")
        audiences = meta.get("aud") or []
        if self.audience not in audiences:
            raise _forbidden(
                f'Token audience does not include "{self.audience}": refusing a '
                "token issued for another service. Request the relay's scope "
                "when creating the token.",
            )
        if str(self.auth_client.client_id) != meta.get("sub"):
            raise _forbidden(
                "The identity set of the token does not match this application's "
                "client ID.",
            )
        try:
            client_id = uuid.UUID(str(meta.get("client_id")))
        except ValueError:
            raise _forbidden(
                "Token introspection returned no valid client_id."
            ) from None
        user = GlobusUser(
            username=str(meta.get("username", "")),
            sub=client_id,
            email=meta.get("email"),
            display_name=meta.get("name"),
        )
        logger.debug("Authenticated relay client %s", user.username)
        return user


def get_token_from_headers(headers: Mapping[str, str]) -> str:
    """Return the bearer token of an `Authorization: Bearer <token>` header.

    Args:
        headers: Request headers.

    Raises:
        UnauthorizedError: if the header is missing, or is not exactly `Bearer`
            followed by one token.
    """
    value = headers.get("Authorization")
    if value is None:
        # Plain dicts are case-sensitive; HTTP header names are not.
        value = next(
            (v for k, v in headers.items() if k.lower() == "authorization"), None
        )
    if value is None:
        raise _unauthorized("Request headers are missing authorization header.")
    parts = value.split(" ")
    if len(parts) != 2 or parts[0] != "Bearer" or not parts[1]:
        raise _unauthorized("Bearer token in authorization header is malformed.")
    return parts[1]
