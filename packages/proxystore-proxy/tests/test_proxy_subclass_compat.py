"""Subclasses of `Proxy` behave as with the reference (issue 14, item 2)."""

from __future__ import annotations

from typing import Any

import pytest

from proxystore.proxy import Proxy, ProxyLocker


class _Obj:
    def __init__(self) -> None:
        self.x = 1
        self.shared = "target"


def test_plain_proxy_has_getattr(make: Any) -> None:
    assert hasattr(make(_Obj()), "__getattr__")
    assert make(_Obj()).__getattr__("x") == 1


def test_subclass_getattr_is_called_for_names_the_proxy_lacks(proxy_cls: Any) -> None:
    seen: list[str] = []

    class Logging(proxy_cls):  # type: ignore[misc]
        def __getattr__(self, name: str) -> Any:
            seen.append(name)
            if name == "magic":
                return "from the subclass"
            return super().__getattr__(name)

    p = Logging(lambda: _Obj())
    assert p.magic == "from the subclass"
    assert p.x == 1  # forwarded by the base __getattr__
    assert seen == ["magic", "x"]
    with pytest.raises(AttributeError):
        _ = p.missing
    assert hasattr(p, "__getattr__")


def test_class_and_instance_attributes_of_a_subclass_win(proxy_cls: Any) -> None:
    class Tagged(proxy_cls):  # type: ignore[misc]
        shared = "class"

    p = Tagged(lambda: _Obj())
    assert p.shared == "class"
    object.__setattr__(p, "note", "mine")
    object.__setattr__(p, "x", 42)
    assert p.note == "mine"
    assert p.x == 42
    assert p.__proxy_wrapped__.x == 1
    assert isinstance(p, _Obj)


def test_plain_proxy_still_forwards_every_other_name(make: Any) -> None:
    p = make(_Obj())
    assert p.shared == "target"
    with pytest.raises(AttributeError):
        object.__setattr__(p, "note", 1)  # no instance dict: slots only


def test_proxy_locker_takes_attributes() -> None:
    locker = ProxyLocker(Proxy(lambda: [1]))
    locker.label = "batch-1"  # type: ignore[attr-defined]
    assert locker.label == "batch-1"
    with pytest.raises(AttributeError):
        _ = locker._proxy
    assert locker.unlock() == [1]
