"""Ownership and borrowing: owners evict on drop, borrow rules, moves by pickle."""

from __future__ import annotations

import copy
import gc
import pickle
from collections.abc import Iterator
from typing import Any

import pytest

from proxystore.connectors.local import LocalConnector
from proxystore.proxy import Proxy, ProxyResolveError, is_resolved
from proxystore.store import Store
from proxystore.store.exceptions import ProxyStoreFactoryError
from proxystore.store.ref import (
    BaseRefProxyError,
    MutableBorrowError,
    OwnedProxy,
    ReferenceInvalidError,
    ReferenceNotOwnedError,
    RefMutProxy,
    RefProxy,
    borrow,
    clone,
    into_owned,
    mut_borrow,
    update,
)
from proxystore.store.scopes import mark_refs_out_of_scope
from proxystore.store.utils import get_key
from tests.integration.test_patterns_support import pattern_store


@pytest.fixture
def connector() -> LocalConnector:
    return LocalConnector()


@pytest.fixture
def store(connector: LocalConnector) -> Iterator[Store[LocalConnector]]:
    with pattern_store(connector, "ref") as store:
        yield store


def _owned(store: Store[Any], obj: Any) -> OwnedProxy[Any]:
    owned = store.owned_proxy(obj)
    assert type(owned) is OwnedProxy
    return owned


def test_error_tree() -> None:
    for exc in (MutableBorrowError, ReferenceInvalidError, ReferenceNotOwnedError):
        assert issubclass(exc, BaseRefProxyError)


def test_owner_evicts_when_dropped(store: Store[Any]) -> None:
    owned = _owned(store, [1, 2, 3])
    key = get_key(owned)
    assert owned == [1, 2, 3]
    assert store.exists(key)
    del owned
    gc.collect()
    assert not store.exists(key)


def test_into_owned_takes_only_plain_store_proxies(store: Store[Any]) -> None:
    proxy = store.proxy("x", evict=True)
    owned = into_owned(proxy)
    assert owned.__proxy_factory__.evict is False
    assert is_resolved(owned)
    assert owned == "x"
    with pytest.raises(ValueError, match="plain Proxy"):
        into_owned(owned)
    with pytest.raises(ProxyStoreFactoryError):
        into_owned(Proxy(lambda: 1))
    unresolved = into_owned(store.proxy("y"), populate_target=False)
    assert not is_resolved(unresolved)
    assert unresolved == "y"


def test_shared_borrows_coexist_and_release(store: Store[Any]) -> None:
    owned = _owned(store, {"a": 1})
    first = borrow(owned)
    second = borrow(owned, populate_target=False)
    assert type(first) is RefProxy
    assert first["a"] == 1
    assert not is_resolved(second)
    assert second["a"] == 1
    assert owned.__proxy_ref_count__ == 2
    with pytest.raises(MutableBorrowError, match="already has 2 shared"):
        mut_borrow(owned)
    del first, second
    gc.collect()
    assert owned.__proxy_ref_count__ == 0
    mutable = mut_borrow(owned)
    assert type(mutable) is RefMutProxy
    with pytest.raises(MutableBorrowError, match="mutably borrowed"):
        borrow(owned)
    with pytest.raises(MutableBorrowError):
        mut_borrow(owned)
    del mutable
    assert owned.__proxy_ref_mut_count__ == 0


def test_borrowing_non_owned_proxies_fails_without_resolving(
    store: Store[Any],
) -> None:
    proxy = store.proxy("x", populate_target=False)
    with pytest.raises(ReferenceNotOwnedError, match="only an OwnedProxy"):
        borrow(proxy)  # type: ignore[arg-type]
    with pytest.raises(ReferenceNotOwnedError):
        mut_borrow(proxy)  # type: ignore[arg-type]
    with pytest.raises(ReferenceNotOwnedError):
        clone(proxy)  # type: ignore[arg-type]
    assert not is_resolved(proxy)
    store.evict(get_key(proxy))


def test_update_writes_mutations_back(store: Store[Any]) -> None:
    owned = _owned(store, [1])
    mutable = mut_borrow(owned)
    mutable.append(2)
    with pytest.raises(MutableBorrowError, match="while it is borrowed"):
        update(owned)
    update(mutable)
    key = get_key(owned)
    del mutable
    store.cache.evict(key)
    assert store.get(key) == [1, 2]
    shared = borrow(owned)
    with pytest.raises(ReferenceNotOwnedError, match="RefProxy"):
        update(shared)  # type: ignore[arg-type]
    with pytest.raises(ReferenceNotOwnedError):
        update(Proxy(lambda: 0))  # type: ignore[arg-type]
    del shared
    owned.append(3)
    update(owned)
    store.cache.evict(key)
    assert store.get(key) == [1, 2, 3]


