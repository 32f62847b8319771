"""Static typing of the pattern modules: this file must pass ``mypy --strict``.

The functions are never called; pytest only imports the module (the one test at the
end checks that).

Decisions checked here:
- ``Store.future()`` returns ``Future[Any]`` (a call cannot name its result type:
  ``store.future[int]()`` is not valid syntax); annotating the variable narrows it,
  and then ``result()``/``proxy()``/``set_result()`` are typed.
- Borrowing keeps the target type: ``borrow(OwnedProxy[T]) -> RefProxy[T]``,
  ``mut_borrow -> RefMutProxy[T]``, ``clone -> OwnedProxy[T]``,
  ``into_owned(Proxy[T]) -> OwnedProxy[T]``.
- ``scopes.submit`` returns the future type of the submit function it wraps.
- ``StoreExecutor.submit`` is typed like ``Executor.submit``.
- Every lifetime satisfies the ``Lifetime`` protocol.
"""

from __future__ import annotations

from concurrent.futures import Future as ConcurrentFuture
from concurrent.futures import ThreadPoolExecutor
from typing import Any, assert_type

from proxystore.connectors.local import LocalConnector
from proxystore.proxy import Proxy
from proxystore.store import Store
from proxystore.store.executor import ProxyType, StoreExecutor
from proxystore.store.future import Future
from proxystore.store.lifetimes import (
    ContextLifetime,
    LeaseLifetime,
    Lifetime,
    StaticLifetime,
)
from proxystore.store.ref import (
    OwnedProxy,
    RefMutProxy,
    RefProxy,
    borrow,
    clone,
    into_owned,
    mut_borrow,
)
from proxystore.store.scopes import submit


def _futures(store: Store[LocalConnector]) -> None:
    assert_type(store.future(), Future[Any])
    typed: Future[list[int]] = store.future(polling_timeout=1)
    assert_type(typed.result(), list[int])
    assert_type(typed.result(timeout=0.5), list[int])
    assert_type(typed.proxy(), Proxy[list[int]])
    assert_type(typed.done(), bool)
    typed.set_result([1, 2])
    typed.set_result("wrong")  # type: ignore[arg-type]


def _ownership(store: Store[LocalConnector], plain: Proxy[str]) -> None:
    owned = store.owned_proxy([1.0], skip_nonproxiable=False)
    assert_type(owned, OwnedProxy[list[float]])
    assert_type(borrow(owned), RefProxy[list[float]])
    assert_type(mut_borrow(owned), RefMutProxy[list[float]])
    assert_type(clone(owned), OwnedProxy[list[float]])
    assert_type(into_owned(plain), OwnedProxy[str])
    borrow(plain)  # type: ignore[arg-type]


def _length(values: RefProxy[list[int]]) -> int:
    return len(values)


def _scopes(owned: OwnedProxy[list[int]], pool: ThreadPoolExecutor) -> None:
    future = submit(pool.submit, args=(_length, borrow(owned)))
    assert_type(future, ConcurrentFuture[Any])


def _executor(store: Store[LocalConnector]) -> None:
    executor = StoreExecutor(ThreadPoolExecutor(), store, ProxyType(list))
    assert_type(executor.submit(len, "abc"), ConcurrentFuture[int])


def _lifetimes(store: Store[LocalConnector]) -> None:
    lifetimes: list[Lifetime] = [
        ContextLifetime(store),
        LeaseLifetime(store, 1.0),
        StaticLifetime(),
    ]
    assert_type(lifetimes[0].done(), bool)


def test_module_imports() -> None:
    assert callable(_futures)
