"""Code written for the reference, type-checked as a downstream user would.

This file must pass ``mypy --strict`` unchanged (issue 14): it uses only the public
API the way the reference's documentation does. `packages/proxystore-store/tests/
test_store_typing_downstream.py` also runs mypy on it alone and checks what
``reveal_type`` prints for a proxy.
"""

from __future__ import annotations

from typing import assert_type

from proxystore.connectors.local import LocalConnector
from proxystore.proxy import Proxy, extract
from proxystore.store import Store
from proxystore.store.factory import PollingStoreFactory, StoreFactory
from proxystore.store.ref import OwnedProxy, RefProxy, borrow


def summed(store: Store[LocalConnector]) -> int:
    # `Proxy` is covariant and `extract` keeps the target type.
    p = store.proxy([1, 2, 3])
    return sum(extract(p))


def borrowed(store: Store[LocalConnector]) -> RefProxy[list[int]]:
    # `owned_proxy` of a plain object is an `OwnedProxy[T]`, not a union.
    return borrow(store.owned_proxy([1, 2, 3]))


def covariant(p: Proxy[bool]) -> Proxy[int]:
    return p


def factories(
    polling: PollingStoreFactory[LocalConnector, str],
    plain: StoreFactory[LocalConnector, bytes],
) -> tuple[str, bytes]:
    return polling(), plain.resolve()


def owned_types(store: Store[LocalConnector]) -> None:
    assert_type(store.owned_proxy({"a": 1}), OwnedProxy[dict[str, int]])
    assert_type(extract(store.proxy("text")), str)
