"""Book-keeping of the clients registered with a relay server."""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from typing import Any, Generic, TypeVar

__all__ = ["Client", "ClientManager"]

UserT = TypeVar("UserT")


def _now() -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.UTC)


@dataclasses.dataclass(frozen=True, eq=False)
class Client(Generic[UserT]):
    """A registered client: who it is, whose it is, and its websocket.

    Attributes:
        name: Name the client registered with.
        uuid: UUID the client registered with.
        user: The authenticated user owning the client.
        websocket: The server side of the client's websocket.
        created: When the client registered (UTC).
    """

    name: str
    uuid: uuid.UUID
    user: UserT
    websocket: Any
    created: datetime.datetime = dataclasses.field(default_factory=_now)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Client):
            return NotImplemented
        return bool(self.uuid == other.uuid and self.user == other.user)

    def __hash__(self) -> int:
        return hash(self.uuid)

    def __repr__(self) -> str:
        created = self.created.strftime("%Y-%m-%d %H:%M:%S %Z")
        return (
            f"Client(name={self.name}, uuid={self.uuid}, user={self.user!r}, "
            f"created={created})"
        )


class ClientManager(Generic[UserT]):
    """Registered clients, found by UUID or by websocket.

    A UUID belongs to at most one client; a websocket may hold several clients
    (the relay bounds how many). Forgetting a websocket forgets all of them, so a
    connection that goes away leaves no registration behind.
    """

    def __init__(self) -> None:
        self._by_uuid: dict[uuid.UUID, Client[UserT]] = {}
        self._by_websocket: dict[int, dict[uuid.UUID, Client[UserT]]] = {}

    def add_client(self, client: Client[UserT]) -> None:
        """Register `client`, replacing any client with the same UUID."""
        old = self._by_uuid.get(client.uuid)
        if old is not None:
            self._forget_on_socket(old)
        self._by_uuid[client.uuid] = client
        self._by_websocket.setdefault(id(client.websocket), {})[client.uuid] = client

    def get_clients(self) -> list[Client[UserT]]:
        """Return every registered client."""
        return list(self._by_uuid.values())

    def get_client_by_uuid(self, uuid: uuid.UUID) -> Client[UserT] | None:
        """Return the client registered under `uuid`, if any."""
        return self._by_uuid.get(uuid)

    def get_client_by_websocket(self, websocket: Any) -> Client[UserT] | None:
        """Return the first client registered on `websocket`, if any."""
        clients = self._by_websocket.get(id(websocket))
        return next(iter(clients.values()), None) if clients else None

    def get_clients_by_websocket(self, websocket: Any) -> list[Client[UserT]]:
        """Return every client registered on `websocket`, oldest first."""
        return list(self._by_websocket.get(id(websocket), {}).values())

    def remove_client(self, client: Client[UserT]) -> None:
        """Forget `client` (no error if it is unknown)."""
        if self._by_uuid.get(client.uuid) is client:
            del self._by_uuid[client.uuid]
        self._forget_on_socket(client)

    def remove_websocket(self, websocket: Any) -> list[Client[UserT]]:
        """Forget every client registered on `websocket` and return them."""
        clients = list(self._by_websocket.pop(id(websocket), {}).values())
        for client in clients:
            if self._by_uuid.get(client.uuid) is client:
                del self._by_uuid[client.uuid]
        return clients

    def _forget_on_socket(self, client: Client[UserT]) -> None:
        clients = self._by_websocket.get(id(client.websocket))
        if clients is not None and clients.get(client.uuid) is client:
            del clients[client.uuid]
            if not clients:
                del self._by_websocket[id(client.websocket)]
