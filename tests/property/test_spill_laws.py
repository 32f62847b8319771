"""Hypothesis state machine over the shm arena's memory budget and tiered spill.

Rules put (small, zero-copy sized, and larger than the whole budget), get,
evict, spill, restore, hold a zero-copy view and drop it, on a 1 MiB budget with
compression on or off, against a dict model. After every step: each modelled
key resolves to its bytes, each held view still shows its bytes, missing keys
stay missing, and the namespace's ``/dev/shm`` use stays within the budget.
Closing with ``clear`` leaves no segment and no spill file.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile

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

from proxystore.connectors.shm import SHM_DIR, SharedMemoryConnector, SharedMemoryKey

BUDGET = 2**20


def _data(seed: int, size: int) -> bytes:
    block = hashlib.sha256(seed.to_bytes(8, "little")).digest()
    return (block * (size // len(block) + 1))[:size]


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

    @rule(target=keys, seed=st.integers(0, 2**32), size=SIZES)
    def put(self, seed: int, size: int) -> SharedMemoryKey:
        data = _data(seed, size)
        key = self.c.put(data)
        assert key not in self.model
        self.model[key] = data
        return key

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
        if self.model.pop(key, None) is not None:
            self.gone.append(key)
        assert not self.c.exists(key)

    @rule(key=keys)
    def spill(self, key: SharedMemoryKey) -> None:
        moved = self.c.spill(key)
        if key not in self.model:
            assert not moved

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
