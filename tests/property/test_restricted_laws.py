"""Laws of restricted deserialization, searched over hand-made pickle streams.

Hypothesis writes opcode streams the way an attacker would: globals named through
``STACK_GLOBAL``, ``GLOBAL``, ``INST`` and copyreg extension codes (``EXT1/2/4``,
including codes an unrestricted load already cached), spelled from a pool of
dangerous and allowed names (dotted walks, dunders, aliases of ``os.system``,
modules), then called, built, instantiated and populated (``REDUCE``, ``BUILD``,
``NEWOBJ``, ``OBJ``, ``SETITEM``, ``APPEND``...). Against each allow-list, every
load must:

* hand out (from ``find_class``) only objects the allow-list names, decided here
  by resolving the list with plain ``getattr`` (an independent ground truth);
* make no dangerous call: an audit hook records and blocks command execution,
  ``exec``/``compile``, file opens and pickle's own unrestricted ``find_class``;
  the sentinel modules touch a file when imported or called;
* import no module (but the standard ``encodings`` an allowed ``str`` or
  ``bytes`` call may look up by name);
* leave the allowed classes and functions as they were;
* either return or raise `SerializationError` (`DisallowedTypeError` included):
  no other exception type escapes.
"""

from __future__ import annotations

import collections
import contextlib
import copyreg
import datetime
import fractions
import importlib
import pickle
import struct
import sys
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from proxystore.serialize import (
    NUMPY_ARRAYS,
    RestrictedDeserializer,
    SerializationError,
    _restricted,
    deserialize,
    serialize,
)
from tests.property.strategies import assert_same, picklable_values

_OK = """
import dataclasses
import os
from os import system

import ps_law_bad as bad


@dataclasses.dataclass
class Point:
    x: int = 0

    class Inner:
        pass

    evil = staticmethod(os.system)


def helper(a=1):
    return a


def make(*args):
    return Point(len(args))


def fake():
    pass


fake.__qualname__ = "helper"
"""
_BAD = """
import pathlib

MARKER = pathlib.Path(__file__).with_name("called")


def boom(*args, **kwargs):
    MARKER.touch()


class Boom:
    def __init__(self, *args, **kwargs):
        MARKER.touch()
"""
_EVIL = """
import pathlib

pathlib.Path(__file__).with_name("imported").touch()


def boom(*args, **kwargs):
    pass
"""

