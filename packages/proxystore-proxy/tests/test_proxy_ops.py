"""Operator forwarding: every group a proxy forwards, on both engines."""

from __future__ import annotations

import asyncio
import math
import operator
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import numpy as np
import pytest

from proxystore.proxy._pure import PurePythonProxyBase

BINARY: list[Callable[[Any, Any], Any]] = [
    operator.add,
    operator.sub,
    operator.mul,
    operator.truediv,
    operator.floordiv,
    operator.mod,
    divmod,
    pow,
    operator.lshift,
    operator.rshift,
    operator.and_,
    operator.xor,
    operator.or_,
    operator.lt,
    operator.le,
    operator.eq,
    operator.ne,
    operator.gt,
    operator.ge,
]
INPLACE: list[tuple[Callable[[Any, Any], Any], Callable[[Any, Any], Any]]] = [
    (operator.iadd, operator.add),
    (operator.isub, operator.sub),
    (operator.imul, operator.mul),
    (operator.itruediv, operator.truediv),
    (operator.ifloordiv, operator.floordiv),
    (operator.imod, operator.mod),
    (operator.ipow, operator.pow),
    (operator.ilshift, operator.lshift),
    (operator.irshift, operator.rshift),
    (operator.iand, operator.and_),
    (operator.ixor, operator.xor),
    (operator.ior, operator.or_),
]
UNARY: list[Callable[[Any], Any]] = [
    operator.neg,
    operator.pos,
    abs,
    operator.invert,
    int,
    float,
    complex,
    bool,
    str,
    operator.index,
    math.trunc,
    math.floor,
    math.ceil,
    round,
    hash,
]


@pytest.mark.parametrize("op", BINARY, ids=lambda op: op.__name__)
def test_binary_forward_and_reflected(make: Any, op: Callable[[Any, Any], Any]) -> None:
    assert op(make(7), 3) == op(7, 3)
    assert op(7, make(3)) == op(7, 3)
    assert op(make(7), make(3)) == op(7, 3)


@pytest.mark.parametrize(("iop", "op"), INPLACE, ids=lambda op: op.__name__)
def test_inplace_rebinds_target_and_returns_proxy(
    make: Any, iop: Callable[[Any, Any], Any], op: Callable[[Any, Any], Any]
) -> None:
    p = make(13)
    result = iop(p, 3)
    assert result is p
    assert p.__proxy_wrapped__ == op(13, 3)


def test_inplace_on_mutable_target_keeps_identity(make: Any) -> None:
    target = [1]
    p = make(target)
    p += [2]
    assert p.__proxy_wrapped__ is target
    assert target == [1, 2]


def test_matmul(make: Any) -> None:
    a = np.arange(4).reshape(2, 2)
    assert (make(a) @ a == a @ a).all()
    assert (a @ make(a) == a @ a).all()
    p = make(a.copy())
    p @= a
    assert (p.__proxy_wrapped__ == a @ a).all()


def test_ternary_pow(make: Any) -> None:
    assert pow(make(3), 4, 5) == pow(3, 4, 5)


def test_ternary_pow_reflected(make: Any, proxy_cls: Any) -> None:
    if issubclass(proxy_cls, PurePythonProxyBase) and sys.version_info < (3, 13):
        # Before 3.13, pow(a, b, c) never calls a Python-level __rpow__.
        with pytest.raises(TypeError):
            pow(3, make(4), 5)
    else:
        assert pow(3, make(4), 5) == pow(3, 4, 5)


@pytest.mark.parametrize("op", UNARY, ids=lambda op: op.__name__)
def test_unary(make: Any, op: Callable[[Any], Any]) -> None:
    expected = op(-7)
    result = op(make(-7))
    assert result == expected
    assert type(result) is type(expected)


def test_float_unary(make: Any) -> None:
    assert round(make(2.71828), 2) == 2.72
    assert math.trunc(make(-2.5)) == -2
    assert math.floor(make(-2.5)) == -3
    assert math.ceil(make(-2.5)) == -2
    assert complex(make(1.5)) == complex(1.5)


def test_index_falls_back_to_int_like_the_reference(make: Any) -> None:
    assert [10, 20, 30][make(1)] == 20
    assert operator.index(make(2.9)) == 2


def test_format(make: Any) -> None:
    assert f"{make(42):>5}" == "   42"
    assert f"{make(3.14159):.2f}" == "3.14"
    assert format(make("ab"), "^4") == " ab "


def test_containers(make: Any) -> None:
    target = [3, 1, 2]
    p = make(target)
    assert len(p) == 3
    assert 1 in p
    assert 9 not in p
    assert p[0] == 3
    assert p[-1] == 2
    assert p[1:] == [1, 2]
    p[0] = 5
    del p[1]
    assert target == [5, 2]
    assert list(iter(p)) == [5, 2]
    assert list(reversed(p)) == [2, 5]
    assert operator.length_hint(p) == 2
    assert sorted(p) == [2, 5]


