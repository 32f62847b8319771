"""Holders of endpoint objects: counted by the endpoint process that stores them.

The endpoint keeps a `proxystore.connectors.holders.HolderTable` beside its
storage and sweeps lapsed holds itself, a few times per lease, so an object
whose holders all died is evicted by the endpoint. A heartbeat is one
``POST /holders`` carrying every hold the process has on its endpoint; a release
is one ``POST /release``.

Holds are counted by the endpoint the connector talks to: objects that live on a
peer endpoint (keys naming another endpoint) are not counted (``hold`` answers
``False`` for them, and `proxystore.store.refcount` leaves them alone).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from proxystore.connectors.holders import Hold, record_name
from proxystore.endpoint import client

if TYPE_CHECKING:
    from proxystore.connectors.endpoint import EndpointConnector, EndpointKey

__all__ = ["EndpointHolders"]


class EndpointHolders:
    """Reference counting for an `EndpointConnector` (see the module documentation).

    Args:
        connector: The connector whose objects are counted.
    """

    def __init__(self, connector: EndpointConnector) -> None:
        self.connector = connector

    def hold(self, holds: Sequence[Hold[EndpointKey]]) -> list[bool]:
        """Add or renew holds in one request; return whether each object exists.

        Raises:
            ValueError: if a hold has neither a holder nor a token, or a
                non-positive lease.
            EndpointConnectorError: if the endpoint fails the request.
        """
        if not holds:
            return []
        items = []
        for key, holder, lease, token, transfer_lease in holds:
            record_name(holder, lease, token)
            items.append([key.object_id, holder, lease, token, transfer_lease])
        body = json.dumps({"holds": items}).encode()
        answer = self._post("holders", {}, body)
        return [bool(x) for x in answer["found"]]

    def release(self, key: EndpointKey, holder: str) -> bool:
        """Drop ``holder``'s hold; the endpoint evicts the object if none is left.

        Raises:
            EndpointConnectorError: if the endpoint fails the request.
        """
        answer = self._post("release", {"key": key.object_id, "holder": holder}, None)
        return bool(answer["evicted"])

    def _post(
        self, path: str, params: dict[str, str], body: bytes | None
    ) -> dict[str, Any]:
        connector = self.connector
        try:
            status, error, data = connector._session.request(
                "POST", connector.address, path, params, body
            )
            client._check(status, error, data, connector.address, path)
        except client.RequestException as exc:
            raise connector._fail(path.capitalize(), exc) from exc
        answer: dict[str, Any] = json.loads(data)
        return answer
