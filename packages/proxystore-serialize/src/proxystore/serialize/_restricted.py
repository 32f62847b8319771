"""Restricted deserialization: pickle may only load allow-listed globals.

A pickle stream names every class and function it needs by module and name, and
plain ``pickle.loads`` imports and calls whatever it names: whoever can write the
payload can run code in the reader. `RestrictedDeserializer` reads the same
formats as `proxystore.serialize.deserialize`, but its unpickler hands out a global
only when the object it resolves to *is* an allow-listed class or function.

How a global ``(module, name)`` is decided (`RestrictedDeserializer` does not use
pickle's own lookup, which follows every dot of ``name`` as an attribute):

1. Spelling: ``module`` and ``name`` are dotted identifiers without a dunder
   component (``__builtins__``, ``__globals__``, ``__main__`` submodules...).
2. The dotted path ``module.name`` is in the allow-list; otherwise it is refused
   *before anything is imported*.
3. ``module`` is imported and ``name`` looked up in it; every step after the first
   must be a class (``Outer.Inner``), never a module or another object, so no
   attribute walk leaves the allowed path. A function reached through a class (a
   method) loads only if its full path is listed or its module is allowed.
4. The result is a class, a function, or a named callable (Cython functions, cached
   wrappers), never a module or plain data, and its *own* home (its
   ``__module__`` and ``__qualname__``) is allowed too, and holds this very object.
   ``numpy.testing._private.utils`` + ``os.system`` is refused here: the object is
   ``posix.system``.

The legacy copyreg extension codes (``EXT1/2/4`` opcodes) go through the same
decision, including codes an earlier unpickler already resolved. A load may not
modify the globals it resolved (a ``BUILD`` opcode aimed at an allowed class or
function, say to rebind a method or a function's defaults): the change is undone
and the load refused. Decisions are cached per allow-list, so a warm load of
allowed types costs about what ``pickle.loads`` does.

numpy trusts the state a pickle gives a dtype: its flags, field offsets and sizes
(an object dtype whose flags say "no objects" reads payload bytes as object
pointers), and ``dtype(..., copy=False)`` hands out numpy's shared dtypes. A load
that uses a function or a class with numpy bases therefore runs on the
pure-Python unpickler, which:

* applies a dtype's state only if numpy's own constructor builds an identical
  dtype from its description, and only to a dtype the load made as a copy and
  has not used yet (never to a shared one, nor to one an array already holds);
* builds an array only once, right after ``_reconstruct`` made it empty (a
  second ``BUILD`` frees the memory that a view made from the array still points
  into; a non-empty ``_reconstruct`` is uninitialised memory);
* refuses calls to ``numpy.ndarray`` and its subclasses (they view a payload's
  bytes, at any offset, as any dtype, object pointers included).

That path is about 15x slower for a list of 10 000 numpy scalars (4x for 1 000
small arrays); a large array costs the same.

An allow-list entry is an exact dotted path or a prefix on dotted-name boundaries:
``"myapp.models.Point"`` allows that class (and classes nested in it, not their
methods), ``"myapp.models"`` every class and function under that module,
``"numpyx"`` does not cover ``numpy``. **A prefix trusts every callable under it
with arguments the payload chooses**: ``"numpy"`` would let a payload call
``numpy.testing._private.utils.runstring`` (which runs ``exec``) or
``numpy.save`` (which writes files). Allow exact paths instead: `NUMPY_ARRAYS`
holds the globals numpy arrays, dtypes and scalars need. A small set of harmless
builtins (containers, numbers, text, ``datetime``, ``decimal``, ``uuid``, ...) is
always allowed; ``builtins.eval``, ``getattr`` and the like are not.

Bytes, text and Polars payloads contain no pickle and load as usual; the reference
release's numpy and pandas payloads are refused (their loaders run pickle in ways
this class cannot restrict). The deserializer is plain data (its allow-list), so a
store configured with it (``Store(..., deserializer=RestrictedDeserializer([...]))``)
carries it inside every proxy, and remote readers apply the same restriction.

Out of scope: resource exhaustion (an allowed ``bytearray`` or ``list`` can be
asked for more memory than the reader has), and whatever an allowed callable does
with the arguments a payload gives it.
"""

from __future__ import annotations