def test_update_of_unresolved_owner_is_a_noop(store: Store[Any]) -> None:
    owned = into_owned(store.proxy([1]), populate_target=False)
    update(owned)
    assert not is_resolved(owned)


def test_clone_copies_to_a_new_key(store: Store[Any]) -> None:
    owned = _owned(store, {"v": [1]})
    twin = clone(owned)
    assert get_key(twin) != get_key(owned)
    assert twin == owned
    twin["v"].append(2)
    assert owned["v"] == [1]
    unresolved = into_owned(store.proxy("s"), populate_target=False)
    assert clone(unresolved) == "s"


def test_copy_is_refused(store: Store[Any]) -> None:
    owned = _owned(store, 1.5)
    with pytest.raises(NotImplementedError, match="clone"):
        copy.copy(owned)
    with pytest.raises(NotImplementedError, match="clone"):
        copy.deepcopy(owned)


def test_pickling_moves_ownership(store: Store[Any]) -> None:
    owned = _owned(store, [4, 5])
    key = get_key(owned)
    moved = pickle.loads(pickle.dumps(owned))
    assert type(moved) is OwnedProxy
    with pytest.raises(ReferenceInvalidError, match="moved"):
        len(owned)
    with pytest.raises(ReferenceInvalidError):
        pickle.dumps(owned)
    del owned
    gc.collect()
    assert store.exists(key), "the invalid original must not evict"
    assert moved == [4, 5]
    del moved
    gc.collect()
    assert not store.exists(key)


def test_moving_a_borrowed_owner_is_refused(store: Store[Any]) -> None:
    owned = _owned(store, "o")
    ref = borrow(owned)
    with pytest.raises(MutableBorrowError, match="while it is borrowed"):
        pickle.dumps(owned)
    assert owned == "o"
    del ref


def test_pickled_borrow_keeps_owner_borrowed_until_local_drop(
    store: Store[Any],
) -> None:
    owned = _owned(store, "payload")
    ref = borrow(owned)
    remote = pickle.loads(pickle.dumps(ref))
    assert type(remote) is RefProxy
    assert remote == "payload"
    with pytest.raises(ReferenceInvalidError):
        str(ref)
    assert owned.__proxy_ref_count__ == 1
    del ref
    gc.collect()
    assert owned.__proxy_ref_count__ == 0
    del remote


def test_dropping_a_borrowed_owner_raises(store: Store[Any]) -> None:
    owned = _owned(store, "x")
    ref = borrow(owned)
    with pytest.raises(RuntimeError, match="borrows of it remain"):
        owned.__del__()
    del ref
    owned.__del__()
    with pytest.raises(ReferenceInvalidError):
        owned.upper()


def test_invalid_reference_raises_even_when_resolved(store: Store[Any]) -> None:
    owned = _owned(store, [1])
    assert is_resolved(owned)
    pickle.dumps(owned)  # moves it (and the pickle is dropped: nobody owns the key)
    assert not is_resolved(owned)
    with pytest.raises((ReferenceInvalidError, ProxyResolveError)):
        owned.append(2)
    store.evict(get_key(owned))


def test_owner_rereads_after_a_moved_mutable_borrow_ends(store: Store[Any]) -> None:
    owned = _owned(store, [1])
    mutable = mut_borrow(owned)
    # As if sent to another process: that copy changes the object and updates it.
    remote = pickle.loads(pickle.dumps(mutable))
    remote.append(2)
    update(remote)
    del remote
    assert owned == [1]  # the borrow has not ended: the owner's copy is unchanged
    mark_refs_out_of_scope(mutable)
    assert not is_resolved(owned)
    assert owned == [1, 2]


def test_in_process_mutable_borrow_shares_the_target(store: Store[Any]) -> None:
    owned = _owned(store, [1])
    mutable = mut_borrow(owned)
    mutable.append(2)
    del mutable
    # Not moved: the owner keeps its target (it saw the change, unwritten or not).
    assert is_resolved(owned)
    assert owned == [1, 2]
