"""Holders of DIM objects: counted by the server of the peer that stores them.

Each DIM server keeps a `proxystore.connectors.holders.HolderTable` next to its
objects and sweeps lapsed holds between requests (its loop wakes at least every
poll interval), so an object whose holders all died is evicted by the server
itself. A heartbeat is one ``HOLD`` request per peer carrying every hold the
process has there; a release is one ``RELEASE`` request.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from proxystore.connectors.dim.models import Op, Request
from proxystore.connectors.holders import Hold, record_name

if TYPE_CHECKING:
    from proxystore.connectors.dim._base import PeerConnector
    from proxystore.connectors.dim.models import DIMKey

__all__ = ["PeerHolders"]


class PeerHolders:
    """Reference counting for a DIM `PeerConnector` (see the module documentation).

    Args:
        connector: The connector whose objects are counted.
    """

    def __init__(self, connector: PeerConnector) -> None:
        self.connector = connector

    def hold(self, holds: Sequence[Hold[DIMKey]]) -> list[bool]:
        """Add or renew holds, one request per peer; return whether each object exists.

        Raises:
            ValueError: if a hold has neither a holder nor a token, a
                non-positive lease, or a key of another DIM type.
            ServerTimeoutError: if a peer does not answer in time.
            DIMServerError: if a peer fails the request.
        """
        groups: dict[tuple[str, int], list[int]] = {}
        for index, hold in enumerate(holds):
            self.connector._check(hold.key)
            record_name(hold.holder, hold.lease, hold.token)
            groups.setdefault((hold.key.peer_host, hold.key.peer_port), []).append(
                index
            )
        found = [False] * len(holds)
        for (host, port), indices in groups.items():
            body = json.dumps(
                [[holds[i].key.obj_id, *holds[i][1:]] for i in indices]
            ).encode()
            (response,) = self.connector._send(
                host, port, [Request(Op.HOLD, "", (body,))], 0
            )
            answer = json.loads(b"".join(bytes(p) for p in response.payload))
            for i, ok in zip(indices, answer, strict=True):
                found[i] = bool(ok)
        return found

    def release(self, key: DIMKey, holder: str) -> bool:
        """Drop ``holder``'s hold; the peer evicts the object if none is left.

        Raises:
            ServerTimeoutError: if the peer does not answer in time.
            DIMServerError: if the peer fails the request.
        """
        self.connector._check(key)
        (response,) = self.connector._send(
            key.peer_host,
            key.peer_port,
            [Request(Op.RELEASE, key.obj_id, (holder.encode(),))],
            0,
        )
        return b"".join(bytes(p) for p in response.payload) == b"1"