import _compat_pickle
import copyreg
import importlib
import io
import logging
import pickle
import sys
from collections.abc import Iterable
from itertools import repeat
from operator import is_
from types import BuiltinFunctionType, FunctionType, ModuleType
from typing import Any, ClassVar, Final, NamedTuple

from proxystore.serialize._core import (
    _BY_PREFIX,
    _PREFIX_LEN,
    _as_payload,
    _load_array,
    _load_pickle_layout,
    _load_plain_pickle,
)
from proxystore.serialize._core import deserialize as _deserialize
from proxystore.serialize.exceptions import DisallowedTypeError, SerializationError
from proxystore.serialize.protocols import BytesLike

__all__ = ["ALWAYS_ALLOWED", "NUMPY_ARRAYS", "RestrictedDeserializer"]

logger = logging.getLogger(__name__)

#: Globals every restricted deserializer allows (exact dotted paths).
ALWAYS_ALLOWED: Final = frozenset(
    f"builtins.{name}"
    for name in (
        "bool",
        "bytearray",
        "bytes",
        "complex",
        "dict",
        "float",
        "frozenset",
        "int",
        "list",
        "object",
        "range",
        "set",
        "slice",
        "str",
        "tuple",
    )
) | frozenset(
    (
        "collections.OrderedDict",
        "collections.deque",
        "datetime.date",
        "datetime.datetime",
        "datetime.time",
        "datetime.timedelta",
        "datetime.timezone",
        "decimal.Decimal",
        "fractions.Fraction",
        "uuid.UUID",
    )
)

#: Exact globals that numpy arrays, dtypes and scalars need (numpy 1.x and 2.x
#: spellings): the safe alternative to allowing the whole ``"numpy"`` prefix.
NUMPY_ARRAYS: Final = (
    frozenset(
        (
            "numpy.ndarray",
            "numpy.dtype",
            "numpy._core.multiarray._reconstruct",
            "numpy._core.multiarray.scalar",
            "numpy._core.numeric._frombuffer",
            "numpy.core.multiarray._reconstruct",
            "numpy.core.multiarray.scalar",
            "numpy.core.numeric._frombuffer",
        )
    )
    | frozenset(
        f"numpy.{name}"
        for name in (
            "bool",
            "bool_",
            "byte",
            "bytes_",
            "cdouble",
            "clongdouble",
            "complex128",
            "complex256",
            "complex64",
            "csingle",
            "datetime64",
            "double",
            "float128",
            "float16",
            "float32",
            "float64",
            "half",
            "int16",
            "int32",
            "int64",
            "int8",
            "int_",
            "intc",
            "intp",
            "longdouble",
            "longlong",
            "object_",
            "short",
            "single",
            "str_",
            "timedelta64",
            "ubyte",
            "uint",
            "uint16",
            "uint32",
            "uint64",
            "uint8",
            "uintc",
            "uintp",
            "ulonglong",
            "ushort",
            "void",
        )
    )
    | frozenset(
        # The dtype classes only: numpy.dtypes also holds a helper that rebinds names.
        f"numpy.dtypes.{kind}DType"
        for kind in (
            "Bool",
            "Byte",
            "Bytes",
            "CLongDouble",
            "Complex128",
            "Complex64",
            "DateTime64",
            "Float16",
            "Float32",
            "Float64",
            "Int",
            "Int16",
            "Int32",
            "Int64",
            "Int8",
            "Long",
            "LongDouble",
            "LongLong",
            "Object",
            "Short",
            "Str",
            "String",
            "TimeDelta64",
            "UByte",
            "UInt",
            "UInt16",
            "UInt32",
            "UInt64",
            "UInt8",
            "ULong",
            "ULongLong",
            "UShort",
            "Void",
        )
    )
)

# Reference-release formats whose loaders run unrestricted pickle.
_REFUSED_LEGACY: Final = frozenset((b"NP\n", b"PD\n"))
# Py_TPFLAGS_IMMUTABLETYPE: classes whose attributes cannot be set at all.
_IMMUTABLE_TYPE: Final = 1 << 8
#: Allow-lists whose decision caches are kept (more distinct lists start afresh).
_MAX_LISTS: Final = 64
#: Globals cached per allow-list.
_MAX_DECISIONS: Final = 1024
_MISSING: Final = object()
_GENERIC_GETATTRIBUTE: Final = object.__getattribute__
# Attributes (besides __dict__ entries) a BUILD opcode could rebind.
_CLASS_WATCH: Final = ("__name__", "__qualname__", "__bases__", "__class__")
_OBJECT_WATCH: Final = (
    "__code__",
    "__defaults__",
    "__kwdefaults__",
    "__name__",
    "__qualname__",
    "__module__",
    "__doc__",
    "__annotations__",
)


