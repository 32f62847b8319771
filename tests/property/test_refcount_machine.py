"""State machine: holders join, resolve, drop and die; producers release.

The system under test is a backend made of a dict of objects and a
`HolderTable` on a clock the machine controls (what a DIM server or endpoint
runs), driven with the messages processes send: holds with their lease,
transfers when a proxy is pickled (queued in the sender's order, so a sender's
release never overtakes its transfer), conversions when a copy is unpickled
(possibly several copies of one pickle, all carrying its token),
releases when a process drops its last proxy, and heartbeats. Live processes
beat every interval; a dying process loses its queued messages and stops
beating.

The model keeps, per object, the records that should be there (holders and
transfers with deadlines, consumed tokens) and checks after every step:

* safety: a live process that holds an object (its hold was confirmed), and any
  registered, unconsumed, unexpired transfer, can still resolve it; a
  conversion that lands while any record of the object is live (one more copy
  of a pickle within an interval of the last conversion of its token) finds it;
* liveness: once no record of an object is live, the next sweep evicts it (so
  an object goes at most one lease after its last holder died).

Creation holds are queued too (sent by the heartbeat thread), so a copy may be
converted, and even released, before the producer's own hold or its transfer
reaches the backend: the tombstone the conversion leaves must keep the object.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
)

from proxystore.connectors import _holders_shm
from proxystore.connectors.holders import LINGER, Hold, HolderTable
from proxystore.connectors.shm import SharedMemoryConnector, SharedMemoryKey

INTERVAL = 1.0
LEASE = 2 * INTERVAL
TRANSFER_LEASE = 5.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TableBackend:
    """A DIM server's or endpoint's state: objects and a `HolderTable`."""

    pid_liveness = False

    def __init__(self, clock: Clock, alive: set[str]) -> None:
        self.table = HolderTable(clock)
        self.data: dict[str, bytes] = {}

    def put(self, obj: str) -> None:
        self.data[obj] = obj.encode()

    def exists(self, obj: str) -> bool:
        return obj in self.data

    def hold(self, obj: str, holder: str, lease: float, token: str | None) -> bool:
        if obj not in self.data:
            return False
        self.table.hold(obj, holder, lease, token, TRANSFER_LEASE)
        return True

    def release(self, obj: str, holder: str) -> bool:
        # What a server does: evict when the table says so and it is there.
        return self.table.release(obj, holder) and self.data.pop(obj, None) is not None

    def sweep(self) -> None:
        for obj in self.table.expired():
            self.data.pop(obj, None)

    def close(self) -> None:
        pass


class ShmBackend:
    """The shared-memory arena and its hold files, on the machine's clock.

    The module's wall clock and pid check are replaced for the run: deadlines
    (file mtimes) follow the machine's clock, and a holder's "pid" is alive
    while the machine says its process is.
    """

    pid_liveness = True

    def __init__(self, clock: Clock, alive: set[str]) -> None:
        namespace = f"machine{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self.connector = SharedMemoryConnector(
            namespace, arena=True, arena_size=1 << 20, arena_slots=64
        )
        self.holders = _holders_shm.SharedMemoryHolders(self.connector)
        self.keys: dict[str, SharedMemoryKey] = {}

        class _Time:
            @staticmethod
            def time() -> float:
                return 1_000_000.0 + clock.now

        def _alive(pid: int) -> bool:
            return any(p.startswith(f"{pid}-") for p in alive)

        self._alive_fn = _alive
        # The module's clock and pid check, and no rate limit on sweeps.
        patches = {"time": _Time, "_alive": _alive, "_SWEEP_EVERY": -1.0}
        self._saved = {name: getattr(_holders_shm, name) for name in patches}
        for name, value in patches.items():
            setattr(_holders_shm, name, value)

    def put(self, obj: str) -> None:
        self.keys[obj] = self.connector.put(obj.encode())

    def exists(self, obj: str) -> bool:
        return self.connector.exists(self.keys[obj])

    def hold(self, obj: str, holder: str, lease: float, token: str | None) -> bool:
        hold = Hold(self.keys[obj], holder, lease, token, TRANSFER_LEASE)
        return self.holders.hold([hold])[0]

    def release(self, obj: str, holder: str) -> bool:
        return self.holders.release(self.keys[obj], holder)

    def sweep(self) -> None:
        assert getattr(_holders_shm, "_alive") is self._alive_fn  # noqa: B009
        self.holders.sweep_holds()

    def close(self) -> None:
        for name, value in self._saved.items():
            setattr(_holders_shm, name, value)
        self.connector.close(clear=True)


class RefcountMachine(RuleBasedStateMachine):
    objects = Bundle("objects")
    tokens = Bundle("tokens")
    backend_class: Any = TableBackend

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.alive: set[str] = set()
        self.backend = self.backend_class(self.clock, self.alive)
        self.last_beat: dict[str, float] = {}
        # process -> objects it holds (confirmed holds only)
        self.holding: dict[str, set[str]] = {}
        # process -> queued messages (FIFO): ("transfer", obj, token) | ("release", obj)
        self.queue: dict[str, list[tuple[str, ...]]] = {}
        # model records: obj -> {record: deadline} (holders, t: transfers,
        # x: tombstones of conversions that overtook their transfer)
        self.records: dict[str, dict[str, float]] = {}
        self.counter = 0

    # ------------------------------------------------------------ helpers
    def _new(self, prefix: str) -> str:
        # "<n>-<kind>": a process's name starts with a number its "pid".
        self.counter += 1
        return f"{self.counter}-{prefix}"

    def teardown(self) -> None:
        self.backend.close()

    def _server_hold(
        self, obj: str, holder: str, lease: float, token: str | None
    ) -> bool:
        return bool(self.backend.hold(obj, holder, lease, token))

    def _exists(self, obj: str) -> bool:
        return bool(self.backend.exists(obj))

    def _model_hold(
        self, obj: str, holder: str, lease: float, token: str | None
    ) -> None:
        recs = self.records[obj]
        now = self.clock.now
        if not holder:
            assert token is not None
            # A conversion got there first: its tombstone stood for this.
            if recs.pop("x:" + token, None) is None:
                recs["t:" + token] = now + lease
        else:
            recs[holder] = now + lease
            if token:
                # The token's trace covers further copies of the same pickle
                # for one interval; a copy after a live trace needs no tombstone.
                seen = recs.get("c:" + token, 0.0)
                recs["c:" + token] = max(now + lease * LINGER, seen)
                if recs.pop("t:" + token, None) is None and seen <= now:
                    recs["x:" + token] = now + TRANSFER_LEASE

    def _record_live(self, record: str, deadline: float) -> bool:
        if deadline <= self.clock.now:
            return False
        if record.startswith(("t:", "x:", "c:")) or not self.backend.pid_liveness:
            return True
        return record in self.alive  # one machine: a dead pid releases at once

    def _live(self, obj: str) -> bool:
        return any(
            self._record_live(r, d) for r, d in self.records.get(obj, {}).items()
        )

    def _sweep(self) -> None:
        self.backend.sweep()

    def _send(self, process: str, message: tuple[str, ...]) -> None:
        kind, obj = message[0], message[1]
        if kind == "hold":
            if self._exists(obj):
                self._model_hold(obj, process, LEASE, None)
            self._server_hold(obj, process, LEASE, None)
        elif kind == "transfer":
            token = message[2]
            if self._exists(obj):
                self._model_hold(obj, "", TRANSFER_LEASE, token)
            self._server_hold(obj, "", TRANSFER_LEASE, token)
        else:
            tracked = self._exists(obj)
            self.records.get(obj, {}).pop(process, None)
            expected = tracked and not self._live(obj)
            evicted = self.backend.release(obj, process)
            # A release evicts exactly when no live record is left.
            assert evicted == expected, f"release of {obj} by {process}"
            if evicted:
                self.records[obj] = {}

    # ------------------------------------------------------------ rules
    @rule(target=objects)
    def produce(self) -> str:
        process = self._new("p")
        obj = self._new("o")
        self.alive.add(process)
        self.last_beat[process] = self.clock.now
        self.queue[process] = []
        self.backend.put(obj)
        self.records[obj] = {}
        # The creation hold is queued, like everything else a process sends.
        self.queue[process].append(("hold", obj))
        self.holding[process] = {obj}
        return obj

    def _holders_of(self, obj: str) -> list[str]:
        return sorted(p for p in self.alive if obj in self.holding.get(p, set()))

    @rule(target=tokens, obj=objects, data=st.data())
    def pickle_proxy(self, obj: str, data: Any) -> tuple[str, str]:
        senders = self._holders_of(obj)
        if not senders:
            return (obj, "")
        sender = data.draw(st.sampled_from(senders))
        token = self._new("k")
        self.queue[sender].append(("transfer", obj, token))
        return (obj, token)

    @rule(item=consumes(tokens), existing=st.booleans(), data=st.data())
    def unpickle(self, item: tuple[str, str], existing: bool, data: Any) -> None:
        self._unpickle(item, existing, data)

    @rule(item=tokens, existing=st.booleans(), data=st.data())
    def unpickle_copy(self, item: tuple[str, str], existing: bool, data: Any) -> None:
        # The same pickled bytes unpickled by another process (a broadcast, a
        # retried task): one token, converted again.
        self._unpickle(item, existing, data)

    def _unpickle(self, item: tuple[str, str], existing: bool, data: Any) -> None:
        obj, token = item
        if not token:
            return
        # A conversion that lands while the object has a live record (a
        # holder, the transfer, its tombstone, or the trace of an earlier copy's
        # conversion) must find it.
        covered = self._live(obj)
        candidates = sorted(self.alive)
        if existing and candidates:
            process = data.draw(st.sampled_from(candidates))
        else:
            process = self._new("w")
            self.alive.add(process)
            self.last_beat[process] = self.clock.now
            self.queue[process] = []
        found = self._server_hold(obj, process, LEASE, token)
        assert found or not covered, f"a copy of {obj} converted too late"
        if found:
            self._model_hold(obj, process, LEASE, token)
            self.holding.setdefault(process, set()).add(obj)

    @rule(data=st.data())
    def deliver(self, data: Any) -> None:
        senders = sorted(p for p in self.alive if self.queue.get(p))
        if not senders:
            return
        sender = data.draw(st.sampled_from(senders))
        self._send(sender, self.queue[sender].pop(0))

    @rule(data=st.data())
    def drop(self, data: Any) -> None:
        pairs = sorted((p, o) for p in self.alive for o in self.holding.get(p, set()))
        if not pairs:
            return
        process, obj = data.draw(st.sampled_from(pairs))
        self.holding[process].discard(obj)
        self.queue[process].append(("release", obj))

    @rule(data=st.data())
    def die(self, data: Any) -> None:
        if not self.alive:
            return
        process = data.draw(st.sampled_from(sorted(self.alive)))
        self.alive.discard(process)
        self.queue[process] = []  # queued messages die with it
        self.holding[process] = set()

    @rule(obj=objects, data=st.data())
    def resolve(self, obj: str, data: Any) -> None:
        holders = self._holders_of(obj)
        if holders:
            data.draw(st.sampled_from(holders))
            assert self._exists(obj), f"a live holder of {obj} cannot resolve it"

    @rule(dt=st.floats(min_value=0.01, max_value=INTERVAL * 0.99))
    def advance(self, dt: float) -> None:
        # Live processes beat every interval: renew before time moves on. A
        # heartbeat thread sends its queue first, then the renewals.
        for process in sorted(self.alive):
            if self.clock.now + dt - self.last_beat[process] >= INTERVAL * 0.99:
                while self.queue[process]:
                    self._send(process, self.queue[process].pop(0))
                for obj in sorted(self.holding.get(process, set())):
                    if self._exists(obj):
                        self._server_hold(obj, process, LEASE, None)
                        self._model_hold(obj, process, LEASE, None)
                self.last_beat[process] = self.clock.now
        self.clock.now += dt
        self._sweep()

    # ------------------------------------------------------------ invariants
    @invariant()
    def safety(self) -> None:
        for obj, recs in self.records.items():
            live = [r for r, d in recs.items() if self._record_live(r, d)]
            if live:
                assert self._exists(obj), f"{obj} evicted while {live} hold it"

    @invariant()
    def liveness(self) -> None:
        self._sweep()
        for obj, recs in self.records.items():
            if recs and not self._live(obj):
                assert not self._exists(obj), f"{obj} kept with no live holder"


RefcountMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None
)
TestRefcountMachine = RefcountMachine.TestCase


class ShmRefcountMachine(RefcountMachine):
    """The same machine over the shared-memory arena's hold files."""

    backend_class = ShmBackend


ShmRefcountMachine.TestCase.settings = settings(
    max_examples=30, stateful_step_count=30, deadline=None
)
TestShmRefcountMachine = ShmRefcountMachine.TestCase
