"""Scopes: borrows handed to tasks end when the task is done."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from proxystore.connectors.local import LocalConnector
from proxystore.store import Store
from proxystore.store.ref import (
    OwnedProxy,
    ReferenceInvalidError,
    RefMutProxy,
    RefProxy,
    borrow,
    mut_borrow,
)
from proxystore.store.scopes import FutureWithCallback, mark_refs_out_of_scope, submit
from tests.integration.test_patterns_support import pattern_store


@pytest.fixture
def store() -> Iterator[Store[LocalConnector]]:
    with pattern_store(LocalConnector(), "scope") as store:
        yield store


def _total(values: RefProxy[list[int]], *, scale: RefMutProxy[list[int]]) -> int:
    scale.append(sum(values))
    return int(sum(values) * scale[0])


def test_submit_marks_borrows_out_of_scope_when_done(store: Store[Any]) -> None:
    owned: OwnedProxy[list[int]] = store.owned_proxy([1, 2, 3], skip_nonproxiable=False)
    factor: OwnedProxy[list[int]] = store.owned_proxy([2], skip_nonproxiable=False)
    ref = borrow(owned)
    mut = mut_borrow(factor)
    with ThreadPoolExecutor(1) as pool:
        future = submit(pool.submit, args=(_total, ref), kwargs={"scale": mut})
        assert isinstance(future, FutureWithCallback)
        assert future.result() == 12
    # The done-callback ran (the pool is shut down): borrows are released.
    assert owned.__proxy_ref_count__ == 0
    assert factor.__proxy_ref_mut_count__ == 0
    with pytest.raises(ReferenceInvalidError):
        len(ref)
    with pytest.raises(ReferenceInvalidError):
        len(mut)
    assert factor == [2, 6]


def test_custom_ref_types_are_registered(store: Store[Any]) -> None:
    class MyRef(RefProxy[Any]):
        __slots__ = ()

    owned: OwnedProxy[str] = store.owned_proxy("x", skip_nonproxiable=False)
    ref = borrow(owned)
    custom = MyRef(owned.__proxy_factory__, owner=owned)
    object.__setattr__(owned, "__proxy_ref_count__", 2)
    done: Future[None] = Future()
    submit(lambda *_: done, args=(ref, custom), register_custom_refs=(MyRef,))
    assert owned.__proxy_ref_count__ == 2
    done.set_result(None)
    assert owned.__proxy_ref_count__ == 0


def test_mark_out_of_scope_twice_is_harmless(store: Store[Any]) -> None:
    owned: OwnedProxy[int] = store.owned_proxy(7, skip_nonproxiable=False)
    ref = borrow(owned)
    mark_refs_out_of_scope(ref)
    mark_refs_out_of_scope(ref)
    assert owned.__proxy_ref_count__ == 0


def test_ownerless_valid_ref_cannot_be_marked(store: Store[Any]) -> None:
    owned: OwnedProxy[int] = store.owned_proxy(7, skip_nonproxiable=False)
    orphan = RefProxy(owned.__proxy_factory__)
    with pytest.raises(RuntimeError, match="no owner"):
        mark_refs_out_of_scope(orphan)


def test_out_of_scope_resolved_ref_refuses_every_use(store: Store[Any]) -> None:
    owned = store.owned_proxy([1, 2, 3], skip_nonproxiable=False)
    ref = borrow(owned)
    assert len(ref) == 3  # resolved before the task
    with ThreadPoolExecutor(1) as pool:
        assert submit(pool.submit, args=(sum, ref)).result() == 6
    assert owned.__proxy_ref_count__ == 0
    for use in (
        lambda: isinstance(ref, list),
        lambda: hash(ref),
        lambda: len(ref),
        lambda: ref[0],
        lambda: ref.copy(),
    ):
        with pytest.raises(ReferenceInvalidError):
            use()
    assert repr(ref).startswith("<RefProxy")  # repr never resolves


def test_register_custom_refs_takes_references(store: Store[Any]) -> None:
    owned = store.owned_proxy([1], skip_nonproxiable=False)
    nested = {"inside": borrow(owned)}
    with ThreadPoolExecutor(1) as pool:
        future = submit(
            pool.submit,
            args=(len, nested),
            register_custom_refs=list(nested.values()),
        )
        assert future.result() == 1
    assert owned.__proxy_ref_count__ == 0
    with pytest.raises(ReferenceInvalidError):
        isinstance(nested["inside"], list)