MODULES = [
    "os",
    "posix",
    "builtins",
    "__builtin__",
    "subprocess",
    "numpy",
    "numpy.testing._private.utils",
    "numpy._core.multiarray",
    "numpy.core.multiarray",
    "numpy.f2py.__main__",
    "ps_law_ok",
    "ps_law_ok.Point",
    "ps_law_ok.bad",
    "ps_law_bad",
    "ps_law_evil",
    "copyreg",
    "__main__",
    "pickle",
    "importlib",
    "sys",
    "collections",
    "fractions",
    "uuid",
    "functools",
    "operator",
    "os.path",
]
NAMES = [
    "system",
    "os.system",
    "eval",
    "exec",
    "getattr",
    "__import__",
    "ones.__builtins__.get",
    "Point",
    "Point.Inner",
    "Point.evil",
    "Point.__init__.__builtins__.get",
    "Point.__class__",
    "helper",
    "helper.__globals__",
    "fake",
    "make",
    "boom",
    "Boom",
    "bad",
    "bad.boom",
    "bad.Boom",
    "dict",
    "object",
    "set",
    "OrderedDict",
    "Counter",
    "UUID",
    "Fraction",
    "loads",
    "runstring",
    "attrgetter",
    "partial",
    "getcwd",
    "_reconstruct",
    "scalar",
    "ndarray",
    "dtype",
    "modules",
    "path",
    "Point.<locals>",
]
# Spellings of allowed globals and of near misses, drawn as pairs (independent
# draws of module and name rarely meet an allowed global).
PAIRS = [
    ("ps_law_ok", "Point"),
    ("ps_law_ok", "Point.Inner"),
    ("ps_law_ok", "helper"),
    ("ps_law_ok", "make"),
    ("ps_law_ok", "fake"),
    ("ps_law_ok", "system"),
    ("ps_law_ok", "Point.evil"),
    ("ps_law_ok", "bad"),
    ("ps_law_ok", "bad.boom"),
    ("ps_law_ok", "Point.__init__.__builtins__.get"),
    ("ps_law_bad", "boom"),
    ("collections", "Counter"),
    ("collections", "OrderedDict"),
    ("builtins", "dict"),
    ("builtins", "object"),
    ("builtins", "eval"),
    ("__builtin__", "set"),
    ("fractions", "Fraction"),
    ("uuid", "UUID"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy", "ones.__builtins__.get"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy.testing._private.utils", "os.system"),
    ("numpy.testing._private.utils", "runstring"),
    ("os", "system"),
]
TEXTS = [
    "eval",
    "exec",
    "os",
    "system",
    "__import__",
    "__add__",
    "__defaults__",
    "__setstate__",
    "x",
    "f8",
    "",
    "ps_law_bad",
]
ALLOW_LISTS: list[tuple[str, ...]] = [
    (),
    ("ps_law_ok.Point",),
    ("ps_law_ok",),
    ("ps_law_ok.helper", "collections.Counter"),
    tuple(sorted(NUMPY_ARRAYS)),
]
# Extension codes: a dangerous function, an allowed class, os.system, eval, Counter.
EXTENSIONS = {
    201: ("ps_law_bad", "boom"),
    202: ("ps_law_ok", "Point"),
    203: ("os", "system"),
    204: ("builtins", "eval"),
    205: ("collections", "Counter"),
}
# Audit events no restricted load may raise (blocked as well as recorded).
DANGEROUS = frozenset(
    (
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "os.kill",
        "os.remove",
        "os.rmdir",
        "os.rename",
        "os.truncate",
        "os.chmod",
        "os.listdir",
        "os.scandir",
        "subprocess.Popen",
        "shutil.rmtree",
        "exec",
        "compile",
        "open",
        "ctypes.dlopen",
        "socket.connect",
        "builtins.input",
        "webbrowser.open",
        "pickle.find_class",
    )
)

