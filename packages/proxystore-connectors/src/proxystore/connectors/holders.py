"""Holders of stored objects: the server side of distributed reference counting.

A refcounted object is kept while at least one *hold* on it is live. A hold is a
name (a holder) and a deadline; holders renew their holds before the deadline
(heartbeats), so a holder that dies simply stops renewing and its hold lapses. The
object is evicted as soon as it has holds and none of them is live: when the last
holder releases it, or when the last live hold expires.

Three kinds of hold share one table (see `Hold`):

* a *process hold* (``holder`` names a process): renewed by that process's
  heartbeat thread, released when the process drops its last proxy of the object;
* a *transfer hold* (``holder`` empty, ``token`` set): registered when a proxy is
  pickled, it covers the proxy while it is in flight, and is consumed when the
  receiving process converts it into its own process hold (a hold with the same
  ``token``), or lapses after its lease;
* a *tombstone*: a conversion that arrives before its transfer hold (the two
  travel from different processes) leaves the token behind, so the late
  transfer hold is dropped when it arrives. Until then (at most the transfer's
  lease) the tombstone stands for the transfer still on its way: it keeps the
  object, because the sender, which has not sent its transfer yet, still holds
  the object (its own hold may even still be in its queue);
* a *trace* of a converted transfer (``c:<token>``): the same pickled bytes may
  be unpickled by several processes (a broadcast, a retried task), and all of
  them carry one token. The first conversion consumes the transfer hold; the
  trace it leaves keeps the object for one heartbeat interval of the converter
  (`LINGER` of its lease), renewed by each later conversion of the token, so a
  copy whose conversion is still on its way when the others have already
  released is covered. A later copy finds the trace and leaves no tombstone
  (its transfer has already arrived).

`HolderTable` is the in-memory table that the in-process connectors, the DIM
servers and the endpoints keep; Redis and the shared-memory connector keep the
same records in their own storage, with the same rules.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, Generic, NamedTuple, Protocol, TypeVar, runtime_checkable

__all__ = [
    "CONVERTED",
    "LINGER",
    "TOMBSTONE_LEASE",
    "TRANSFER",
    "Hold",
    "HolderTable",
    "RefCountingConnector",
    "Release",
    "counting",
    "record_name",
]

KeyT = TypeVar("KeyT")

#: Prefix of a transfer hold's record (followed by its token).
TRANSFER: Final = "t:"
#: Prefix of a tombstone's record (followed by its token).
_TOMBSTONE: Final = "x:"
#: Prefix of a converted transfer's trace (followed by its token).
CONVERTED: Final = "c:"
#: Seconds a tombstone stands when a conversion does not say (see `Hold`).
TOMBSTONE_LEASE: Final = 60.0
#: Fraction of a conversion's lease for which its token's trace stands (one
#: heartbeat interval: a lease is two).
LINGER: Final = 0.5


class Hold(NamedTuple, Generic[KeyT]):
    """One hold to add or renew (see the module documentation).

    Attributes:
        key: Key of the object.
        holder: Name of the holding process; empty for a transfer hold.
        lease: Seconds from now until the hold lapses unless renewed.
        token: A transfer's token: with an empty ``holder`` it registers the
            transfer hold; with a ``holder`` it converts that transfer (consumes
            it) into the holder's own hold.
        transfer_lease: For a conversion, the lease the transfer was pickled
            with: how long a tombstone stands for a transfer that has not
            arrived yet (0: `TOMBSTONE_LEASE`).
    """

    key: KeyT
    holder: str
    lease: float
    token: str | None = None
    transfer_lease: float = 0.0


@runtime_checkable
class RefCountingConnector(Protocol):
    """A connector that counts the holders of its objects where they live.

    Holds are kept by the backend (a Redis hash and the object's own expiry, a
    server's table, files next to the shared-memory objects), so a holder that
    dies stops renewing and its hold lapses without any other process noticing.
    Decisions to evict are atomic on the backend: an object is never evicted
    while a live hold remains, and a hold is never added to an evicted object.
    """

    def hold(self, holds: Sequence[Hold[Any]]) -> list[bool]:
        """Add or renew holds (any number, in one message where the backend can).

        Returns:
            For each hold, whether its object exists (a hold on a missing object
            is not recorded).
        """
        ...

    def release(self, key: Any, holder: str) -> bool:
        """Drop ``holder``'s hold on ``key``'s object.

        The object is evicted when it has no live hold left, also when none
        was ever recorded (a creation hold still queued behind the release's
        own process: only a process that made or received a refcounted proxy
        releases it, and every message it queued before goes first).

        A backend may also offer ``apply(ops)``: `Hold` and `Release` items in
        order, in one message, answering what each would.

        Returns:
            Whether this release evicted the object.
        """
        ...


# Connectors whose holders are counted by a companion object (so the connector
# modules, edited for other reasons, stay as they are): class path -> "module:class"
# of the companion, built with the connector.
_COMPANIONS: Final = {
    "proxystore.connectors.redis.RedisConnector": (
        "proxystore.connectors._holders_redis:RedisHolders"
    ),
    "proxystore.connectors.shm.SharedMemoryConnector": (
        "proxystore.connectors._holders_shm:SharedMemoryHolders"
    ),
    "proxystore.connectors.dim.zmq.ZeroMQConnector": (
        "proxystore.connectors.dim._holders:PeerHolders"
    ),
    "proxystore.connectors.dim.ucx.UCXConnector": (
        "proxystore.connectors.dim._holders:PeerHolders"
    ),
    "proxystore.connectors.dim.margo.MargoConnector": (
        "proxystore.connectors.dim._holders:PeerHolders"
    ),
    "proxystore.connectors.endpoint.EndpointConnector": (
        "proxystore.connectors._holders_endpoint:EndpointHolders"
    ),
}


def counting(connector: object) -> RefCountingConnector | None:
    """Return what counts the holders of ``connector``'s objects, or ``None``.

    That is the connector itself when it implements `RefCountingConnector`, or
    the companion object of a connector known to support reference counting
    through one (Redis, shared memory, DIM peers, endpoints).

    Raises:
        ValueError: if the connector's configuration rules it out (e.g. a Redis
            Cluster).
    """
    if isinstance(connector, RefCountingConnector):
        return connector
    for cls in type(connector).__mro__:
        target = _COMPANIONS.get(f"{cls.__module__}.{cls.__qualname__}")
        if target is not None:
            module, _, name = target.partition(":")
            companion: RefCountingConnector = getattr(
                importlib.import_module(module), name
            )(connector)
            return companion
    return None


class Release(NamedTuple, Generic[KeyT]):
    """One hold to drop (for connectors that take holds and releases together).

    Attributes:
        key: Key of the object.
        holder: Name of the holding process.
    """

    key: KeyT
    holder: str


def record_name(holder: str, lease: float, token: str | None) -> str:
    """Check one hold and return the name of the record it writes.

    That is its holder, or for a transfer hold ``t:<token>``.

    Raises:
        ValueError: if the hold has neither a holder nor a token, or its lease
            is not positive.
    """
    if not lease > 0:
        raise ValueError(f"A hold's lease must be positive, got {lease!r}.")
    if holder:
        return holder
    if not token:
        raise ValueError("A hold needs a holder or a transfer token.")
    return TRANSFER + token


class HolderTable:
    """Holds by object id, with deadlines on a clock that can be replaced in tests.

    Not thread-safe: callers serialize access (the servers run one request at a
    time; in-process users take their own lock).

    Args:
        clock: Monotonic clock in seconds (default `time.monotonic`).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._holds: dict[str, dict[str, float]] = {}
        self._next_check = float("inf")

    def __len__(self) -> int:
        return len(self._holds)

    def __contains__(self, obj_id: object) -> bool:
        return obj_id in self._holds

    def holders(self, obj_id: str) -> dict[str, float]:
        """Return the live holds of ``obj_id`` (record name to deadline)."""
        now = self.clock()
        return {
            name: deadline
            for name, deadline in self._holds.get(obj_id, {}).items()
            if deadline > now
        }

    def hold(
        self,
        obj_id: str,
        holder: str,
        lease: float,
        token: str | None,
        transfer_lease: float = 0.0,
    ) -> None:
        """Add or renew one hold on ``obj_id`` (the caller checked it exists).

        Raises:
            ValueError: if neither ``holder`` nor ``token`` is given, or ``lease``
                is not positive.
        """
        name = record_name(holder, lease, token)
        now = self.clock()
        records = self._holds.setdefault(obj_id, {})
        if not holder:
            if records.pop(_TOMBSTONE + str(token), None) is not None:
                return  # converted before it arrived: nothing to cover any more
            records[name] = now + lease
        else:
            records[holder] = now + lease
            if token:
                # A copy converts: the transfer (or, for copies of the same
                # pickle, its trace) lingers for one interval, see `LINGER`.
                linger = now + lease * LINGER
                seen = records.get(CONVERTED + token, 0.0)
                records[CONVERTED + token] = max(linger, seen)
                # A live trace: an earlier copy converted, the transfer arrived
                # or its tombstone stands already.
                if records.pop(TRANSFER + token, None) is None and seen <= now:
                    tomb = now + (transfer_lease or TOMBSTONE_LEASE)
                    records[_TOMBSTONE + token] = tomb
                    self._next_check = min(self._next_check, tomb)
                self._next_check = min(self._next_check, linger)
        self._next_check = min(self._next_check, now + lease)

    def release(self, obj_id: str, holder: str) -> bool:
        """Drop ``holder``'s hold; return whether ``obj_id`` must now be evicted.

        That is when no live hold is left, including when none was recorded
        (see `RefCountingConnector.release`); when this returns ``True`` the
        table has already forgotten the object.
        """
        records = self._holds.get(obj_id)
        if records is None:
            return True
        records.pop(holder, None)
        if self._live(records, self.clock()):
            return False
        del self._holds[obj_id]
        return True

    def forget(self, obj_id: str) -> None:
        """Forget every hold of ``obj_id`` (its object was evicted another way)."""
        self._holds.pop(obj_id, None)

    def expired(self) -> list[str]:
        """Forget and return the objects whose holds have all lapsed.

        Cheap when nothing can have lapsed yet (the earliest deadline is kept).
        """
        now = self.clock()
        if now < self._next_check:
            return []
        gone = []
        soonest = float("inf")
        for obj_id, records in self._holds.items():
            live = [d for d in records.values() if d > now]
            if live:
                soonest = min(soonest, *live)
            else:
                gone.append(obj_id)
        for obj_id in gone:
            del self._holds[obj_id]
        self._next_check = soonest
        return gone

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._holds))

    @staticmethod
    def _live(records: dict[str, float], now: float) -> bool:
        return any(d > now for d in records.values())
