"""Find the part of an object that keeps it from being serialized.

When every format fails on an object, "a dict is not supported" helps nobody: the
dict is rarely the problem, something inside it is. `describe_failure` walks
down from the object, at each level following the first part that cannot be pickled
on its own, and stops at a part whose own parts all pickle: that part is the
culprit, reported with its path from the object (``obj['bad'][0].lock``).

Parts are what pickle itself would write: the items of dicts, lists, tuples and
sets, and for other objects what their ``__reduce_ex__`` returns (the attributes of
a dataclass or plain instance, ``__slots__`` values, constructor arguments).

This runs only after serialization has failed, so a successful `serialize` pays
nothing for it. Its cost is bounded: containers with many parts are searched by
halving (each step pickles half of the remaining parts, so the total is about one
more pickle of the container per level), and the descent stops after `_MAX_DEPTH`
levels.
"""

from __future__ import annotations

import copyreg
import importlib
import pickle
from collections.abc import Callable, Sequence
from typing import Any, Final

__all__ = ["describe_failure"]

#: Levels followed at most before the search stops and names what it reached.
_MAX_DEPTH: Final = 64
#: Containers with more parts than this are narrowed down by halving first.
_SCAN: Final = 16
#: Longest key ``repr`` written into a path.
_REPR_LIMIT: Final = 40
#: The constructors object.__reduce_ex__ names, whose first argument is the class.
_NEW_OBJECT: Final = (vars(copyreg)["__newobj__"], vars(copyreg)["__newobj_ex__"])

_Dumps = Callable[..., bytes]
_Parts = tuple[Sequence[Any], Callable[[int], str]]