_recording: list[list[str]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _recording and event in DANGEROUS:
        _recording[-1].append(event)
        raise RuntimeError(f"blocked by the restricted-load law: {event}")


_hook_installed = False


class World:
    """The sentinel modules and the baselines of the watched globals."""

    def __init__(self, where: Path) -> None:
        self.where = where
        self.ok = importlib.import_module("ps_law_ok")
        self.bad = importlib.import_module("ps_law_bad")
        self.watched: list[Any] = [
            self.ok.Point,
            self.ok.helper,
            fractions.Fraction,
            uuid.UUID,
        ]
        self.baseline = [_state(obj) for obj in self.watched]

    def markers(self) -> list[str]:
        return [p.name for p in self.where.iterdir() if p.suffix != ".py"]


def _state(obj: Any) -> tuple[Any, ...]:
    return (
        dict(vars(obj)),
        getattr(obj, "__defaults__", None),
        getattr(obj, "__bases__", None),
        obj.__name__,
    )


def _resolve(path: str) -> Any:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _permitted(allow: tuple[str, ...], ok: Any) -> list[Any]:
    """What ``allow`` names, resolved independently of the implementation."""
    objects = [_resolve(path) for path in sorted(_restricted.ALWAYS_ALLOWED)]
    entries = set(allow)
    if "ps_law_ok" in entries:
        objects += [ok.Point, ok.Point.Inner, ok.helper, ok.make]
    if "ps_law_ok.Point" in entries:
        objects += [ok.Point, ok.Point.Inner]
    if "ps_law_ok.helper" in entries:
        objects.append(ok.helper)
    if "collections.Counter" in entries:
        objects.append(collections.Counter)
    if "numpy.ndarray" in entries:  # NUMPY_ARRAYS: exact paths only
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            for path in entries:
                with contextlib.suppress(AttributeError, ImportError):
                    objects.append(_resolve(path))
    return objects


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    global _hook_installed
    if not _hook_installed:  # audit hooks cannot be removed: install one, once
        sys.addaudithook(_audit)
        _hook_installed = True
    with tempfile.TemporaryDirectory(prefix="ps-law-") as tmp:
        where = Path(tmp)
        for name, text in (
            ("ps_law_ok", _OK),
            ("ps_law_bad", _BAD),
            ("ps_law_evil", _EVIL),
        ):
            (where / f"{name}.py").write_text(text)
        sys.path.insert(0, tmp)
        # Everything a law might legitimately import is imported now, so a load
        # that imports anything at all is caught.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            for module in MODULES:
                if module not in ("ps_law_evil", "numpy.f2py.__main__"):
                    with contextlib.suppress(ImportError):
                        importlib.import_module(module)
        try:
            yield World(where)
        finally:
            sys.path.remove(tmp)
            for name in ("ps_law_ok", "ps_law_bad", "ps_law_evil"):
                sys.modules.pop(name, None)


# ---------------------------------------------------------------- stream pieces


def _text(value: str) -> bytes:
    raw = value.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _line_global(opcode: bytes, module: str, name: str) -> bytes:
    return opcode + f"{module}\n{name}\n".encode()


def _ext(code: int, width: int) -> bytes:
    if width == 1:
        return b"\x82" + bytes((code,))
    if width == 2:
        return b"\x83" + struct.pack("<H", code)
    return b"\x84" + struct.pack("<i", code)


@st.composite
def globals_(draw: st.DrawFn) -> bytes:
    """One global pushed on the stack, by any of pickle's four ways."""
    kind = draw(st.sampled_from(["stack", "global", "inst", "ext"]))
    if kind == "ext":
        code = draw(st.sampled_from(sorted(EXTENSIONS)))
        return _ext(code, draw(st.sampled_from([1, 2, 4])))
    module, name = draw(
        st.sampled_from(PAIRS)
        | st.tuples(st.sampled_from(MODULES), st.sampled_from(NAMES))
    )
    if kind == "stack":
        return _text(module) + _text(name) + b"\x93"
    if kind == "global":
        return _line_global(b"c", module, name)
    args = b"".join(draw(st.lists(values(), max_size=2)))
    return b"(" + args + _line_global(b"i", module, name)  # INST: calls it


def values() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.sampled_from(TEXTS).map(_text),
        st.sampled_from([b"N", b"K\x05", b"}", b"]", b")", b"\x88", b"C\x03abc"]),
    )


@st.composite
def pieces(draw: st.DrawFn) -> bytes:
    """A template that uses a global (call, build, instantiate) or one opcode."""
    shape = draw(
        st.sampled_from(["call", "build_slots", "build_dict", "new", "obj", "op"])
    )
    glob = draw(globals_())
    arg = draw(values())
    if shape == "call":
        args = draw(st.lists(values(), max_size=3))
        return glob + b"(" + b"".join(args) + b"tR"
    if shape == "build_slots":  # BUILD (None, {name: value}): setattr on the global
        key = _text(draw(st.sampled_from(TEXTS)))
        return glob + b"N}" + key + arg + b"s\x86b"
    if shape == "build_dict":
        return glob + b"}" + _text(draw(st.sampled_from(TEXTS))) + arg + b"sb"
    if shape == "new":
        return glob + b")\x81"
    if shape == "obj":
        return b"(" + glob + arg + b"o"
    return draw(
        st.sampled_from(
            [
                glob,
                arg,
                b"R",
                b"b",
                b"\x81",
                b"\x92",
                b"s",
                b"u",
                b"a",
                b"e",
                b"t",
                b"(",
                b"\x85",
                b"\x86",
                b"\x94",
                b"h\x00",
                b"h\x01",
                b"0",
                b"2",
            ]
        )
    )


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    head = draw(st.sampled_from([b"", b"\x80\x02", b"\x80\x04", b"\x80\x05"]))
    body = b"".join(draw(st.lists(pieces(), min_size=1, max_size=8)))
    stream = head + body + b"."
    if draw(st.booleans()):
        return b"PK\n" + stream  # the reference release's layout
    return b"\x01PK" + struct.pack("<I", 0) + stream


