"""Static typing of `proxystore.proxy` / `proxystore.factory` (checked by mypy).

Each `assert_type` is a compile-time check; running this file under pytest also
executes them (they are no-ops at runtime) so the examples stay valid code.
"""

from __future__ import annotations

from typing import Any, assert_type

from proxystore.factory import Factory, FactoryProtocol, LambdaFactory, SimpleFactory
from proxystore.proxy import (
    FactoryType,
    Proxy,
    ProxyLocker,
    ProxyOr,
    extract,
    get_factory,
    is_resolved,
    resolve,
)


def _total(values: ProxyOr[list[int]]) -> int:
    return sum(values)


def test_proxy_generics() -> None:
    p = Proxy(SimpleFactory([1]))
    assert_type(p, Proxy[list[int]])
    assert_type(extract(p), list[int])
    assert_type(get_factory(p), FactoryType[list[int]])
    assert_type(is_resolved(p), bool)
    assert_type(resolve(p), None)
    assert_type(Proxy(lambda: "s"), Proxy[str])
    assert_type(Proxy(LambdaFactory(dict[str, int])), Proxy[dict[str, int]])
    assert_type(Proxy(SimpleFactory(1), target=1, cache_defaults=True), Proxy[int])
    assert_type(p.__proxy_wrapped__, list[int])
    assert_type(p.__proxy_resolved__, bool)

    # Attributes and operators type-check without a plugin (as Any).
    assert_type(p.append, Any)
    assert_type(p + [2], Any)  # noqa: RUF005
    assert_type(1 + Proxy(lambda: 1), Any)
    assert_type(p[0], Any)
    assert_type(len(p), int)
    assert_type(f"{p}", str)

    locker = ProxyLocker(p)
    assert_type(locker, ProxyLocker[list[int]])
    assert_type(locker.unlock(), Proxy[list[int]])

    assert _total(p) == 1
    assert _total([1, 2]) == 3


def test_factory_generics() -> None:
    simple = SimpleFactory(b"x")
    assert_type(simple, SimpleFactory[bytes])
    assert_type(simple(), bytes)
    assert_type(simple.resolve(), bytes)
    lazy = LambdaFactory(int, "3")
    assert_type(lazy(), int)
    as_base: Factory[bytes] = simple
    as_protocol: FactoryProtocol[bytes] = simple
    as_callable: FactoryType[int] = lazy
    assert as_base() == as_protocol() == b"x"
    assert as_callable() == 3