class _Entry(NamedTuple):
    """A global that was allowed, and where it was found."""

    module: ModuleType
    parts: tuple[str, ...]
    obj: Any
    #: A class or function a load could modify (watched during each load).
    mutable: bool
    #: A function, or a class with numpy bases (see `_needs_checks`): loads that
    #: use it go through the unpickler that checks numpy dtypes and arrays.
    checked: bool


def _is_dunder(part: str) -> bool:
    return part.startswith("__") and part.endswith("__")


def _plain_parts(dotted: str) -> tuple[str, ...] | None:
    """Split ``dotted`` into identifiers, or None if any part is not one or a dunder."""
    parts = tuple(dotted.split("."))
    for part in parts:
        if not part.isidentifier() or _is_dunder(part):
            return None
    return parts


def _is_class(obj: object) -> bool:
    # type(obj), never obj.__class__, which a proxy-like object may fake.
    return issubclass(type(obj), type)


def _lookup(module: ModuleType, parts: tuple[str, ...]) -> Any:
    """Follow ``parts`` from ``module``: every step after the first is a class."""
    obj: Any = getattr(module, parts[0])
    for part in parts[1:]:
        if not _is_class(obj):
            return _MISSING
        obj = getattr(obj, part)
    return obj


def _home(obj: Any) -> tuple[str, str] | None:
    """Return the (module, qualname) an object says it lives at, if it is callable."""
    kind = type(obj)
    if issubclass(kind, type) or kind is FunctionType:
        module, qualname = obj.__module__, obj.__qualname__
    elif kind is BuiltinFunctionType:
        # Module-level C functions are bound to their module; bound methods of
        # other objects (``{}.get``) are refused.
        owner = obj.__self__
        if owner is not None and not issubclass(type(owner), ModuleType):
            return None
        module, qualname = obj.__module__, obj.__qualname__
        if module is None and owner is not None:
            module = owner.__name__
    elif (
        callable(obj)
        and getattr(kind, "__getattribute__", None) is _GENERIC_GETATTRIBUTE
        and getattr(kind, "__getattr__", None) is None
        and not issubclass(kind, ModuleType)
    ):
        # A named callable (Cython function, functools wrapper): attributes are
        # read without running code of its own.
        module = getattr(obj, "__module__", None)
        qualname = getattr(obj, "__qualname__", None)
    else:
        return None
    if isinstance(module, str) and isinstance(qualname, str):
        return module, qualname
    return None


def _needs_checks(obj: Any) -> bool:
    """Whether loads using ``obj`` need the unpickler that checks numpy dtypes.

    Functions may return anything (a numpy dtype to ``BUILD``); classes need it
    when numpy's classes are among their bases (an ``ndarray`` subclass is
    ``ndarray.__new__`` on a payload's buffer).
    """
    if not _is_class(obj):
        return True
    return any(
        str(getattr(base, "__module__", "")).partition(".")[0] == "numpy"
        for base in obj.__mro__
    )


def _is_mutable(obj: Any) -> bool:
    if _is_class(obj):
        return not obj.__flags__ & _IMMUTABLE_TYPE
    return hasattr(obj, "__dict__")


# ---------------------------------------------------------------- tamper guard


# A snapshot is (copy of __dict__ or None, *watched attributes): for a class
# (name, qualname, bases, metaclass), for anything else the _OBJECT_WATCH values.
_Snapshot = tuple[Any, ...]


def _snapshot(obj: Any) -> _Snapshot:
    if _is_class(obj):
        return (
            obj.__dict__.copy(),
            obj.__name__,
            obj.__qualname__,
            obj.__bases__,
            type(obj),
        )
    namespace = getattr(obj, "__dict__", None)
    copy = None if namespace is None else dict(namespace)
    return (copy, *map(getattr, repeat(obj), _OBJECT_WATCH, repeat(_MISSING)))


