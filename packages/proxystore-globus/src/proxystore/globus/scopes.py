"""Globus Auth scopes that proxystore asks for.

Scopes are grouped by resource server (the mapping a `globus_sdk.GlobusApp` takes as
its scope requirements): Globus Auth itself (identity) and Globus Transfer, the latter
with a `data_access` dependency for each GCSv5 collection that needs one.
"""

from __future__ import annotations

from collections.abc import Iterable

from globus_sdk import TransferClient
from globus_sdk.scopes import AuthScopes, GCSCollectionScopes, Scope, TransferScopes

__all__ = [
    "get_all_scopes_by_resource_server",
    "get_auth_scopes_by_resource_server",
    "get_transfer_scopes_by_resource_server",
    "uses_data_access",
]


def get_all_scopes_by_resource_server(
    collections: Iterable[str] = (),
) -> dict[str, list[Scope]]:
    """Return every scope proxystore needs, keyed by resource server.

    Args:
        collections: Collection UUIDs whose `data_access` consent is requested
            along with Transfer (see `get_transfer_scopes_by_resource_server`).

    Returns:
        Scopes for Globus Auth and Globus Transfer.
    """
    return {
        **get_auth_scopes_by_resource_server(),
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
