"""Build the peer manager an endpoint configuration asks for."""

from __future__ import annotations

import importlib
import logging
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from proxystore.endpoint.config import EndpointConfig, EndpointRelayICEServerConfig
from proxystore.utils.credentials import (
    CredentialError,
    resolve_secret_options,
    split_secret_options,
)

if TYPE_CHECKING:
    from proxystore.p2p.manager import PeerManager

logger = logging.getLogger(__name__)


def _auth_headers(config: EndpointConfig) -> dict[str, str]:
    method = config.relay.auth.method
    if method is None:
        return {}
    if method == "token":
        return {"Authorization": f"Bearer {_relay_token(config)}"}
    try:
        globus_app: Any = importlib.import_module("proxystore.globus.app")
        globus_scopes: Any = importlib.import_module("proxystore.globus.scopes")
    except ImportError as exc:
        raise RuntimeError(
            "The relay uses Globus Auth but proxystore.globus is not installed; "
            "install it, or configure the endpoint with --no-relay-auth."
        ) from exc
    # An endpoint server never prompts for a login (a daemon has no terminal):
    # missing tokens raise, and `start` checks them before detaching.
    app = globus_app.get_globus_app(interactive=False)
    scopes = globus_scopes.get_relay_scopes_by_resource_server()
    app.add_scope_requirements(scopes)
    authorizer = app.get_authorizer(*scopes.keys())
    bearer = authorizer.get_authorization_header()
    return {} if bearer is None else {"Authorization": str(bearer)}


def _secret(options: Mapping[str, Any], name: str, what: str) -> str | None:
    """Option `name` of `options`, given directly or by `<name>_env`/`_credential`.

    Raises:
        ValueError: If a reference cannot be resolved (the message names `what`).
    """
    present = {k: v for k, v in options.items() if v is not None}
    public, direct = split_secret_options(present, (name,))
    try:
        value = resolve_secret_options(public, direct, (name,)).get(name)
    except CredentialError as exc:
        raise ValueError(f"Cannot resolve {what}: {exc}") from None
    return None if value is None else str(value)


def _relay_token(config: EndpointConfig) -> str:
    """The relay token, resolved in this process from its reference."""
    token = _secret(
        config.relay.auth.kwargs, "token", f"the relay token of endpoint {config.name}"
    )
    if not token:
        raise ValueError(
            f"Endpoint {config.name} uses relay token authentication but names no "
            "token (set relay.auth.kwargs.token_env or token_credential)."
        )
    return token


def _turn_credential(server: EndpointRelayICEServerConfig) -> str | None:
    """The ICE server's credential, resolved in this process from its reference."""
    options = {
        "credential": server.credential,
        "credential_env": server.credential_env,
        "credential_credential": server.credential_credential,
    }
    return _secret(options, "credential", f"the credential of ICE server {server.urls}")


def make_peer_manager(config: EndpointConfig) -> PeerManager:
    """Return an (unstarted) peer manager registered as `config`'s endpoint.

    Raises:
        ValueError: If the configuration has no relay address, or its relay token
            or a TURN credential cannot be resolved.
        RuntimeError: If the relay's authentication method is not available.
    """
    from aiortc import RTCIceServer

    from proxystore.p2p.manager import PeerManager
    from proxystore.p2p.relay.client import RelayClient

    if config.relay.address is None:
        raise ValueError(f"Endpoint {config.name} has no relay address.")
    relay = RelayClient(
        config.relay.address,
        client_name=config.name,
        client_uuid=uuid.UUID(config.uuid),
        extra_headers=_auth_headers(config),
        verify_certificate=config.relay.verify_certificate,
    )
    ice_servers = (
        None
        if config.relay.ice_servers is None
        else [
            RTCIceServer(
                urls=s.urls, username=s.username, credential=_turn_credential(s)
            )
            for s in config.relay.ice_servers
        ]
    )
    return PeerManager(
        relay,
        peer_channels=config.relay.peer_channels,
        ice_servers=ice_servers,
        ice_addresses=config.relay.ice_addresses,
    )