def _same(obj: Any, before: _Snapshot) -> bool:
    saved = before[0]
    if saved is not None:
        # BUILD only adds or rebinds entries: a new length or another object.
        namespace = obj.__dict__
        if len(namespace) != len(saved) or not all(
            map(is_, namespace.values(), saved.values())
        ):
            return False
    if _is_class(obj):
        return (
            obj.__name__ is before[1]
            and obj.__qualname__ is before[2]
            and obj.__bases__ is before[3]
            and type(obj) is before[4]
        )
    current = map(getattr, repeat(obj), _OBJECT_WATCH, repeat(_MISSING))
    return all(map(is_, current, before[1:]))


def _restore(obj: Any, before: _Snapshot) -> None:
    names = _CLASS_WATCH if _is_class(obj) else _OBJECT_WATCH
    for name, value in zip(names, before[1:], strict=True):
        if value is not _MISSING and getattr(obj, name, _MISSING) is not value:
            setattr(obj, name, value)
    saved = before[0]
    if saved is None:
        return
    namespace = obj.__dict__
    if not _is_class(obj):
        namespace.clear()
        namespace.update(saved)
        return
    for key in [k for k in namespace if k not in saved]:
        delattr(obj, key)
    for key, value in saved.items():
        if namespace.get(key, _MISSING) is not value:
            setattr(obj, key, value)


# ---------------------------------------------------------------- decisions


class _Policy:
    """The decisions of one allow-list, shared by equal deserializers.

    Holds the unpickler classes bound to it, so a load builds nothing but the
    unpickler itself.
    """

    __slots__ = ("allow", "decisions", "fast", "prefixes", "safe")

    def __init__(self, allow: tuple[str, ...]) -> None:
        self.allow = allow
        self.prefixes = tuple(entry + "." for entry in allow)
        #: Allowed globals by (module, name), each checked against its module on use.
        self.decisions: dict[tuple[str, str], _Entry] = {}
        self.fast: type[_Unpickler] = type(
            "_Unpickler", (_Unpickler,), {"__slots__": (), "_policy": self}
        )
        self.safe: type[_ExtensionSafeUnpickler] = type(
            "_ExtensionSafeUnpickler", (_ExtensionSafeUnpickler,), {"_policy": self}
        )

    def allows(self, path: str) -> bool:
        return (
            path in ALWAYS_ALLOWED
            or path in self.allow
            or path.startswith(self.prefixes)
        )

    def entry(self, module: str, name: str) -> _Entry:
        """The allowed global ``module.name`` (cached), or `DisallowedTypeError`."""
        entry = self.decisions.get((module, name))
        if entry is not None and sys.modules.get(module) is entry.module:
            try:
                if _lookup(entry.module, entry.parts) is entry.obj:
                    return entry
            except Exception:  # gone since: decide afresh
                pass
        entry = self.decide(module, name)
        if len(self.decisions) >= _MAX_DECISIONS:
            self.decisions.clear()
        self.decisions[module, name] = entry
        return entry

    def decide(self, module: str, name: str) -> _Entry:
        """Resolve an allowed global, or raise `DisallowedTypeError`."""
        path = f"{module}.{name}"
        parts = _plain_parts(name)
        if parts is None or (module != "__main__" and _plain_parts(module) is None):
            raise _refusal(
                path, "its module and name must be dotted identifiers without dunders"
            )
        if not self.allows(path):
            raise _refusal(
                path, "it is not in the allow-list (its module was not imported)"
            )
        found = sys.modules.get(module)
        if found is None:
            found = importlib.import_module(module)
        if not issubclass(type(found), ModuleType):
            raise _refusal(path, f"{module!r} is not a module")
        obj = _lookup(found, parts)
        if obj is _MISSING:
            raise _refusal(path, "only classes may hold the names it walks through")
        if len(parts) > 1 and not _is_class(obj) and not self._covers(path, module):
            # Allowing a class allows building it, not calling its methods.
            raise _refusal(
                path,
                "it is a method of a class; allow its full path or its module",
            )
        home = _home(obj)
        if home is None:
            raise _refusal(
                path,
                f"it is a {type(obj).__qualname__} object, not a class or function",
            )
        own = ".".join(home)
        if own != path:
            self._check_home(path, obj, home)
        return _Entry(found, parts, obj, _is_mutable(obj), _needs_checks(obj))

    def _covers(self, path: str, module: str) -> bool:
        """Whether ``path`` is listed as a whole, or its module is allowed."""
        return (
            path in self.allow
            or module in self.allow
            or module.startswith(self.prefixes)
        )

    def _check_home(self, path: str, obj: Any, home: tuple[str, str]) -> None:
        """Refuse an alias unless its target is allowed and really lives there."""
        own = ".".join(home)
        home_parts = _plain_parts(home[1])
        if home_parts is None or _plain_parts(home[0]) is None:
            raise _refusal(path, f"it is {own!r}, which is not a plain path")
        if not self.allows(own):
            raise _refusal(path, f"it is {own!r}, which is not in the allow-list")
        where = sys.modules.get(home[0])
        try:
            there = _MISSING if where is None else _lookup(where, home_parts)
        except Exception:
            there = _MISSING
        if there is not obj:
            raise _refusal(path, f"it claims to be {own!r} but is not found there")


