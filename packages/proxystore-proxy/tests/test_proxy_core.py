"""Resolution, identity, errors, pickling, copying, helpers, subclass contract."""

from __future__ import annotations

import copy
import gc
import json
import pickle
import subprocess
import sys
import threading
import weakref
from pathlib import Path
from typing import Any

import pytest

from proxystore.factory import SimpleFactory
from proxystore.proxy import (
    Proxy,
    ProxyLocker,
    ProxyOr,
    ProxyResolveError,
    extract,
    get_factory,
    is_resolved,
    resolve,
)
from proxystore.proxy._property import ProxyProperty, proxy_property
from proxystore.proxy._proxy import _RESOLVING, PurePythonProxy, compiled


class CountingFactory:
    """Picklable factory that counts its calls (per instance)."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        return self.value


class FailingFactory:
    def __call__(self) -> Any:
        raise ValueError("backend unreachable")


# ----------------------------------------------------------------- resolution
def test_lazy_and_resolves_once(proxy_cls: Any) -> None:
    factory = CountingFactory([1, 2])
    p = proxy_cls(factory)
    assert factory.calls == 0
    assert not is_resolved(p)
    assert len(p) == 2
    assert p.count(1) == 1
    assert p == [1, 2]
    assert factory.calls == 1
    assert is_resolved(p)


def test_repr_never_resolves(proxy_cls: Any) -> None:
    factory = CountingFactory("x")
    p = proxy_cls(factory)
    assert "with factory" in repr(p)
    assert "wrapping" not in repr(p)
    assert factory.calls == 0
    resolve(p)
    assert "wrapping 'x'" in repr(p)
    assert repr(p).startswith(f"<{proxy_cls.__name__} at 0x")


def test_helpers(proxy_cls: Any) -> None:
    factory = CountingFactory({"a": 1})
    p = proxy_cls(factory)
    assert get_factory(p) is factory
    assert factory.calls == 0
    resolve(p)
    resolve(p)
    assert factory.calls == 1
    assert extract(p) is factory.value


def test_target_keyword_is_born_resolved(proxy_cls: Any) -> None:
    factory = CountingFactory(None)
    target = [1]
    p = proxy_cls(factory, target=target)
    assert is_resolved(p)
    assert extract(p) is target
    assert factory.calls == 0


def test_none_target_is_cached(proxy_cls: Any) -> None:
    factory = CountingFactory(None)
    p = proxy_cls(factory)
    assert p == None  # noqa: E711 - the comparison is what is forwarded
    assert is_resolved(p)
    assert extract(p) is None
    assert factory.calls == 1


def test_delete_wrapped_unresolves(proxy_cls: Any) -> None:
    factory = CountingFactory([1])
    p = proxy_cls(factory)
    resolve(p)
    del p.__proxy_wrapped__
    assert not is_resolved(p)
    assert p == [1]
    assert factory.calls == 2


def test_set_wrapped_replaces_target(proxy_cls: Any) -> None:
    p = proxy_cls(lambda: 1)
    p.__proxy_wrapped__ = 5
    assert p == 5
    assert is_resolved(p)


def test_factory_must_be_callable(proxy_cls: Any) -> None:
    with pytest.raises(TypeError, match="Factory must be callable"):
        proxy_cls(42)


def test_resolve_error_wraps_cause_and_retries(proxy_cls: Any) -> None:
    p = proxy_cls(FailingFactory())
    with pytest.raises(ProxyResolveError, match="backend unreachable") as info:
        len(p)
    assert isinstance(info.value.cause, ValueError)
    assert info.value.__cause__ is info.value.cause
    assert not is_resolved(p)
    with pytest.raises(ProxyResolveError):
        p.anything  # noqa: B018 - attribute access resolves too


def test_resolve_error_without_factory(proxy_cls: Any) -> None:
    p = proxy_cls.__new__(proxy_cls)
    with pytest.raises(ProxyResolveError, match="no factory") as info:
        extract(p)
    assert isinstance(info.value.cause, AttributeError)


def test_resolve_error_pickles() -> None:
    error = ProxyResolveError("failed", ValueError("x"))
    copied = pickle.loads(pickle.dumps(error))
    assert str(copied) == "failed"
    assert isinstance(copied.cause, ValueError)


def test_base_exception_from_factory_is_not_wrapped(proxy_cls: Any) -> None:
    def interrupted() -> Any:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract(proxy_cls(interrupted))


# ----------------------------------------------------------------- identity
def test_type_and_isinstance(proxy_cls: Any) -> None:
    p = proxy_cls(lambda: [1])
    assert type(p) is proxy_cls
    assert isinstance(p, proxy_cls)
    assert isinstance(p, list)
    assert p.__class__ is list
    assert not isinstance(p, dict)


def test_default_class_and_hash_avoid_resolution(proxy_cls: Any) -> None:
    p = proxy_cls(SimpleFactory("abc"), target="abc", cache_defaults=True)
    q = pickle.loads(pickle.dumps(p))
    assert not is_resolved(q)
    assert isinstance(q, str)
    q = pickle.loads(pickle.dumps(p))
    assert hash(q) == hash("abc")
    assert not is_resolved(q)
    assert q == "abc"


def test_default_hash_error_is_raised(proxy_cls: Any) -> None:
    p = proxy_cls(SimpleFactory([1]), target=[1], cache_defaults=True)
    q = pickle.loads(pickle.dumps(p))
    with pytest.raises(TypeError, match="unhashable"):
        hash(q)
    assert not is_resolved(q)


def test_weakref(proxy_cls: Any) -> None:
    p = proxy_cls(lambda: 1)
    ref = weakref.ref(p)
    assert ref() is p
    del p
    gc.collect()
    assert ref() is None


def test_class_attributes_stay_on_proxy() -> None:
    assert Proxy.__module__ == "proxystore.proxy"
    assert Proxy[int] is not None
    assert "lazy" in (Proxy.__doc__ or "")


def test_singletons_compare_but_are_not_identical(proxy_cls: Any) -> None:
    p = proxy_cls(lambda: True)
    assert p == True  # noqa: E712 - the comparison is what is forwarded
    assert p is not True


def test_nested_proxy(proxy_cls: Any) -> None:
    inner = proxy_cls(lambda: [1, 2])
    outer = proxy_cls(lambda: inner)
    assert len(outer) == 2
    assert isinstance(outer, list)
    assert outer + [3] == [1, 2, 3]  # noqa: RUF005 - tests + on a proxy


# ----------------------------------------------------------------- pickling, copying
def test_pickle_sends_only_the_factory(proxy_cls: Any) -> None:
    lock = threading.Lock()  # unpicklable: pickling would fail if it were sent
    p = proxy_cls(SimpleFactory(1), target=lock)
    q = pickle.loads(pickle.dumps(p))
    assert type(q) is proxy_cls
    assert not is_resolved(q)
    assert q == 1


def test_pickle_never_resolves(proxy_cls: Any) -> None:
    factory = CountingFactory(3)
    p = proxy_cls(factory)
    data = pickle.dumps(p)
    assert factory.calls == 0
    assert pickle.loads(data) == 3


class _Local:
    pass


@pytest.mark.parametrize("target", [b"x", 3, [1], _Local()])
def test_pickle_keeps_the_default_class(proxy_cls: Any, target: Any) -> None:
    p = proxy_cls(SimpleFactory(target), cache_defaults=True, target=target)
    # Builtin classes travel by name, other classes as classes.
    sent = p.__reduce__()[1][1]
    assert sent == (type(target) if type(target) is _Local else type(target).__name__)
    q = pickle.loads(pickle.dumps(p))
    assert object.__getattribute__(q, "__proxy_default_class__") is type(target)
    assert not is_resolved(q)
    assert isinstance(q, type(target))


def test_pickled_unknown_builtin_name_is_refused() -> None:
    from proxystore.proxy._proxy import _proxy_trampoline

    with pytest.raises(TypeError, match="Unknown builtin class 'nope'"):
        _proxy_trampoline(SimpleFactory(1), "nope", None)


def test_pickle_is_small() -> None:
    p = Proxy(SimpleFactory(1))
    assert len(pickle.dumps(p)) < 200


def test_copy_of_resolved_proxy_copies_the_target(proxy_cls: Any) -> None:
    target = [[1], [2]]
    p = proxy_cls(lambda: target)
    resolve(p)
    shallow = copy.copy(p)
    deep = copy.deepcopy(p)
    assert type(shallow) is list
    assert shallow == target
    assert shallow is not target
    assert shallow[0] is target[0]
    assert deep == target
    assert deep[0] is not target[0]


def test_copy_of_unresolved_proxy_is_unresolved_proxy(proxy_cls: Any) -> None:
    factory = CountingFactory([1])
    p = proxy_cls(factory)
    shallow = copy.copy(p)
    deep = copy.deepcopy(p)
    assert type(shallow) is proxy_cls
    assert type(deep) is proxy_cls
    assert get_factory(shallow) is factory
    assert get_factory(deep) is not factory
    assert factory.calls == 0
    assert deep == [1]


# ----------------------------------------------------------------- helpers
def test_proxy_locker(proxy_cls: Any) -> None:
    factory = CountingFactory(5)
    locker = ProxyLocker(proxy_cls(factory))
    with pytest.raises(AttributeError, match="unlock"):
        locker._proxy  # noqa: B018
    restored = pickle.loads(pickle.dumps(locker))
    assert factory.calls == 0
    assert not is_resolved(restored.unlock())
    assert restored.unlock() == 5
    assert locker.unlock() == 5


def test_proxy_or_alias() -> None:
    def total(values: ProxyOr[list[int]]) -> int:
        return sum(values)

    assert total([1, 2]) == 3
    assert total(Proxy(SimpleFactory([1, 2]))) == 3
    assert ProxyOr.__name__ == "ProxyOr"


def test_proxy_property() -> None:
    class Owner:
        def __init__(self) -> None:
            self.value = 1

        def _get_name(self) -> str:
            return f"instance-{self.value}"

        def _set_name(self, value: str) -> None:
            self.value = int(value)

        name = proxy_property(_get_name, default="class-level").setter(_set_name)

        bare = proxy_property(lambda self: "bare")

    owner = Owner()
    assert Owner.name == "class-level"
    assert owner.name == "instance-1"
    owner.name = "7"
    assert owner.name == "instance-7"
    assert owner.bare == "bare"
    assert Owner.bare is None
    with pytest.raises(AttributeError):
        del owner.name
    assert isinstance(Owner.__dict__["name"], ProxyProperty)


# ----------------------------------------------------------------- subclass contract
def _ref_proxy_class(base: Any) -> Any:
    """A subclass shaped like the store's OwnedProxy/RefProxy."""

    class RefLike(base):  # type: ignore[misc]
        __slots__ = ("__proxy_valid__", "deleted")

        def __init__(self, factory: Any, **kwargs: Any) -> None:
            super().__init__(factory, **kwargs)
            object.__setattr__(self, "__proxy_valid__", True)
            object.__setattr__(self, "deleted", [])

        @property
        def __proxy_wrapped__(self) -> Any:
            if not object.__getattribute__(self, "__proxy_valid__"):
                raise RuntimeError("reference is no longer valid")
            return super().__proxy_wrapped__

        @__proxy_wrapped__.setter
        def __proxy_wrapped__(self, target: Any) -> None:
            object.__setattr__(self, "__proxy_target__", target)

        @__proxy_wrapped__.deleter
        def __proxy_wrapped__(self) -> None:
            object.__delattr__(self, "__proxy_target__")

        def __reduce__(self) -> Any:
            # Ownership moves to the receiver: this side becomes invalid.
            object.__setattr__(self, "__proxy_valid__", False)
            return (str, ("moved",))

        def __copy__(self) -> Any:
            raise NotImplementedError("no copies")

        def __deepcopy__(self, memo: dict[int, Any]) -> Any:
            raise NotImplementedError("no deep copies")

    return RefLike


