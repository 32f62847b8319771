"""A failed serialization names the part of the object to blame, and its path."""

from __future__ import annotations

import dataclasses
import sys
import threading
from typing import Any, NamedTuple

import pytest

from proxystore.serialize import (
    SerializationError,
    _core,
    _culprit,
    serialize,
    serialize_parts,
)

LOCK = "_thread.lock"


@dataclasses.dataclass
class Job:
    name: str
    guard: Any


class Slotted:
    __slots__ = ("fine", "held")

    def __init__(self, held: Any) -> None:
        self.fine = 1
        self.held = held


class Pair(NamedTuple):
    left: int
    right: Any


class Plain:
    def __init__(self, inner: Any) -> None:
        self.number = 3
        self.inner = inner


def _message(obj: object) -> str:
    with pytest.raises(SerializationError) as info:
        serialize(obj)
    return str(info.value)


def test_lock_in_a_dict_is_named_with_its_key() -> None:
    message = _message({"ok": 1, "bad": threading.Lock()})
    assert message.startswith("Object of type builtins.dict is not supported: ")
    assert f"obj['bad'] is a {LOCK}, which cannot be serialized" in message
    assert "cannot pickle '_thread.lock' object" in message


@pytest.mark.parametrize(
    ("obj", "path", "culprit"),
    [
        ([1, 2, {"deep": (3, threading.Lock())}], "obj[2]['deep'][1]", LOCK),
        ({"job": Job("a", threading.RLock())}, "obj['job'].guard", "_thread.RLock"),
        (Plain({"k": [threading.Lock()]}), "obj.inner['k'][0]", LOCK),
        (Slotted([0, threading.Lock()]), "obj.held[1]", LOCK),
        (Pair(1, threading.Lock()), "obj.right", LOCK),
        ({"gen": (n for n in range(3))}, "obj['gen']", "builtins.generator"),
        ({threading.Lock()}, "obj<member 0>", LOCK),
    ],
)
def test_nested_culprit_is_named_with_its_path(
    obj: object, path: str, culprit: str
) -> None:
    assert f": {path} is a {culprit}, which cannot" in _message(obj)


def test_culprit_after_many_fine_items_is_found() -> None:
    items: list[Any] = list(range(10_000))
    items.append({"inner": threading.Lock()})
    assert f"obj[10000]['inner'] is a {LOCK}" in _message(items)


def test_unpicklable_object_alone_names_itself_and_its_error() -> None:
    message = _message(threading.Lock())
    assert message == (
        f"Object of type {LOCK} is not supported "
        "(TypeError: cannot pickle '_thread.lock' object)."
    )


def test_cycles_do_not_hide_or_loop() -> None:
    data: dict[str, Any] = {"ok": 1}
    data["self"] = data
    data["bad"] = threading.Lock()
    assert f"obj['bad'] is a {LOCK}" in _message(data)


class _BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class _Inspected:
    """Unpicklable: its ``__reduce_ex__`` raises."""

    def __reduce_ex__(self, protocol: object) -> Any:
        raise RuntimeError("refuses to be reduced")


def test_objects_that_misbehave_under_inspection_still_give_the_error() -> None:
    key = _BadRepr()
    message = _message({key: threading.Lock()})
    assert f"obj[<{__name__}._BadRepr key>] is a {LOCK}" in message
    message = _message([_Inspected()])
    assert f"obj[0] is a {__name__}._Inspected" in message
    assert "refuses to be reduced" in message


def test_serialize_parts_reports_the_same_culprit() -> None:
    with pytest.raises(SerializationError, match=r"obj\['bad'\] is a _thread\.lock"):
        serialize_parts({"ok": 1, "bad": threading.Lock()})


def test_cloudpickle_absent_still_names_the_culprit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "cloudpickle", None)
    assert "obj['f'] is a builtins.function" in _message({"f": lambda: None})


def test_error_stays_a_value_error_with_the_cause_chained() -> None:
    with pytest.raises(ValueError, match="obj") as info:
        serialize({"bad": threading.Lock()})
    assert isinstance(info.value.__cause__, TypeError)


def test_success_path_never_searches(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(obj: object, error: BaseException | None) -> str:
        raise AssertionError("searched on the success path")

    monkeypatch.setattr(_core, "describe_failure", refuse)
    for obj in ({"ok": 1}, [1, Job("a", 2)], Plain(None), lambda: 1):
        serialize(obj)
        serialize_parts(obj)


def test_search_by_halving_bounds_trial_pickles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = 0
    real = _culprit._error

    def counting(obj: object, dumpers: Any) -> Exception | None:
        nonlocal calls
        calls += 1
        return real(obj, dumpers)

    monkeypatch.setattr(_culprit, "_error", counting)
    items: list[Any] = [*range(5_000), threading.Lock(), *range(5_000)]
    assert f"obj[5000] is a {LOCK}" in _message(items)
    # One pickle of the whole, ~log2(10_001 / 16) halvings, at most 16 singles.
    assert calls <= 1 + 10 + 16


def test_too_deep_structures_are_not_searched() -> None:
    deep: list[Any] = []
    for _ in range(sys.getrecursionlimit() * 2):
        deep = [deep]
    message = _message(deep)
    assert message.startswith("Object of type builtins.list is not supported (")
    assert "recursion" in message.lower()