def _refusal(path: str, why: str) -> DisallowedTypeError:
    return DisallowedTypeError(
        f"restricted deserialization refused global {path!r}: {why}", path
    )


#: Policies by allow-list (a stream rebuilds its deserializer from every event).
_POLICIES: dict[tuple[str, ...], _Policy] = {}


def _policy(allow: tuple[str, ...]) -> _Policy:
    policy = _POLICIES.get(allow)
    if policy is None:
        if len(_POLICIES) >= _MAX_LISTS:
            _POLICIES.clear()
        policy = _POLICIES.setdefault(allow, _Policy(allow))
    return policy


# ---------------------------------------------------------------- unpicklers


class _Restricting:
    """What both unpicklers share: global lookup through the allow-list.

    Subclasses made by `_Policy` set ``_policy``; a load sets ``_compat`` when the
    stream may use Python 2 names, and ``_watched`` gathers the mutable globals
    it resolved.
    """

    _policy: ClassVar[_Policy]
    #: Whether this unpickler checks numpy dtype states (else it gives up on them).
    _checks_dtypes: ClassVar[bool] = True
    _compat: bool = False
    _watched: dict[int, tuple[Any, _Snapshot]] | None = None

    def find_class(self, module: str, name: str) -> Any:
        if self._compat:
            module, name = _py3_names(module, name)
        entry = self._policy.entry(module, name)
        if entry.checked and not self._checks_dtypes:
            raise _NeedsDtypeChecks(module, name)
        obj = entry.obj
        if entry.mutable:
            watched = self._watched
            if watched is None:
                watched = self._watched = {}
            if id(obj) not in watched:
                watched[id(obj)] = (obj, _snapshot(obj))
        return obj

    def persistent_load(self, pid: Any) -> Any:
        raise DisallowedTypeError(
            "restricted deserialization refused a persistent id", "<persistent id>"
        )

    def _check_untouched(self) -> None:
        """Refuse (and undo) any change the load made to a global it resolved."""
        changed = [
            (obj, snap)
            for obj, snap in (self._watched or {}).values()
            if not _same(obj, snap)
        ]
        if not changed:
            return
        for obj, snap in changed:
            try:
                _restore(obj, snap)
            except Exception:  # still refused below; say what could not be undone
                logger.exception("could not undo a payload's change to %r", obj)
        paths = sorted(
            ".".join(_home(obj) or ("?", type(obj).__qualname__)) for obj, _ in changed
        )
        raise DisallowedTypeError(
            "restricted deserialization refused a payload that modified allowed "
            f"globals {paths} (the change was undone)",
            paths[0],
        )


class _NeedsDtypeChecks(Exception):
    """The C unpickler met a global that may bring numpy dtypes: load again."""


class _Unpickler(_Restricting, pickle.Unpickler):
    """The C unpickler, restricted; gives up at the first numpy global or function."""

    _checks_dtypes = False


def _mark_used(pending: dict[int, Any], *values: Any) -> None:
    """Drop from ``pending`` every object found in ``values`` (or their containers).

    A dtype handed to a call or a ``BUILD`` may now describe an array, a scalar or
    another dtype's field, and an array may back a view: changing either
    afterwards would change (or free) what those hold.
    """
    if not pending:
        return
    todo = list(values)
    seen: set[int] = set()
    while todo and pending:
        value = todo.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if pending.get(id(value), _MISSING) is value:
            del pending[id(value)]
        elif isinstance(value, dict):
            todo.extend(value.keys())
            todo.extend(value.values())
        elif isinstance(value, tuple | list | set | frozenset):
            todo.extend(value)


