"""Hypothesis state machine over the shm arena's memory budget and tiered spill.

Rules put (small, zero-copy sized, and larger than the whole budget), get,
evict, spill, restore, hold a zero-copy view and drop it, on a 1 MiB budget with
compression on or off, against a dict model. After every step: each modelled
key resolves to its bytes, each held view still shows its bytes, missing keys
stay missing, and the namespace's ``/dev/shm`` use stays within the budget.
Closing with ``clear`` leaves no segment and no spill file.

Puts may carry a time-to-live (30 s, or one that never ends in a run), and a
rule moves the connector's clock a minute on: then every object whose deadline
passed reads as missing wherever it was spilled, the others still resolve, and
a sweep leaves the expired objects nowhere (arena slot nor spill file).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
import time
from typing import Any

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

from proxystore.connectors import _arena_ttl, _spill, _sweeper, shm
from proxystore.connectors.shm import SHM_DIR, SharedMemoryConnector, SharedMemoryKey

BUDGET = 2**20


def _data(seed: int, size: int) -> bytes:
    block = hashlib.sha256(seed.to_bytes(8, "little")).digest()
    return (block * (size // len(block) + 1))[:size]


class _Clock:
    """The ``time`` module with ``time_ns`` moved ``offset`` nanoseconds on."""

    def __init__(self) -> None:
        self.offset = 0

    def time_ns(self) -> int:
        return time.time_ns() + self.offset

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


#: Modules whose deadlines the machine's clock drives.
_TIMED = (_arena_ttl, _spill, _sweeper, shm)

SIZES = st.one_of(
    st.integers(0, 4096),
    st.integers(256 * 1024, 400 * 1024),
    st.just(BUDGET + 4096),  # never fits: goes straight down
)


class SpillMachine(RuleBasedStateMachine):
    """The connector against ``{key: bytes}``."""

    keys = Bundle("keys")

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory(prefix="ps-spill-law-")
        self.connector: SharedMemoryConnector | None = None
        self.model: dict[SharedMemoryKey, bytes] = {}
        self.gone: list[SharedMemoryKey] = []
        self.views: list[tuple[memoryview, bytes]] = []
        self.deadlines: dict[SharedMemoryKey, int] = {}
        self.expired: set[SharedMemoryKey] = set()
        self.clock = _Clock()
        for module in _TIMED:
            module.time = self.clock  # type: ignore[attr-defined]

    @initialize(compress=st.booleans())
    def start(self, compress: bool) -> None:
        self.connector = SharedMemoryConnector(
            f"spilllaw_{secrets.token_hex(5)}",
            budget=BUDGET,
            arena_slots=64,
            spill_directory=os.path.join(self.tmp.name, "spill"),
            spill_compress="zstd" if compress else None,
        )

    @property
    def c(self) -> SharedMemoryConnector:
        assert self.connector is not None
        return self.connector

    @rule(
        target=keys,
        seed=st.integers(0, 2**32),
        size=SIZES,
        ttl=st.sampled_from([None, None, 30.0, 1e6]),
    )
    def put(self, seed: int, size: int, ttl: float | None) -> SharedMemoryKey:
        data = _data(seed, size)
        key = self.c.put(data, ttl=ttl)
        assert key not in self.model
        self.model[key] = data
        if ttl is not None:
            self.deadlines[key] = self.clock.time_ns() + int(ttl * 1e9)
        return key

    @rule()
    def advance_clock(self) -> None:
        self.clock.offset += 60 * 10**9
        now = self.clock.time_ns()
        for key, deadline in list(self.deadlines.items()):
            if deadline <= now:
                del self.deadlines[key]
                self.expired.add(key)
                if self.model.pop(key, None) is not None:
                    self.gone.append(key)
                assert self.c.get(key) is None
                assert not self.c.exists(key)
                assert self.c.ttl(key) is None

    @rule()
    def sweep(self) -> None:
        self.c.sweep()
        arena = self.c._arena()
        assert arena is not None
        # What is left (in memory or any tier) is exactly what the model holds
        # (evicted or expired objects leave nothing).
        counts = _spill.resident(arena)
        slotted = [k for k in self.model if self.c._slot(k) is not None]
        assert sum(n for n, _ in counts.values()) == len(slotted)

    @rule(key=keys)
    def get(self, key: SharedMemoryKey) -> None:
        got = self.c.get(key)
        if key in self.model:
            assert got is not None
            assert bytes(got) == self.model[key]
        else:
            assert got is None

    @rule(key=consumes(keys))
    def evict(self, key: SharedMemoryKey) -> None:
        self.c.evict(key)
        self.deadlines.pop(key, None)
        if self.model.pop(key, None) is not None:
            self.gone.append(key)
        assert not self.c.exists(key)

    @rule(key=keys)
    def spill(self, key: SharedMemoryKey) -> None:
        moved = self.c.spill(key)
        if key not in self.model and key not in self.expired:
            assert not moved  # (an expired object may be dropped: True)

    @rule(key=keys)
    def restore(self, key: SharedMemoryKey) -> None:
        back = self.c.restore(key)
        if key not in self.model:
            assert not back

    @rule(key=keys)
    def hold(self, key: SharedMemoryKey) -> None:
        got = self.c.get(key)
        if key in self.model and isinstance(got, memoryview) and len(self.views) < 3:
            self.views.append((got, self.model[key]))

    @precondition(lambda self: bool(self.views))
    @rule()
    def drop_view(self) -> None:
        view, _ = self.views.pop(0)
        view.release()

    @invariant()
    def every_object_resolves(self) -> None:
        for key, data in self.model.items():
            assert self.c.exists(key)
            got = self.c.get(key)
            assert got is not None
            assert bytes(got) == data
            del got
        for key in self.gone[-5:]:
            assert self.c.get(key) is None

    @invariant()
    def views_never_change(self) -> None:
        for view, data in self.views:
            assert bytes(view) == data

    @invariant()
    def shm_within_budget(self) -> None:
        used = sum(
            os.stat(os.path.join(SHM_DIR, name)).st_blocks * 512
            for name in self.c.segments()
        )
        assert used <= BUDGET

    def teardown(self) -> None:
        for module in _TIMED:
            module.time = time  # type: ignore[attr-defined]
        for view, _ in self.views:
            view.release()
        self.views.clear()
        try:
            if self.connector is None:
                return
            moved = self.c.spill_metrics()["0:directory"]
            event(f"spilled: {moved['objects_spilled'] > 0}")
            event(f"restored: {moved['objects_restored'] > 0}")
            self.c.close(clear=True)
            assert self.c.segments() == []
            assert not os.path.exists(os.path.join(self.tmp.name, "spill"))
        finally:
            self.tmp.cleanup()


SpillMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None
)
TestSpillMachine = SpillMachine.TestCase
