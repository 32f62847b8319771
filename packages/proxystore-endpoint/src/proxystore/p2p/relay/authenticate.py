"""Identify relay clients from the headers of their websocket handshake.

An authenticator turns request headers into a *user*; the relay only lets clients of
the same user see each other. `NullAuthenticator` puts everyone in one user,
`TokenAuthenticator` admits holders of one shared bearer token, and
`GlobusAuthenticator` (Globus Auth) comes from the Globus member, imported only when
asked for so that this module never needs `globus-sdk`.
"""

from __future__ import annotations

import hmac
import importlib
import importlib.util
import logging
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar, runtime_checkable

from proxystore.p2p.relay.config import RelayAuthConfig
from proxystore.p2p.relay.exceptions import ForbiddenError, UnauthorizedError
from proxystore.utils.credentials import (
    CredentialError,
    resolve_secret_options,
    split_secret_options,
)

__all__ = [
    "Authenticator",
    "NullAuthenticator",
    "NullUser",
    "TokenAuthenticator",
    "TokenUser",
    "get_authenticator",
    "get_token_from_headers",
]

logger = logging.getLogger(__name__)

_GLOBUS_MODULE = "proxystore.globus.relay_auth"
# Options of each method that hold a secret (and may be given by reference).
_SECRET_OPTIONS: dict[str, tuple[str, ...]] = {
    "token": ("token",),
    "globus": ("client_secret",),
}
_GLOBUS_NAMES = ("GlobusAuthenticator", "GlobusUser")


def _globus_available() -> bool:
    try:
        return importlib.util.find_spec("proxystore.globus") is not None
    except (ImportError, ValueError):  # pragma: no cover - broken installs
        return False


if _globus_available():
    __all__ += list(_GLOBUS_NAMES)

UserT_co = TypeVar("UserT_co", covariant=True)


@runtime_checkable
class Authenticator(Protocol[UserT_co]):
    """Turns websocket handshake headers into a user."""

    def authenticate_user(self, headers: Mapping[str, str]) -> UserT_co:
        """Authenticate the user who sent `headers`.

        Returns:
            The user; users that compare equal may reach each other's clients.

        Raises:
            UnauthorizedError: If the headers carry no valid credentials.
            ForbiddenError: If the credentials are valid but not allowed here.
        """
        ...


class NullUser:
    """The single user of a relay without authentication (all instances are equal)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NullUser)

    def __hash__(self) -> int:
        return hash(NullUser)

    def __repr__(self) -> str:
        return "NullUser()"


class NullAuthenticator:
    """Admits every client as the same `NullUser`."""

    def authenticate_user(self, headers: Mapping[str, str]) -> NullUser:
        """Return a `NullUser` whatever the headers are."""
        return NullUser()


class TokenUser:
    """The user of a relay guarded by one shared token (all instances are equal)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TokenUser)

    def __hash__(self) -> int:
        return hash(TokenUser)

    def __repr__(self) -> str:
        return "TokenUser()"


class TokenAuthenticator:
    """Admits clients presenting one shared secret as `Authorization: Bearer <token>`.

    Args:
        token: The shared secret (compared in constant time; never logged).

    Raises:
        ValueError: If `token` is empty.
    """

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("The relay token must not be empty.")
        self._token = token.encode("utf-8")

    def __repr__(self) -> str:
        return "TokenAuthenticator(token=<hidden>)"

    def authenticate_user(self, headers: Mapping[str, str]) -> TokenUser:
        """Check the bearer token in `headers`.

        Raises:
            UnauthorizedError: If the header is missing or malformed.
            ForbiddenError: If the token is not the shared token.
        """
        token = get_token_from_headers(headers).encode("utf-8")
        if not hmac.compare_digest(token, self._token):
            raise ForbiddenError("The bearer token is not valid for this relay.")
        return TokenUser()


def get_authenticator(config: RelayAuthConfig) -> Authenticator[Any]:
    """Build the authenticator a relay configuration asks for.

    Secret options (`token`, Globus's `client_secret`) may be given by reference as
    `<name>_env` (an environment variable) or `<name>_credential` (an entry of the
    credentials file); they are resolved here, in the relay's process.

    Raises:
        ValueError: If the method is unknown, its arguments are wrong, or a secret
            reference cannot be resolved.
        ImportError: If the method is `'globus'` and the Globus member is missing.
    """
    if config.method is None:
        return NullAuthenticator()
    kwargs = _resolve_secrets(config)
    if config.method == "token":
        try:
            return TokenAuthenticator(**kwargs)
        except TypeError as exc:
            raise ValueError(
                "The 'token' relay auth method takes exactly one argument, 'token' "
                "(or 'token_env' / 'token_credential')."
            ) from exc
    if config.method == "globus":
        module = importlib.import_module(_GLOBUS_MODULE)
        authenticator: Authenticator[Any] = module.GlobusAuthenticator(**kwargs)
        return authenticator
    raise ValueError(f"Unknown relay authentication method {config.method!r}.")


def _resolve_secrets(config: RelayAuthConfig) -> dict[str, Any]:
    names = _SECRET_OPTIONS.get(str(config.method), ())
    try:
        public, direct = split_secret_options(config.kwargs, names)
        for name in direct:
            logger.warning(
                "Relay auth option %r is written in the configuration itself; give "
                "it by reference (%s_env or %s_credential) instead.",
                name,
                name,
                name,
            )
        return resolve_secret_options(public, direct, names)
    except CredentialError as exc:
        raise ValueError(f"Cannot resolve a relay auth secret: {exc}") from None


def get_token_from_headers(headers: Mapping[str, str]) -> str:
    """Return the token of an `Authorization: Bearer <token>` header.

    The header name is matched without regard to case.

    Raises:
        UnauthorizedError: If the header is missing or not of that form.
    """
    value = headers.get("Authorization")
    if value is None:
        for name, candidate in headers.items():
            if name.lower() == "authorization":
                value = candidate
                break
    if value is None:
        raise UnauthorizedError("Request headers are missing an Authorization header.")
    parts = value.split(" ")
    if len(parts) != 2 or parts[0] != "Bearer" or not parts[1]:
        raise UnauthorizedError("The Authorization header is not 'Bearer <token>'.")
    return parts[1]


def __getattr__(name: str) -> Any:
    if name in _GLOBUS_NAMES:
        try:
            module = importlib.import_module(_GLOBUS_MODULE)
        except ImportError as exc:
            raise AttributeError(
                f"{name} needs the Globus member ({_GLOBUS_MODULE}): {exc}"
            ) from exc
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