def _checked_build(unpickler: Any) -> None:
    """BUILD, except that dtype states are checked and arrays are built once."""
    stack = unpickler.stack
    pending = unpickler._pending
    numpy = sys.modules.get("numpy")
    inst = stack[-2]
    # Rebuilding frees an array's memory: a view made from it would dangle.
    if (
        numpy is not None
        and isinstance(inst, numpy.ndarray)
        and pending.pop(id(inst), _MISSING) is not inst
    ):
        raise DisallowedTypeError(
            "restricted deserialization refused a BUILD on a numpy array "
            "that _reconstruct did not just make (built or used already)",
            "numpy.ndarray",
        )
    if numpy is None or not isinstance(inst, numpy.dtype):
        _mark_used(pending, stack[-1])
        pickle._Unpickler.load_build(unpickler)  # type: ignore[attr-defined]
        return
    state = stack.pop()
    dtype = stack[-1]
    made = pending.pop(id(dtype), _MISSING) is dtype
    _mark_used(pending, state)
    _set_dtype_state(numpy, dtype, state, made_here=made)


def _refuse_array_call(cls: Any) -> None:
    """Refuse calling numpy.ndarray: it views any buffer, at any offset, as any dtype.

    ``ndarray((1,), "O", buffer)`` reads payload bytes as object pointers and a
    negative offset reads memory before the buffer; numpy's pickles never call it
    (arrays load through ``_reconstruct`` and ``BUILD``).
    """
    numpy = sys.modules.get("numpy")
    if numpy is not None and _is_class(cls) and issubclass(cls, numpy.ndarray):
        raise DisallowedTypeError(
            "restricted deserialization refused a call to numpy.ndarray (arrays "
            "load through numpy's _reconstruct, never from a payload's buffer)",
            "numpy.ndarray",
        )


def _is_reconstruct(func: Any) -> bool:
    return (
        isinstance(func, BuiltinFunctionType)
        and func.__name__ == "_reconstruct"
        and str(func.__module__).startswith("numpy.")
    )


def _checked_reduce(unpickler: Any) -> None:
    stack = unpickler.stack
    func, args = stack[-2], stack[-1]
    _refuse_array_call(func)
    reconstruct = _is_reconstruct(func)
    if reconstruct and (
        len(args) != 3 or type(args[1]) is not tuple or args[1] != (0,)
    ):
        # numpy's pickles make an empty array and BUILD it; any other shape is
        # an array of uninitialised memory.
        raise DisallowedTypeError(
            "restricted deserialization refused numpy's _reconstruct with a shape "
            "other than (0,)",
            "numpy._core.multiarray._reconstruct",
        )
    _mark_used(unpickler._pending, args)
    pickle._Unpickler.load_reduce(unpickler)  # type: ignore[attr-defined]
    numpy = sys.modules.get("numpy")
    if reconstruct or (
        # numpy.dtype(obj, align, copy=True) makes a new dtype, _reconstruct a
        # new empty array: what numpy's pickles then BUILD.
        numpy is not None and func is numpy.dtype and len(args) > 2 and args[2] is True
    ):
        made = stack[-1]
        unpickler._pending[id(made)] = made


def _checked_newobj(unpickler: Any) -> None:
    _refuse_array_call(unpickler.stack[-2])
    _mark_used(unpickler._pending, unpickler.stack[-1])
    pickle._Unpickler.load_newobj(unpickler)  # type: ignore[attr-defined]


def _checked_newobj_ex(unpickler: Any) -> None:
    _refuse_array_call(unpickler.stack[-3])
    _mark_used(unpickler._pending, unpickler.stack[-2], unpickler.stack[-1])
    pickle._Unpickler.load_newobj_ex(unpickler)  # type: ignore[attr-defined]


