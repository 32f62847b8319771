"""What an endpoint knows about its relay, for `list`, `start` and peer requests.

The endpoint's peer manager owns a relay client; this module reads its public
state (never its internals) so the REST API can report it and a peer request can
fail at once, naming the relay, instead of waiting for an offer that cannot be
sent.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict
from uuid import UUID

from proxystore.endpoint.exceptions import RelayUnavailableError

__all__ = ["RelayState", "relay_state", "relay_unavailable"]

RelayStatus = Literal["connected", "connecting", "refused"]


class RelayState(TypedDict):
    """Relay state as `GET /endpoint` reports it under the key `relay`.

    `error` says why the last registration attempt failed (`None` once
    registered, or when the relay client does not tell).
    """

    address: str
    status: RelayStatus
    error: str | None


def _relay_client(manager: Any) -> Any | None:
    # Stand-ins for the peer manager (tests) have no relay client; a peer manager
    # that was not started raises RuntimeError.
    try:
        return getattr(manager, "relay_client", None)
    except RuntimeError:
        return None


def relay_state(manager: Any) -> RelayState | None:
    """Return the state of `manager`'s relay connection (`None`: no relay client)."""
    client = _relay_client(manager)
    if client is None:
        return None
    status: RelayStatus
    if client.connected:
        status = "connected"
    elif client.refused:
        status = "refused"
    else:
        status = "connecting"
    error = getattr(client, "last_error", None)
    return RelayState(
        address=str(client.address),
        status=status,
        error=None if status == "connected" or error is None else str(error),
    )


def relay_unavailable(manager: Any, endpoint: UUID, peer: UUID) -> Exception | None:
    """The error for a request to `peer` that needs a relay this endpoint lacks.

    A peer with a connection already (made or being made) is reached without the
    relay; any other peer needs an offer sent through it.

    Returns:
        A `RelayUnavailableError` naming the relay, or `None` when the request
        can go ahead.
    """
    state = relay_state(manager)
    if state is None or state["status"] == "connected":
        return None
    if peer in getattr(manager, "peers", ()):
        return None
    why = (
        "the relay refused it"
        if state["status"] == "refused"
        else "it keeps retrying in the background"
    )
    if state["error"]:
        why += f"; last attempt: {state['error']}"
    return RelayUnavailableError(
        f"Endpoint {endpoint} is not connected to the relay at {state['address']} "
        f"({why}), so it cannot reach peer endpoint {peer}. Check that the relay "
        "is running; `proxystore-endpoint list` shows each endpoint's relay state "
        "and the endpoint's log says why it is not connected."
    )