def test_mapping(make: Any) -> None:
    p = make({"a": 1})
    p["b"] = 2
    assert p["b"] == 2
    del p["a"]
    assert dict(p) == {"b": 2}
    with pytest.raises(KeyError):
        p["missing"]


def test_length_hint_without_len(make: Any) -> None:
    p = make(iter(range(4)))
    assert operator.length_hint(p) == 4


def test_next_and_iterators(make: Any) -> None:
    p = make(iter([1, 2]))
    assert next(p) == 1
    assert next(p) == 2
    with pytest.raises(StopIteration):
        next(p)
    with pytest.raises(TypeError, match="not an iterator"):
        next(make([1]))


def test_call_str_bytes_dir_bool(make: Any) -> None:
    assert make(lambda x, y=1: x + y)(1, y=2) == 3
    assert str(make(12)) == "12"
    assert bytes(make(b"xy")) == b"xy"
    assert "append" in dir(make([]))
    assert not make([])
    assert make([0])


def test_fspath(make: Any, tmp_path: Any) -> None:
    assert os.fspath(make("a/b")) == "a/b"
    assert os.fspath(make(b"a/b")) == b"a/b"
    assert os.fspath(make(tmp_path)) == str(tmp_path)
    with pytest.raises(TypeError):
        os.fspath(make(1))


def test_hash_and_equality(make: Any) -> None:
    assert hash(make("x")) == hash("x")
    assert {make("x"): 1}["x"] == 1
    with pytest.raises(TypeError):
        hash(make([]))


def test_attributes_get_set_delete(make: Any) -> None:
    class Obj:
        """Obj doc."""

        def __init__(self) -> None:
            self.value = 1

    target = Obj()
    p = make(target)
    assert p.value == 1
    p.value = 2
    p.extra = 3
    assert target.value == 2
    assert target.extra == 3  # type: ignore[attr-defined]
    del p.extra
    assert not hasattr(target, "extra")
    with pytest.raises(AttributeError):
        p.missing  # noqa: B018
    assert p.__doc__ == "Obj doc."
    assert p.__module__ == Obj.__module__
    assert p.__dict__ is target.__dict__


def test_name_is_forwarded(make: Any) -> None:
    def function() -> None:
        pass

    p = make(function)
    assert p.__name__ == "function"
    p.__name__ = "renamed"
    assert function.__name__ == "renamed"


def test_context_manager(make: Any) -> None:
    events: list[str] = []

    @contextmanager
    def managed() -> Iterator[str]:
        events.append("enter")
        yield "value"
        events.append("exit")

    with make(managed()) as value:
        assert value == "value"
    assert events == ["enter", "exit"]


def test_async_protocols(make: Any) -> None:
    async def answer() -> int:
        return 42

    async def numbers() -> AsyncIterator[int]:
        yield 1
        yield 2

    @asynccontextmanager
    async def managed() -> AsyncIterator[str]:
        yield "value"

    async def main() -> tuple[int, list[int], str, int]:
        awaited = await make(answer())
        collected = [x async for x in make(numbers())]
        async with make(managed()) as value:
            pass
        it = make(numbers())
        first = await it.__anext__()
        await make(numbers()).aclose()
        return awaited, collected, value, first

    assert asyncio.run(main()) == (42, [1, 2], "value", 1)


def test_async_errors_name_the_target(make: Any) -> None:
    async def main() -> None:
        await make(1)

    with pytest.raises(TypeError, match="can't be used in 'await' expression"):
        asyncio.run(main())
    with pytest.raises(TypeError, match="not an async iterable"):
        make(1).__aiter__()
    with pytest.raises(TypeError, match="not an async iterator"):
        make(1).__anext__()


def test_unsupported_operations_raise_like_the_target(make: Any) -> None:
    with pytest.raises(TypeError):
        make("a") - 1
    with pytest.raises(TypeError):
        len(make(1))
    with pytest.raises(TypeError):
        make(1)[0]
    with pytest.raises(ZeroDivisionError):
        make(1) / 0


def test_numpy_target(make: Any) -> None:
    a = np.arange(6.0).reshape(2, 3)
    p = make(a)
    assert p.shape == (2, 3)
    assert (p + 1 == a + 1).all()
    assert (p[1] == a[1]).all()
    assert np.sum(p) == a.sum()
    assert isinstance(p, np.ndarray)
    np.testing.assert_array_equal(np.asarray(p), a)


def test_numpy_sees_the_target(make: Any) -> None:
    a = np.arange(3)
    assert (a + make(5)).dtype == (a + 5).dtype
    assert np.asarray(make(5)).dtype == np.asarray(5).dtype
    assert np.sin(make(0.0)) == 0.0
    assert (a == make("")).tolist() == (a == "").tolist()
    target = np.zeros(3)
    np.add(target, 1, out=make(target))
    assert target.tolist() == [1.0, 1.0, 1.0]
    alias = a
    a += make(1)
    assert alias is a
    assert a.tolist() == [1, 2, 3]
    np.testing.assert_array_equal(np.array(make([1, 2]), copy=True), [1, 2])