def test_subclass_resolution_goes_through_overridden_property(proxy_cls: Any) -> None:
    cls = _ref_proxy_class(proxy_cls)
    p = cls(lambda: [1, 2])
    object.__setattr__(p, "__proxy_valid__", False)
    for use in (len, str, hash, lambda p: p.count, lambda p: p + [3]):  # noqa: RUF005
        with pytest.raises(RuntimeError, match="no longer valid"):
            use(p)
    object.__setattr__(p, "__proxy_valid__", True)
    assert len(p) == 2
    p += [3]
    assert extract(p) == [1, 2, 3]
    # Invalidation of a resolved proxy = drop the target (the fast path reads it).
    object.__setattr__(p, "__proxy_valid__", False)
    del p.__proxy_wrapped__
    with pytest.raises(RuntimeError):
        len(p)


def test_subclass_overrides_take_effect(proxy_cls: Any) -> None:
    cls = _ref_proxy_class(proxy_cls)
    p = cls(SimpleFactory(1))
    assert p.deleted == []  # slot of the subclass: read on the proxy itself
    p.deleted = ["x"]
    assert object.__getattribute__(p, "deleted") == ["x"]
    with pytest.raises(NotImplementedError, match="no copies"):
        copy.copy(p)
    with pytest.raises(NotImplementedError, match="no deep copies"):
        copy.deepcopy(p)
    assert pickle.loads(pickle.dumps(p)) == "moved"
    with pytest.raises(RuntimeError):
        len(p)  # the __reduce__ override invalidated the original


