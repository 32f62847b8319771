"""`proxystore.factory`: the Factory base class and the two simple factories."""

from __future__ import annotations

import functools
import pickle
from typing import Any

import pytest

from proxystore.factory import Factory, FactoryProtocol, LambdaFactory, SimpleFactory
from proxystore.proxy import Proxy, extract


def test_factory_base_is_abstract() -> None:
    with pytest.raises(NotImplementedError, match="must define __init__"):
        Factory()

    class NoResolve(Factory[int]):
        def __init__(self) -> None:
            pass

    with pytest.raises(NotImplementedError, match="must define resolve"):
        NoResolve()()


def test_call_delegates_to_resolve() -> None:
    class Seven(Factory[int]):
        def __init__(self) -> None:
            self.calls = 0

        def resolve(self) -> int:
            self.calls += 1
            return 7

    factory = Seven()
    assert factory() == 7
    assert factory.calls == 1


def test_simple_factory_returns_and_pickles_its_object() -> None:
    obj = {"a": [1, 2]}
    factory = SimpleFactory(obj)
    assert factory() is obj
    assert factory.resolve() is obj
    assert pickle.loads(pickle.dumps(factory))() == obj


def test_lambda_factory_calls_target_each_time() -> None:
    calls: list[tuple[Any, ...]] = []

    def build(*args: Any, **kwargs: Any) -> list[Any]:
        calls.append((args, kwargs))
        return [*args, *kwargs.values()]

    factory = LambdaFactory(build, 1, 2, c=3)
    assert factory() == [1, 2, 3]
    assert factory.resolve() == [1, 2, 3]
    assert len(calls) == 2
    assert pickle.loads(pickle.dumps(LambdaFactory(sum, [1, 2])))() == 3


def test_factories_drive_proxies() -> None:
    assert extract(Proxy(SimpleFactory("x"))) == "x"
    assert Proxy(LambdaFactory(list, range(3))) == [0, 1, 2]


def test_any_zero_argument_callable_is_a_factory() -> None:
    factories: list[FactoryProtocol[int]] = [
        SimpleFactory(1),
        LambdaFactory(int, "2"),
        lambda: 3,
        functools.partial(int, "4"),
    ]
    assert [extract(Proxy(f)) for f in factories] == [1, 2, 3, 4]