class _ExtensionSafeUnpickler(_Restricting, pickle._Unpickler):
    """The pure-Python unpickler: asks `find_class` for every extension code and
    checks the state a payload gives a numpy dtype.

    The C unpickler returns an extension code's cached object without asking
    `find_class`, lets ``BUILD`` give a dtype any flags, offsets and sizes (an
    object dtype flagged as plain data turns payload bytes into object pointers)
    and lets a payload call ``numpy.ndarray`` on its own bytes; this one does
    none of these. It loads every payload while extension
    codes are registered, and payloads that use numpy globals or functions.
    """

    dispatch: ClassVar[dict[int, Any]] = {
        **pickle._Unpickler.dispatch,
        pickle.BUILD[0]: _checked_build,
        pickle.REDUCE[0]: _checked_reduce,
        pickle.NEWOBJ[0]: _checked_newobj,
        pickle.NEWOBJ_EX[0]: _checked_newobj_ex,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The dtypes (``numpy.dtype(..., copy=True)``) and arrays
        #: (``_reconstruct``) this load made and has not used yet: the only
        #: numpy objects a ``BUILD`` may change.
        self._pending: dict[int, Any] = {}

    def _instantiate(self, klass: Any, args: Any) -> None:  # OBJ and INST
        _refuse_array_call(klass)
        _mark_used(self._pending, args)
        super()._instantiate(klass, args)  # type: ignore[misc]

    def get_extension(self, code: int) -> None:
        key = copyreg._inverted_registry.get(code)  # type: ignore[attr-defined]
        if not key:
            raise pickle.UnpicklingError(f"unregistered extension code {code}")
        self.append(self.find_class(*key))  # type: ignore[attr-defined]


def _set_dtype_state(numpy: Any, dtype: Any, state: Any, *, made_here: bool) -> None:
    """Apply ``state`` to ``dtype`` if numpy would build the same dtype itself.

    The state goes to a copy first; the copy must match what numpy's own
    constructor makes of its description (flags, size, alignment, field layout).
    Only a dtype this load made as a copy, and has not used yet, may change:
    any other one may be numpy's shared ``dtype('O')`` or a library's
    (``copy=False`` hands them out), or already describe an array.
    """
    # A new dtype of the same kind, made the way numpy's own pickles make one
    # (``dtype(obj, copy=True)`` returns a structured dtype itself, not a copy).
    probe = numpy.dtype(*dtype.__reduce__()[1])
    if probe is dtype:
        raise DisallowedTypeError(
            f"restricted deserialization cannot check a state for {dtype!r}",
            "numpy.dtype",
        )
    probe.__setstate__(state)
    _check_dtype(numpy, probe)
    if made_here:
        dtype.__setstate__(state)
    elif probe.__reduce__()[2] != dtype.__reduce__()[2]:
        raise DisallowedTypeError(
            f"restricted deserialization refused a change to {dtype!r}, a dtype "
            "the payload did not make (numpy's shared ones, or a library's) or "
            "that is in use already",
            "numpy.dtype",
        )


def _check_dtype(numpy: Any, dtype: Any) -> None:
    """Refuse a dtype unless numpy's constructor makes an identical one."""
    description: Any = dtype.str
    if dtype.names is not None:
        fields = [dtype.fields[name] for name in dtype.names]
        for field in fields:
            _check_dtype(numpy, field[0])
        description = {
            "names": list(dtype.names),
            "formats": [field[0] for field in fields],
            "offsets": [field[1] for field in fields],
            "itemsize": dtype.itemsize,
        }
        if any(len(field) > 2 for field in fields):
            titles = [field[2] if len(field) > 2 else None for field in fields]
            description["titles"] = titles
    elif dtype.subdtype is not None:
        base, shape = dtype.subdtype
        _check_dtype(numpy, base)
        description = (base, shape)
    try:
        fresh = numpy.dtype(description, align=dtype.isalignedstruct)
        same = (
            fresh.flags == dtype.flags
            and fresh.itemsize == dtype.itemsize
            and fresh.alignment == dtype.alignment
            and fresh == dtype
        )
    except Exception:
        same = False
    if not same:
        raise DisallowedTypeError(
            "restricted deserialization refused a numpy dtype whose state numpy "
            f"would not build itself ({dtype!r}, flags {dtype.flags})",
            "numpy.dtype",
        )


def _py3_names(module: str, name: str) -> tuple[str, str]:
    mapped = _compat_pickle.NAME_MAPPING.get((module, name))
    if mapped is not None:
        return mapped
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


class RestrictedDeserializer:
    """A deserializer whose pickle path loads only allow-listed globals.

    Args:
        allow: Dotted paths (exact globals, or module and class prefixes) that
            pickle may load, in addition to `ALWAYS_ALLOWED`. A prefix trusts
            every class and function under it: prefer exact paths (e.g.
            `NUMPY_ARRAYS`).

    Raises:
        ValueError: if an entry is not a non-empty string of dotted names.
    """

    __slots__ = ("_policy", "allow")

    def __init__(self, allow: Iterable[str] = ()) -> None:
        entries: tuple[object, ...] = (
            tuple(allow) if not isinstance(allow, str) else (allow,)
        )
        for entry in entries:
            if not isinstance(entry, str) or not all(
                part.isidentifier() for part in entry.split(".")
            ):
                raise ValueError(
                    "allow-list entries must be dotted names such as 'numpy' or "
                    f"'myapp.models.Point', got {entry!r}"
                )
        self.allow: tuple[str, ...] = tuple(sorted({str(e) for e in entries}))
        """The allow-list entries (sorted, without duplicates)."""
        self._policy = _policy(self.allow)

    def allows(self, path: str) -> bool:
        """Return whether the allow-list covers dotted ``path`` (its spelling).

        Loading also checks what the path resolves to (see the module
        documentation).
        """
        return self._policy.allows(path)

    def _loads(self, data: BytesLike, *, buffers: Any = None) -> Any:
        policy = self._policy
        if buffers is not None:
            buffers = list(buffers)  # a second attempt reads them again
        if not copyreg._inverted_registry:  # type: ignore[attr-defined]
            try:
                return self._load_with(policy.fast, data, buffers)
            except _NeedsDtypeChecks:
                pass
        return self._load_with(policy.safe, data, buffers)

    @staticmethod
    def _load_with(kind: Any, data: BytesLike, buffers: Any) -> Any:
        file = io.BytesIO(data)
        unpickler = kind(file) if buffers is None else kind(file, buffers=buffers)
        if not (len(data) > 1 and data[0] == 0x80 and data[1] >= 3):
            # No PROTO >= 3 first: Python 2 names (``__builtin__.set``) may occur.
            unpickler._compat = True
        try:
            return unpickler.load()
        finally:
            if unpickler._watched:
                unpickler._check_untouched()

    def __call__(self, buffer: BytesLike, /) -> Any:
        """Rebuild an object like `proxystore.serialize.deserialize`, restricted.

        Raises:
            DisallowedTypeError: if the payload needs a global outside the
                allow-list (nothing of that global's module is imported), modifies
                an allowed global, or is a reference-release numpy/pandas payload.
            SerializationError: for anything `proxystore.serialize.deserialize`
                rejects, and for any other failure of the restricted load.
        """
        payload = _as_payload(buffer)
        prefix = bytes(payload[:_PREFIX_LEN])
        fmt = _BY_PREFIX.get(prefix)
        if fmt is None:
            return _deserialize(payload)  # raises the usual typed error
        if prefix in _REFUSED_LEGACY:
            raise DisallowedTypeError(
                f"restricted deserialization refuses {fmt.name} payloads (their "
                "loader runs unrestricted pickle)",
                fmt.name,
            )
        if fmt.load is _load_array and not self.allows("numpy.ndarray"):
            # Raw arrays need no pickle, but they are numpy objects all the same.
            raise DisallowedTypeError(
                "restricted deserialization refuses numpy arrays: 'numpy.ndarray' "
                "is not in the allow-list",
                "numpy.ndarray",
            )
        try:
            if fmt.load is _load_pickle_layout:
                return _load_pickle_layout(payload, self._loads)
            if fmt.load is _load_plain_pickle:
                return self._loads(memoryview(payload)[_PREFIX_LEN:])
            return fmt.load(payload)
        except SerializationError:
            raise
        except Exception as exc:
            raise SerializationError(
                f"failed to deserialize object using the {fmt.name} format "
                f"(restricted): {type(exc).__name__}: {exc}"
            ) from exc

    def __reduce__(self) -> tuple[type[RestrictedDeserializer], tuple[Any, ...]]:
        return (type(self), (self.allow,))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RestrictedDeserializer):
            return NotImplemented
        return self.allow == other.allow

    def __hash__(self) -> int:
        return hash(self.allow)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(allow={list(self.allow)!r})"
