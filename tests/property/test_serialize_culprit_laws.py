"""Law: a failed serialization names the one unpicklable part, by its exact path."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxystore.serialize import SerializationError, serialize, serialize_parts
from tests.property.strategies import picklable_values


class Holder:
    """A plain object whose attributes pickle through its ``__dict__``."""


_NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)


@st.composite
def one_culprit(draw: st.DrawFn) -> tuple[Any, str]:
    """An object with exactly one lock somewhere inside, and the lock's path."""
    obj: Any = threading.Lock()
    path = ""
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["dict", "list", "tuple", "attribute"]))
        outer: Any
        if kind == "dict":
            outer = draw(
                st.dictionaries(
                    st.text(max_size=5), picklable_values(with_arrays=False), max_size=3
                )
            )
            # Keys whose repr stays under the message's 40-character limit (five
            # astral characters print as 52): longer ones are shortened with "...".
            key = draw(
                st.text(st.characters(max_codepoint=0xFFFF), max_size=5)
                | st.integers(-(10**6), 10**6)
            )
            outer[key] = obj
            step = f"[{key!r}]"
        elif kind == "attribute":
            outer = Holder()
            outer.__dict__.update(
                draw(
                    st.dictionaries(
                        _NAMES, picklable_values(with_arrays=False), max_size=3
                    )
                )
            )
            name = draw(_NAMES)
            setattr(outer, name, obj)
            step = f".{name}"
        else:
            items = draw(st.lists(picklable_values(with_arrays=False), max_size=3))
            index = draw(st.integers(0, len(items)))
            items.insert(index, obj)
            outer = items if kind == "list" else tuple(items)
            step = f"[{index}]"
        obj, path = outer, step + path
    return obj, "obj" + path


@given(one_culprit(), st.sampled_from([serialize, serialize_parts]))
def test_the_culprit_path_is_named(case: tuple[Any, str], encode: Any) -> None:
    obj, path = case
    with pytest.raises(SerializationError) as info:
        encode(obj)
    message = str(info.value)
    if path == "obj":
        assert message.startswith("Object of type _thread.lock is not supported (")
    else:
        assert f": {path} is a _thread.lock, which cannot be serialized" in message
