"""Borrow rules as a state machine: the implementation against a model.

The model of one owner: alive or not, its value, its shared borrows and at most one
mutable borrow. Any interleaving of borrow / mut_borrow / drop / move / update must
raise exactly when the model says the rules are broken, and the store must hold the
owner's key exactly while the owner is alive.
"""

from __future__ import annotations

import pickle
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
)

from proxystore.connectors.local import LocalConnector
from proxystore.store import Store
from proxystore.store.ref import (
    MutableBorrowError,
    OwnedProxy,
    ReferenceInvalidError,
    RefMutProxy,
    RefProxy,
    borrow,
    mut_borrow,
    update,
)
from proxystore.store.scopes import mark_refs_out_of_scope
from proxystore.store.utils import get_key


@dataclass
class OwnerModel:
    proxy: OwnedProxy[list[int]]
    value: list[int]
    alive: bool = True
    shared: set[int] = field(default_factory=set)
    mutable: int | None = None


class OwnershipMachine(RuleBasedStateMachine):
    owners = Bundle("owners")
    refs = Bundle("refs")

    def __init__(self) -> None:
        super().__init__()
        self.connector = LocalConnector()
        self.store: Store[Any] = Store(
            f"sm-{uuid.uuid4().hex}", self.connector, register=True
        )
        self.models: dict[int, OwnerModel] = {}
        # ref handle -> (owner handle, proxy)
        self.live_refs: dict[int, tuple[int, RefProxy[list[int]]]] = {}
        self.next_handle = 0

    def _handle(self) -> int:
        self.next_handle += 1
        return self.next_handle

    @rule(target=owners, value=st.lists(st.integers(), max_size=3))
    def create(self, value: list[int]) -> int:
        handle = self._handle()
        proxy = self.store.owned_proxy(list(value), skip_nonproxiable=False)
        self.models[handle] = OwnerModel(proxy, list(value))
        return handle

    @rule(target=refs, owner=owners, mutable=st.booleans())
    def take_borrow(self, owner: int, mutable: bool) -> int:
        model = self.models[owner]
        handle = self._handle()
        expected_error: type[Exception] | None = None
        if not model.alive:
            expected_error = ReferenceInvalidError
        elif model.mutable is not None or (mutable and model.shared):
            expected_error = MutableBorrowError
        if expected_error is not None:
            with pytest.raises(expected_error):
                (mut_borrow if mutable else borrow)(model.proxy)
            return -1
        ref = (mut_borrow if mutable else borrow)(model.proxy)
        assert type(ref) is (RefMutProxy if mutable else RefProxy)
        if mutable:
            model.mutable = handle
        else:
            model.shared.add(handle)
        self.live_refs[handle] = (owner, ref)
        return handle

    def _forget(self, handle: int) -> tuple[OwnerModel, RefProxy[list[int]]] | None:
        entry = self.live_refs.pop(handle, None)
        if entry is None:
            return None
        owner, ref = entry
        model = self.models[owner]
        model.shared.discard(handle)
        if model.mutable == handle:
            model.mutable = None
        return model, ref

    @rule(handle=consumes(refs), scoped=st.booleans())
    def release(self, handle: int, scoped: bool) -> None:
        forgotten = self._forget(handle)
        if forgotten is None:
            return
        _, ref = forgotten
        if scoped:
            mark_refs_out_of_scope(ref)
            try:
                len(ref)
            except ReferenceInvalidError:
                pass
            else:
                raise AssertionError("a reference out of scope is still usable")
        del ref

    @rule(handle=refs, item=st.integers())
    def write_through_mutable(self, handle: int, item: int) -> None:
        entry = self.live_refs.get(handle)
        if entry is None or type(entry[1]) is not RefMutProxy:
            return
        owner, ref = entry
        ref.append(item)
        update(ref)  # type: ignore[arg-type]
        self.models[owner].value.append(item)

    @rule(owner=owners)
    def drop_owner(self, owner: int) -> None:
        model = self.models[owner]
        if not model.alive:
            return
        borrowed = bool(model.shared) or model.mutable is not None
        try:
            model.proxy.__del__()
        except RuntimeError:
            assert borrowed
            return
        assert not borrowed
        model.alive = False

    @rule(owner=owners)
    def move_owner(self, owner: int) -> None:
        model = self.models[owner]
        if not model.alive:
            return
        borrowed = bool(model.shared) or model.mutable is not None
        try:
            moved = pickle.loads(pickle.dumps(model.proxy))
        except MutableBorrowError:
            assert borrowed
            return
        assert not borrowed
        assert type(moved) is OwnedProxy
        old = model.proxy
        model.proxy = moved
        try:
            len(old)
        except ReferenceInvalidError:
            pass
        else:
            raise AssertionError("a moved owner is still usable")

    @invariant()
    def store_holds_exactly_live_owners(self) -> None:
        for model in self.models.values():
            key = get_key(model.proxy)
            assert self.store.connector.exists(key) == model.alive
            if model.alive:
                self.store.cache.evict(key)
                assert self.store.get(key) == model.value
                assert model.proxy.__proxy_ref_count__ == len(model.shared)
                assert model.proxy.__proxy_ref_mut_count__ == (
                    model.mutable is not None
                )

    def teardown(self) -> None:
        for handle in list(self.live_refs):
            self._forget(handle)
        for model in self.models.values():
            if model.alive:
                model.proxy.__del__()
        leftover = dict(self.connector._store)
        self.store.close()
        assert leftover == {}, "the machine left keys behind"


TestOwnership = OwnershipMachine.TestCase


def test_model_covers_a_known_sequence() -> None:
    # A fixed run of the machine, so a refactor cannot silently drop a rule.
    machine = OwnershipMachine()
    owner = machine.create([1])
    shared = machine.take_borrow(owner, mutable=False)
    assert machine.take_borrow(owner, mutable=True) == -1
    machine.drop_owner(owner)  # refused: borrowed
    machine.release(shared, scoped=True)
    mutable = machine.take_borrow(owner, mutable=True)
    machine.write_through_mutable(mutable, 2)
    machine.release(mutable, scoped=False)
    machine.store_holds_exactly_live_owners()
    machine.move_owner(owner)
    machine.drop_owner(owner)
    machine.store_holds_exactly_live_owners()
    machine.teardown()