@contextlib.contextmanager
def _extensions(active: bool) -> Iterator[None]:
    """Register the extension codes, cached by an unrestricted load first."""
    if not active:
        yield
        return
    for code, (module, name) in EXTENSIONS.items():
        copyreg.add_extension(module, name, code)
    try:
        for code in EXTENSIONS:  # resolves (never calls) each code's object
            pickle.loads(b"\x80\x02" + _ext(code, 1) + b".")
        yield
    finally:
        for code, (module, name) in EXTENSIONS.items():
            copyreg.remove_extension(module, name, code)


@contextlib.contextmanager
def _watching(handed: list[Any]) -> Iterator[list[str]]:
    """Record what find_class hands out and the dangerous events of the load."""
    patched = []
    for name in ("_Unpickler", "_ExtensionSafeUnpickler"):
        cls = getattr(_restricted, name, None)
        if cls is not None:
            patched.append((cls, cls.__dict__.get("find_class"), cls.find_class))

    def spy(original: Any) -> Any:
        def find_class(self: Any, module: str, name: str) -> Any:
            obj = original(self, module, name)
            handed.append(obj)
            return obj

        return find_class

    for cls, _, original in patched:
        cls.find_class = spy(original)
    events: list[str] = []
    _recording.append(events)
    try:
        yield events
    finally:
        _recording.pop()
        for cls, own, _ in patched:
            if own is None:
                del cls.find_class
            else:
                cls.find_class = own


# ---------------------------------------------------------------- laws


@given(st.sampled_from(ALLOW_LISTS), payloads(), st.booleans())
def test_no_call_outside_the_allow_list(
    world: World, allow: tuple[str, ...], payload: bytes, with_extensions: bool
) -> None:
    modules = set(sys.modules)
    handed: list[Any] = []
    outcome = "loaded"
    with _extensions(with_extensions), _watching(handed) as events:
        try:
            RestrictedDeserializer(allow)(payload)
        except SerializationError as exc:  # refused or malformed: typed
            outcome = type(exc).__name__
    event(f"{outcome}, {len(handed)} globals handed out")
    assert events == [], f"dangerous events during a restricted load: {events}"
    assert world.markers() == [], "a sentinel module was imported or called"
    # Only the standard codecs ``str(b"...", "idna")`` may look up by name.
    imported = {m for m in set(sys.modules) - modules if not m.startswith("encodings.")}
    assert imported == set(), f"imported: {imported}"
    # Resolved now, not when the world was built: a module another test of this
    # worker imported again since then holds new objects under the same names.
    permitted = _permitted(allow, world.ok)
    for obj in handed:
        assert any(obj is ok for ok in permitted), f"handed out {obj!r}"
    changed = [
        obj
        for obj, before in zip(world.watched, world.baseline, strict=True)
        if _state(obj) != before
    ]
    assert changed == [], f"allowed globals modified: {changed}"


@given(picklable_values())
def test_numpy_preset_reads_what_deserialize_reads(value: Any) -> None:
    payload = serialize(value)
    assert_same(RestrictedDeserializer(NUMPY_ARRAYS)(payload), deserialize(payload))


@given(
    st.lists(
        st.one_of(
            st.datetimes(timezones=st.just(datetime.UTC)),
            st.decimals(allow_nan=False),
            st.fractions(),
            st.uuids(),
            st.dictionaries(st.text(max_size=3), st.integers()).map(
                collections.OrderedDict
            ),
        ),
        max_size=8,
    )
)
def test_always_allowed_types_round_trip(value: list[Any]) -> None:
    got = RestrictedDeserializer()(serialize(value))
    assert got == value
    assert [type(item) for item in got] == [type(item) for item in value]
