"""Globus Auth scopes that proxystore asks for.

Scopes are grouped by resource server (the mapping a `globus_sdk.GlobusApp` takes as
its scope requirements): Globus Auth itself (identity), the ProxyStore relay server
(endpoints authenticate to it), and Globus Transfer, the latter with a `data_access`
dependency for each GCSv5 collection that needs one.
"""

from __future__ import annotations

from collections.abc import Iterable

from globus_sdk import TransferClient
from globus_sdk.scopes import (
    AuthScopes,
    GCSCollectionScopes,
    Scope,
    StaticScopeCollection,
    TransferScopes,
)

__all__ = [
    "ProxyStoreRelayScopes",
    "get_all_scopes_by_resource_server",
    "get_auth_scopes_by_resource_server",
    "get_relay_scopes_by_resource_server",
    "get_transfer_scopes_by_resource_server",
    "uses_data_access",
]


class _ProxyStoreRelayScopes(StaticScopeCollection):
    # The relay's Globus Auth resource server (a registered app; public identifier).
    resource_server = "ebd5bbed-95e2-47cf-9c80-39e2064274bd"
    relay_all = Scope(f"https://auth.globus.org/scopes/{resource_server}/relay_all")


ProxyStoreRelayScopes = _ProxyStoreRelayScopes()
"""Scopes of the ProxyStore relay server (`relay_all`)."""


def get_all_scopes_by_resource_server(
    collections: Iterable[str] = (),
) -> dict[str, list[Scope]]:
    """Return every scope proxystore needs, keyed by resource server.

    Args:
        collections: Collection UUIDs whose `data_access` consent is requested
            along with Transfer (see `get_transfer_scopes_by_resource_server`).

    Returns:
        Scopes for Globus Auth, the ProxyStore relay server and Globus Transfer.
    """
    return {
        **get_auth_scopes_by_resource_server(),
        **get_relay_scopes_by_resource_server(),
        **get_transfer_scopes_by_resource_server(collections),
    }


def get_auth_scopes_by_resource_server() -> dict[str, list[Scope]]:
    """Return the Globus Auth scopes (OpenID identity, email, linked identities)."""
    return {
        AuthScopes.resource_server: [
            AuthScopes.openid,
            AuthScopes.email,
            AuthScopes.view_identity_set,
        ],
    }


def get_relay_scopes_by_resource_server() -> dict[str, list[Scope]]:
    """Return the scope an endpoint needs to register with the ProxyStore relay."""
    return {
        ProxyStoreRelayScopes.resource_server: [ProxyStoreRelayScopes.relay_all],
    }


def get_transfer_scopes_by_resource_server(
    collections: Iterable[str] = (),
) -> dict[str, list[Scope]]:
    """Return the Globus Transfer scope, with `data_access` dependencies.

    Args:
        collections: Collection UUIDs; the `data_access` scope of each becomes a
            dependency of the Transfer scope, so one login consents to all of them.

    Returns:
        A one-entry mapping from the Transfer resource server to its scope.
    """
    scope = TransferScopes.all
    for collection in collections:
        scope = scope.with_dependency(GCSCollectionScopes(collection).data_access)
    return {TransferScopes.resource_server: [scope]}


def uses_data_access(client: TransferClient, collection: str) -> bool:
    """Return whether a collection needs a `data_access` scope.

    Only non-high-assurance GCSv5 mapped collections do; everything else (guest
    collections, Globus Connect Personal, high-assurance collections) does not.

    Args:
        client: Transfer client used to look the collection up.
        collection: UUID of the collection.

    Raises:
        globus_sdk.TransferAPIError: if Transfer cannot find the collection.
    """
    document = client.get_endpoint(collection)
    if document["entity_type"] != "GCSv5_mapped_collection":
        return False
    return not document["high_assurance"]