def test_subclass_del_runs(proxy_cls: Any) -> None:
    seen: list[bool] = []

    class WithDel(proxy_cls):  # type: ignore[misc]
        __slots__ = ()

        def __del__(self) -> None:
            seen.append(is_resolved(self))

    p = WithDel(lambda: 1)
    assert p == 1
    del p
    gc.collect()
    assert seen == [True]


def test_subclass_with_dict_forwards_unknown_attributes(proxy_cls: Any) -> None:
    class Loose(proxy_cls):  # type: ignore[misc]
        pass

    class Obj:
        pass

    target = Obj()
    p = Loose(lambda: target)
    p.x = 1
    assert target.x == 1  # type: ignore[attr-defined]
    assert p.__dict__ is target.__dict__


# ----------------------------------------------------------------- engines, imports
def test_compiled_engine_is_used_when_built() -> None:
    built = list(Path(Proxy.__init__.__code__.co_filename).parent.glob("_cproxy*.so"))
    assert compiled() == bool(built)
    assert issubclass(PurePythonProxy, object)


def test_import_pulls_no_third_party_modules() -> None:
    code = (
        "import sys, json\n"
        "before = set(sys.modules)\n"
        "import proxystore.proxy, proxystore.factory\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    )
    roots = {name.split(".")[0] for name in json.loads(out.stdout)}
    allowed = set(sys.stdlib_module_names) | {"proxystore", "typing_extensions"}
    assert "proxystore" in roots
    assert roots <= allowed, roots - allowed


def test_cached_hash_error_does_not_grow_or_pin_the_proxy(proxy_cls: Any) -> None:
    p = proxy_cls(SimpleFactory([1]), target=[1], cache_defaults=True)
    error = object.__getattribute__(p, "__proxy_default_hash__")
    assert error.__traceback__ is None
    q = pickle.loads(pickle.dumps(p))
    depths = []
    for _ in range(3):
        with pytest.raises(TypeError) as info:
            hash(q)
        depths.append(len(list(_walk(info.value.__traceback__))))
    assert depths[0] == depths[-1]
    ref = weakref.ref(p)
    del p
    assert ref() is None  # no cycle through the stored exception


def _walk(tb: Any) -> Any:
    while tb is not None:
        yield tb
        tb = tb.tb_next


def test_class_assignment_is_forwarded(proxy_cls: Any) -> None:
    class A:
        pass

    class B:
        pass

    a: Any = A()
    p = proxy_cls(lambda: a)
    p.__class__ = B
    assert type(a) is B
    assert isinstance(p, B)
    assert type(p) is proxy_cls


def test_concurrent_first_use_calls_factory_once(proxy_cls: Any) -> None:
    started = threading.Event()
    release = threading.Event()
    calls: list[int] = []

    def slow_factory() -> list[int]:
        calls.append(1)
        started.set()
        release.wait(10)
        return [1, 2, 3]

    p = proxy_cls(slow_factory)
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(len(p))) for _ in range(4)
    ]
    threads[0].start()
    assert started.wait(10)
    for thread in threads[1:]:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(10)
    assert results == [3, 3, 3, 3]
    assert calls == [1]
    assert id(p) not in _RESOLVING


def test_failed_resolution_leaves_no_lock_behind(proxy_cls: Any) -> None:
    p = proxy_cls(FailingFactory())
    with pytest.raises(ProxyResolveError):
        extract(p)
    assert id(p) not in _RESOLVING


def test_repr_of_uninitialised_proxy(proxy_cls: Any) -> None:
    assert "with factory None" in repr(proxy_cls.__new__(proxy_cls))