def _type_name(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _brief(key: object) -> str:
    try:
        text = repr(key)
    except Exception:
        return f"<{_type_name(key)} key>"
    if len(text) > _REPR_LIMIT:
        text = text[: _REPR_LIMIT - 3] + "..."
    return text


def _keep_out_of_band(buffer: pickle.PickleBuffer) -> None:
    """Leave large buffers out of the trial pickles (a false result: no copy)."""


def _dumpers() -> list[_Dumps]:
    """The pickle functions `serialize` tries: pickle, then cloudpickle if present."""
    dumpers: list[_Dumps] = [pickle.dumps]
    try:
        cloudpickle = importlib.import_module("cloudpickle")
    except ImportError:
        return dumpers
    dumpers.append(cloudpickle.dumps)
    return dumpers


def _error(obj: object, dumpers: list[_Dumps]) -> Exception | None:
    """Return why ``obj`` cannot be pickled by any of ``dumpers`` (``None``: it can)."""
    error: Exception | None = None
    for dumps in dumpers:
        try:
            dumps(obj, protocol=5, buffer_callback=_keep_out_of_band)
        except Exception as exc:
            error = exc
        else:
            return None
    return error


def _reduced_parts(obj: object) -> _Parts | None:
    """Parts of an object pickled through its reduce value."""
    reducer = copyreg.dispatch_table.get(type(obj))
    try:
        value = reducer(obj) if reducer is not None else obj.__reduce_ex__(5)
    except Exception:
        return None  # the object itself refuses to be pickled
    if not isinstance(value, tuple) or len(value) < 2:
        return None
    func, args, *rest = value
    state, items, mapping = (*rest, None, None, None)[:3]
    labels: list[str] = []
    parts: list[Any] = []
    for i, arg in enumerate(args or ()):
        if not (i == 0 and func in _NEW_OBJECT):  # skip the class itself
            labels.append(f"<argument {i}>")
            parts.append(arg)
    if (
        isinstance(state, tuple)
        and len(state) == 2
        and all(s is None or isinstance(s, dict) for s in state)
    ):
        state = {**(state[0] or {}), **(state[1] or {})}  # __dict__ and __slots__
    if isinstance(state, dict):
        for name, attr in state.items():
            labels.append(f".{name}" if isinstance(name, str) else f"<{_brief(name)}>")
            parts.append(attr)
    elif state is not None:
        labels.append("<state>")
        parts.append(state)
    for i, item in enumerate(items or ()):
        labels.append(f"[{i}]")
        parts.append(item)
    for key, item in mapping or ():
        labels.append(f"[{_brief(key)}]")
        parts.append(item)
    return parts, labels.__getitem__


def _parts(obj: object) -> _Parts | None:
    """Return the parts pickle writes for ``obj`` and a labeller for their paths."""
    if isinstance(obj, dict):
        keys = list(obj)
        count = len(keys)

        def dict_label(i: int) -> str:
            if i < count:
                return f"[{_brief(keys[i])}]"
            return f"<key {_brief(keys[i - count])}>"

        return [*dict.values(obj), *keys], dict_label
    if isinstance(obj, list | tuple):
        fields = getattr(type(obj), "_fields", None)  # a named tuple
        if isinstance(fields, tuple) and len(fields) == len(obj):
            return obj, lambda i: f".{fields[i]}"
        return obj, lambda i: f"[{i}]"
    if isinstance(obj, set | frozenset):
        return list(obj), lambda i: f"<member {i}>"
    return _reduced_parts(obj)


def _first_failing(
    parts: Sequence[Any], seen: set[int], dumpers: list[_Dumps]
) -> tuple[int, Exception] | None:
    """Return the index of the first part that cannot be pickled, and why."""
    lo, hi = 0, len(parts)
    if hi > _SCAN and not any(id(part) in seen for part in parts):
        # Pickling a run of parts fails iff one of them fails: halve the run.
        if _error(list(parts), dumpers) is None:
            return None
        while hi - lo > _SCAN:
            mid = (lo + hi) // 2
            if _error(list(parts[lo:mid]), dumpers) is not None:
                hi = mid
            else:
                lo = mid
    for i in range(lo, hi):
        part = parts[i]
        if id(part) in seen:  # an enclosing object (a cycle): not the culprit
            continue
        error = _error(part, dumpers)
        if error is not None:
            return i, error
    return None


def _step_down(
    obj: object, seen: set[int], dumpers: list[_Dumps]
) -> tuple[str, Any, Exception] | None:
    """Return the path step, part and error of the part of ``obj`` to blame.

    ``None`` when no part of ``obj`` fails on its own (``obj`` is the culprit), when
    the part fails only for being too deep, or when ``obj`` misbehaves under
    inspection (a failing ``repr`` or ``__reduce_ex__``): the search stops there.
    """
    try:
        found = _parts(obj)
        if found is None:
            return None
        parts, label = found
        failing = _first_failing(parts, seen, dumpers)
        if failing is None or _too_deep(failing[1]):
            return None
        index, error = failing
        return label(index), parts[index], error
    except Exception:
        return None


def _too_deep(error: BaseException) -> bool:
    """Whether ``error`` (or what it was raised from) is a recursion overflow."""
    seen: BaseException | None = error
    for _ in range(8):  # cloudpickle wraps RecursionError in a PicklingError
        if seen is None:
            return False
        if isinstance(seen, RecursionError | MemoryError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def describe_failure(obj: object, error: BaseException | None) -> str:
    """Say why ``obj`` cannot be serialized, naming the part to blame.

    Args:
        obj: The object every format failed on.
        error: The exception of the last format tried (``None`` if none was tried).

    Returns:
        A one-sentence message: the object's type, then the path and type of the
        part that cannot be pickled (when it is not ``obj`` itself) and that part's
        own error.
    """
    message = f"Object of type {_type_name(obj)} is not supported"
    if error is None:
        return message + "."
    path, culprit, cause = "obj", obj, error
    # A too-deep structure fails as a whole, not because of one part.
    if not _too_deep(error):
        dumpers = _dumpers()
        seen = {id(obj)}
        for _ in range(_MAX_DEPTH):
            step = _step_down(culprit, seen, dumpers)
            if step is None:
                break
            label, culprit, cause = step
            path += label
            seen.add(id(culprit))
    reason = f"{type(cause).__name__}: {cause}"
    if culprit is obj:
        return f"{message} ({reason})."
    return (
        f"{message}: {path} is a {_type_name(culprit)}, which cannot be "
        f"serialized ({reason})."
    )
