"""RestrictedDeserializer: allow-listed globals only, nothing else imported."""

from __future__ import annotations

import collections
import datetime
import pickle
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from proxystore.serialize import (
    DisallowedTypeError,
    RestrictedDeserializer,
    SerializationError,
    deserialize,
    serialize,
)


def _pickle_payload(stream: bytes) -> bytes:
    # Version 1, tag PK, no out-of-band buffers, then the pickle stream.
    return b"\x01PK" + struct.pack("<I", 0) + stream


def test_plain_data_loads_like_deserialize() -> None:
    restricted = RestrictedDeserializer()
    for obj in (
        b"raw",
        "text",
        {"a": [1, 2.5, None, True, (1, 2), {3}, frozenset({4})]},
        collections.OrderedDict(a=1),
        datetime.datetime(2024, 1, 2, tzinfo=datetime.UTC),
        complex(1, 2),
    ):
        assert restricted(serialize(obj)) == obj == deserialize(serialize(obj))


def test_global_outside_the_list_is_refused_without_import() -> None:
    assert "antigravity" not in sys.modules
    stream = b"cantigravity\ngeohash\n."  # protocol 0 GLOBAL opcode
    with pytest.raises(DisallowedTypeError, match=r"antigravity\.geohash") as info:
        RestrictedDeserializer(["numpy"])(_pickle_payload(stream))
    assert info.value.path == "antigravity.geohash"
    assert "antigravity" not in sys.modules
    # eval is a builtin, and still refused.
    evil = pickle.dumps(eval, protocol=5)
    with pytest.raises(DisallowedTypeError, match=r"builtins\.eval"):
        RestrictedDeserializer(["os"])(_pickle_payload(evil))


def test_prefixes_match_on_dotted_boundaries() -> None:
    restricted = RestrictedDeserializer(["collections", "json.decoder.JSONDecoder"])
    assert restricted.allows("collections.Counter")
    assert restricted.allows("collections.abc.Mapping")
    assert restricted.allows("json.decoder.JSONDecoder")
    assert not restricted.allows("collectionsx.Counter")
    assert not restricted.allows("json.decoder.JSONObject")
    assert not restricted.allows("builtins.getattr")
    assert restricted(serialize(collections.Counter("ab"))) == collections.Counter("ab")
    with pytest.raises(DisallowedTypeError, match=r"collections\.Counter"):
        RestrictedDeserializer()(serialize(collections.Counter("ab")))


def test_numpy_out_of_band_buffers_when_allowed() -> None:
    numpy = pytest.importorskip("numpy")
    array = numpy.arange(100_000, dtype="float64")
    payload = serialize(array)
    assert (RestrictedDeserializer(["numpy"])(payload) == array).all()
    with pytest.raises(DisallowedTypeError, match="numpy"):
        RestrictedDeserializer()(payload)


def test_legacy_formats_and_bad_input() -> None:
    restricted = RestrictedDeserializer()
    assert restricted(b"BS\nabc") == b"abc"
    assert restricted(b"PK\n" + pickle.dumps([1, 2])) == [1, 2]
    with pytest.raises(DisallowedTypeError, match="numpy"):
        restricted(b"NP\n\x93NUMPY")
    with pytest.raises(SerializationError, match="unknown format tag"):
        restricted(b"\x01ZZ....")
    with pytest.raises(SerializationError, match="truncated"):
        restricted(b"\x01PK\x00")
    for bad in ("", "a..b", "1x", 3):
        with pytest.raises(ValueError, match="dotted names"):
            RestrictedDeserializer([bad])  # type: ignore[list-item]


def test_pickles_as_its_allow_list() -> None:
    restricted = RestrictedDeserializer(["b", "a", "a"])
    assert restricted.allow == ("a", "b")
    clone = pickle.loads(pickle.dumps(restricted))
    assert clone == restricted
    assert hash(clone) == hash(restricted)
    assert repr(clone) == "RestrictedDeserializer(allow=['a', 'b'])"
    assert RestrictedDeserializer("x").allow == ("x",)


# ------------------------------------------------ attacks on the allow-list
# Each proof builds its pickle stream by hand, the way an attacker would, and
# runs a command whose effect is visible: touching a file.

_MYAPP = """
import dataclasses
import os
from os import system


@dataclasses.dataclass
class Point:
    x: int = 0
    y: int = 0

    class Inner:
        pass

    evil = staticmethod(os.system)

    def touch(self, path):
        open(path, "w").close()


def helper(a=1):
    return a


def fake():
    pass


fake.__qualname__ = "helper"
sub = os
"""


def _text(value: str) -> bytes:
    raw = value.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw  # BINUNICODE


def _global(module: str, name: str) -> bytes:
    return _text(module) + _text(name) + b"\x93"  # STACK_GLOBAL


def _call(*args: bytes) -> bytes:
    return b"(" + b"".join(args) + b"tR"  # MARK args TUPLE REDUCE


def _protocol4(body: bytes) -> bytes:
    return _pickle_payload(b"\x80\x04" + body + b".")


@pytest.fixture
def myapp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A module ``myapp`` with a dataclass, a function and some aliases."""
    (tmp_path / "myapp.py").write_text(_MYAPP)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "myapp", raising=False)
    import myapp as module  # type: ignore[import-not-found]

    yield module
    sys.modules.pop("myapp", None)


def _shell(marker: Path) -> str:
    return f"touch {marker}"


def _python(marker: Path) -> str:
    return f"__import__('os').system({_shell(marker)!r})"


def test_attack_dotted_name_walks_from_an_allowed_module_to_os_system(
    tmp_path: Path,
) -> None:
    pytest.importorskip("numpy")
    marker = tmp_path / "pwned"
    payload = _protocol4(
        _global("numpy.testing._private.utils", "os.system")
        + _call(_text(_shell(marker)))
    )
    with pytest.raises(DisallowedTypeError, match=r"os\.system"):
        RestrictedDeserializer(["numpy"])(payload)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("allow", "module", "name"),
    [
        ("numpy", "numpy", "ones.__builtins__.get"),
        ("myapp.Point", "myapp", "Point.__init__.__builtins__.get"),
    ],
    ids=["numpy-function", "one-dataclass"],
)
def test_attack_dunder_walk_from_an_allowed_name_to_eval(
    allow: str, module: str, name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if module == "numpy":
        pytest.importorskip("numpy")
    else:
        request.getfixturevalue("myapp")  # writes and imports myapp
    marker = tmp_path / "pwned"
    payload = _protocol4(
        _global(module, name) + _call(_text("eval")) + _call(_text(_python(marker)))
    )
    with pytest.raises(DisallowedTypeError, match=r"__builtins__"):
        RestrictedDeserializer([allow])(payload)
    assert not marker.exists()


def test_numpy_preset_loads_arrays_and_refuses_numpy_callables(tmp_path: Path) -> None:
    numpy = pytest.importorskip("numpy")
    from proxystore.serialize import NUMPY_ARRAYS

    restricted = RestrictedDeserializer(NUMPY_ARRAYS)
    values = [
        numpy.arange(12).reshape(3, 4).T,  # pickled: not contiguous
        numpy.array([1, "a", None], dtype=object),
        numpy.zeros(3, dtype=[("a", "<i4"), ("b", "f8")]),
        numpy.float64(1.5),
        numpy.int8(-3),
        numpy.datetime64("2024-01-02"),
        numpy.dtype("f8"),
        numpy.float32,
    ]
    for value in values:
        for payload in (serialize(value), b"PK\n" + pickle.dumps(value, protocol=4)):
            got = restricted(payload)
            assert type(got) is type(value)
            assert pickle.dumps(got, protocol=5) == pickle.dumps(value, protocol=5)
    # The whole-numpy prefix trusts these; the preset does not.
    marker = tmp_path / "pwned"
    for module, name, args in (
        ("numpy.testing._private.utils", "runstring", (_python(marker), "{}")),
        ("numpy", "save", (str(marker), "[]")),
        ("numpy", "memmap", (str(marker),)),
    ):
        body = _global(module, name) + b"(" + _text(args[0])
        body += b"}" if args[1:] == ("{}",) else b"]" if args[1:] else b""
        with pytest.raises(DisallowedTypeError):
            restricted(_protocol4(body + b"tR"))
    assert not marker.exists()


def test_a_module_is_never_handed_out(myapp: Any) -> None:
    for allow, module, name in (
        (["os"], "os", "path"),
        (["myapp"], "myapp", "sub"),
        (["myapp"], "myapp", "sub.system"),
        (["collections"], "collections", "abc"),
    ):
        with pytest.raises(DisallowedTypeError):
            RestrictedDeserializer(allow)(_protocol4(_global(module, name)))


def test_aliases_resolve_to_what_they_are(myapp: Any) -> None:
    restricted = RestrictedDeserializer(["myapp"])
    # myapp.system is os.system, myapp.Point.evil too: posix.system is not allowed.
    for name in ("system", "Point.evil"):
        with pytest.raises(DisallowedTypeError, match=r"(posix|nt)\.system"):
            restricted(_protocol4(_global("myapp", name)))
    # A function that claims another name is refused (it is not found there).
    with pytest.raises(DisallowedTypeError, match=r"claims to be 'myapp\.helper'"):
        restricted(_protocol4(_global("myapp", "fake")))
    # Walking through a function (not a class) is refused.
    with pytest.raises(DisallowedTypeError, match="only classes"):
        restricted(_protocol4(_global("myapp", "helper.x")))


def test_dataclasses_and_nested_classes_load(myapp: Any) -> None:
    restricted = RestrictedDeserializer(["myapp.Point"])
    points = [myapp.Point(i, -i) for i in range(3)]
    assert restricted(serialize(points)) == points
    inner = restricted(serialize(myapp.Point.Inner()))
    assert type(inner) is myapp.Point.Inner
    with pytest.raises(DisallowedTypeError, match=r"myapp\.helper"):
        restricted(serialize(myapp.helper))
    assert RestrictedDeserializer(["myapp.helper"])(serialize(myapp.helper)) is (
        myapp.helper
    )


def test_dunder_modules_are_not_imported() -> None:
    pytest.importorskip("numpy")
    assert "numpy.f2py.__main__" not in sys.modules
    with pytest.raises(DisallowedTypeError, match="dunder"):
        RestrictedDeserializer(["numpy"])(
            _protocol4(_global("numpy.f2py.__main__", "main"))
        )
    assert "numpy.f2py.__main__" not in sys.modules


def test_build_may_not_modify_an_allowed_class() -> None:
    import fractions

    add = fractions.Fraction.__dict__["__add__"]
    # BUILD with slot state on the class itself: setattr(Fraction, "__add__", str).
    body = (
        _global("fractions", "Fraction")
        + b"N}"
        + _text("__add__")
        + _global("builtins", "str")
        + b"s\x86b"
    )
    with pytest.raises(DisallowedTypeError, match=r"modified.*fractions\.Fraction"):
        RestrictedDeserializer()(_protocol4(body))
    assert fractions.Fraction.__dict__["__add__"] is add
    assert fractions.Fraction(1, 2) + 1 == fractions.Fraction(3, 2)


def test_build_may_not_modify_an_allowed_function(myapp: Any) -> None:
    restricted = RestrictedDeserializer(["myapp.helper"])
    defaults = b"N}" + _text("__defaults__") + b"K\x05\x85s\x86b"
    with pytest.raises(DisallowedTypeError, match=r"modified.*myapp\.helper"):
        restricted(_protocol4(_global("myapp", "helper") + defaults))
    attribute = b"}" + _text("flag") + b"K\x05sb"  # into helper.__dict__
    with pytest.raises(DisallowedTypeError, match=r"modified.*myapp\.helper"):
        restricted(_protocol4(_global("myapp", "helper") + attribute))
    assert myapp.helper() == 1
    assert myapp.helper.__dict__ == {}


def test_extension_codes_are_decided_like_globals() -> None:
    import copyreg
    import os

    code = 0x7FFFFF00  # far from any code a library would register
    copyreg.add_extension("os", "getcwd", code)
    copyreg.add_extension("collections", "Counter", code + 1)
    try:
        ext = b"\x84" + struct.pack("<i", code)  # EXT4
        # An unrestricted load caches the code's object in copyreg ...
        assert pickle.loads(b"\x80\x02" + ext + b".") is os.getcwd
        # ... and the restricted load still decides it (not in the list).
        with pytest.raises(DisallowedTypeError, match=r"os\.getcwd"):
            RestrictedDeserializer()(_protocol4(ext))
        counter = b"\x84" + struct.pack("<i", code + 1)
        with pytest.raises(DisallowedTypeError, match=r"collections\.Counter"):
            RestrictedDeserializer()(_protocol4(counter))
        allowed = RestrictedDeserializer(["collections.Counter"])
        assert allowed(_protocol4(counter)) is collections.Counter
    finally:
        copyreg.remove_extension("os", "getcwd", code)
        copyreg.remove_extension("collections", "Counter", code + 1)
    assert RestrictedDeserializer()(serialize({1, 2})) == {1, 2}


def test_python2_names_of_old_protocols_still_load() -> None:
    for protocol in (0, 1, 2):
        payload = b"PK\n" + pickle.dumps([{1, 2}, frozenset({3})], protocol=protocol)
        assert RestrictedDeserializer()(payload) == [{1, 2}, frozenset({3})]


def test_decisions_follow_a_rebound_name(myapp: Any) -> None:
    import os

    restricted = RestrictedDeserializer(["myapp.Point"])
    payload = serialize(myapp.Point(1, 2))
    assert type(restricted(payload)) is myapp.Point  # decision cached
    original = myapp.Point
    try:
        myapp.Point = os.system  # the cached decision must not outlive this
        with pytest.raises(DisallowedTypeError, match="system"):
            restricted(payload)
    finally:
        myapp.Point = original
    assert type(restricted(payload)) is original


def test_attack_allowing_a_class_does_not_allow_calling_its_methods(
    myapp: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    # Point.touch(None, marker): a method the payload calls with its own arguments.
    payload = _protocol4(
        _global("myapp", "Point.touch") + _call(b"N", _text(str(marker)))
    )
    with pytest.raises(DisallowedTypeError, match="method of a class"):
        RestrictedDeserializer(["myapp.Point"])(payload)
    assert not marker.exists()
    # Listed by its full path, or its module allowed as a whole, it loads.
    for allow in ("myapp.Point.touch", "myapp"):
        RestrictedDeserializer([allow])(payload)
        assert marker.exists()
        marker.unlink()


def test_attack_numpy_preset_cannot_rebind_names_in_numpy_dtypes() -> None:
    numpy = pytest.importorskip("numpy")
    from proxystore.serialize import NUMPY_ARRAYS

    namespace = vars(numpy.dtypes)
    saved, saved_all = dict(namespace), list(numpy.dtypes.__all__)
    # _add_dtype_helper(int, "Float64DType") would rebind numpy.dtypes.Float64DType.
    payload = _protocol4(
        _global("numpy.dtypes", "_add_dtype_helper")
        + _call(_global("builtins", "int"), _text("Float64DType"))
    )
    try:
        with pytest.raises(DisallowedTypeError, match="_add_dtype_helper"):
            RestrictedDeserializer(NUMPY_ARRAYS)(payload)
    finally:
        changed = namespace != saved or numpy.dtypes.__all__ != saved_all
        for key in set(namespace) - set(saved):
            del namespace[key]
        namespace.update(saved)
        numpy.dtypes.__all__[:] = saved_all
    assert not changed


def _dtype(numpy: Any, char: str, state: tuple[Any, ...], *, copy: bool) -> Any:
    """A stand-in that pickles as numpy.dtype(char, False, copy) + BUILD(state)."""

    class Forged:
        def __reduce__(self) -> tuple[Any, ...]:
            return (numpy.dtype, (char, False, copy), state)

    return Forged()


def test_attack_numpy_dtype_flags_turn_payload_bytes_into_object_pointers() -> None:
    numpy = pytest.importorskip("numpy")
    from proxystore.serialize import NUMPY_ARRAYS

    frombuffer = sys.modules["numpy._core.numeric"]._frombuffer

    target = ["a live object the payload should not reach"]
    # An object dtype whose state says "no Python objects inside": numpy then
    # reads the payload's 8 bytes as a PyObject pointer (here: to `target`).
    plain = _dtype(numpy, "O8", (3, "|", None, None, None, -1, -1, 0), copy=True)

    class Forged:
        def __reduce__(self) -> tuple[Any, ...]:
            pointer = id(target).to_bytes(8, sys.byteorder)
            return (frombuffer, (pointer, plain, (1,), "C"))

    with pytest.raises(DisallowedTypeError, match="numpy dtype"):
        # Before the fix this loaded, and got.item(0) was `target` itself.
        RestrictedDeserializer(NUMPY_ARRAYS)(serialize(Forged()))


@pytest.mark.parametrize(
    "fields",
    [
        # An int64 and an object pointer at the same offset.
        {"a": ("i8", 0), "b": ("O", 0)},
        # A field past the end of the item.
        {"a": ("i8", 64)},
    ],
    ids=["overlapping-object", "out-of-bounds"],
)
def test_attack_numpy_dtype_field_layout_numpy_would_refuse(
    fields: dict[str, tuple[str, int]],
) -> None:
    numpy = pytest.importorskip("numpy")
    from proxystore.serialize import NUMPY_ARRAYS

    layout = {
        name: (numpy.dtype(kind), offset) for name, (kind, offset) in fields.items()
    }
    flags = numpy.dtype([("o", "O")]).flags
    state = (3, "|", None, tuple(layout), layout, 8, 1, flags)
    forged = _dtype(numpy, "V8", state, copy=True)
    with pytest.raises(DisallowedTypeError, match="numpy dtype"):
        RestrictedDeserializer(NUMPY_ARRAYS)(serialize(forged))


def test_attack_numpy_shared_dtypes_cannot_be_changed() -> None:
    numpy = pytest.importorskip("numpy")
    from proxystore.serialize import NUMPY_ARRAYS

    shared = numpy.dtype("f8")
    saved = shared.__reduce__()[2]
    # copy=False hands out numpy's own float64; a valid big-endian state would
    # make every float64 array made later in the process read its bytes swapped.
    swapped = (saved[0], ">" if sys.byteorder == "little" else "<", *saved[2:])
    forged = _dtype(numpy, "f8", swapped, copy=False)
    try:
        with pytest.raises(DisallowedTypeError, match="did not make"):
            RestrictedDeserializer(NUMPY_ARRAYS)(serialize(forged))
    finally:
        changed = shared.__reduce__()[2] != saved
        shared.__setstate__(saved)
    assert not changed
    # Its unchanged state is a no-op, and copies load as before.
    restricted = RestrictedDeserializer(NUMPY_ARRAYS)
    assert restricted(serialize(_dtype(numpy, "f8", saved, copy=False))) is shared
    assert restricted(serialize(numpy.dtype(">f8"))) == numpy.dtype(">f8")
    assert restricted(serialize(numpy.dtype("f8,O"))) == numpy.dtype("f8,O")


def _ndarray_args(kind: str, raw: bytes, offset: int) -> bytes:
    """Arguments (shape, dtype, buffer, offset) for numpy.ndarray, as opcodes."""
    shape = b"K\x01\x85"  # (1,)
    buffer = b"C" + bytes([len(raw)]) + raw  # SHORT_BINBYTES
    return shape + _text(kind) + buffer + b"J" + struct.pack("<i", offset)


@pytest.mark.parametrize("opcode", ["REDUCE", "NEWOBJ", "OBJ", "INST"])
@pytest.mark.parametrize(
    ("kind", "offset"),
    [("O", 0), ("u1", -64)],
    ids=["object-pointer", "read-before-buffer"],
)
def test_attack_calling_numpy_ndarray_on_payload_bytes(
    opcode: str, kind: str, offset: int
) -> None:
    pytest.importorskip("numpy")
    from proxystore.serialize import NUMPY_ARRAYS

    target = ["a live object the payload should not reach"]
    args = _ndarray_args(kind, id(target).to_bytes(8, sys.byteorder), offset)
    cls = _global("numpy", "ndarray")
    body = {
        "REDUCE": cls + b"(" + args + b"tR",
        "NEWOBJ": cls + b"(" + args + b"t\x81",
        "OBJ": b"(" + cls + args + b"o",
        "INST": b"(" + args + b"inumpy\nndarray\n",
    }[opcode]
    with pytest.raises(DisallowedTypeError, match=r"numpy\.ndarray"):
        # Before the fix: an array holding `target` itself, or 64 bytes of heap.
        RestrictedDeserializer(NUMPY_ARRAYS)(_protocol4(body))


def test_attack_an_allowed_ndarray_subclass_is_not_a_way_around(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("numpy")
    (tmp_path / "ps_arrays.py").write_text(
        "import numpy\n\n\nclass Grid(numpy.ndarray):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "ps_arrays", raising=False)
    target = ["a live object the payload should not reach"]
    args = _ndarray_args("O", id(target).to_bytes(8, sys.byteorder), 0)
    # NEWOBJ: Grid.__new__(Grid, ...) is numpy.ndarray.__new__ on payload bytes.
    payload = _protocol4(_global("ps_arrays", "Grid") + b"(" + args + b"t\x81")
    with pytest.raises(DisallowedTypeError, match=r"numpy\.ndarray"):
        RestrictedDeserializer(["ps_arrays.Grid"])(payload)


def test_attack_a_dtype_a_library_holds_cannot_be_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    numpy = pytest.importorskip("numpy")
    from proxystore.serialize import NUMPY_ARRAYS

    (tmp_path / "ps_lib.py").write_text(
        "import numpy\n\nCACHED = numpy.dtype([('a', '<i4')])\n\n\n"
        "def cached():\n    return CACHED\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "ps_lib", raising=False)
    import ps_lib  # type: ignore[import-not-found]

    saved = ps_lib.CACHED.__reduce__()[2]
    # A valid state (another field name) for the library's own dtype object.
    renamed = numpy.dtype([("pwned", "<i4")]).__reduce__()[2]
    state = pickle.dumps(renamed, protocol=2)[2:-1]  # its opcodes, no PROTO/STOP
    payload = _protocol4(_global("ps_lib", "cached") + b"(tR" + state + b"b")
    try:
        with pytest.raises(DisallowedTypeError, match="did not make"):
            RestrictedDeserializer([*NUMPY_ARRAYS, "ps_lib.cached"])(payload)
    finally:
        changed = ps_lib.CACHED.names != ("a",)
        ps_lib.CACHED.__setstate__(saved)
    assert not changed


def test_attack_a_dtype_in_use_cannot_be_changed_afterwards() -> None:
    numpy = pytest.importorskip("numpy")
    from proxystore.serialize import NUMPY_ARRAYS

    target = ["a live object the payload should not reach"]
    pointer = id(target).to_bytes(8, sys.byteorder)
    # D = dtype("V8", copy=True): plain bytes, so an array may take 8 payload bytes.
    body = _global("numpy", "dtype") + _text("V8") + b"\x89\x88\x87R\x940"
    # arr = _reconstruct(ndarray, (0,), b"b"); BUILD (1, (1,), D, False, pointer).
    body += _global("numpy._core.multiarray", "_reconstruct")
    body += _global("numpy", "ndarray") + b"K\x00\x85C\x01b\x87R"
    body += b"(K\x01K\x01\x85h\x00\x89C\x08" + pointer + b"tb"
    # Then BUILD D into {"o": object}: a valid state, but arr already uses D.
    boxed = numpy.dtype([("o", "O")]).__reduce__()[2]
    body += b"h\x00" + pickle.dumps(boxed, protocol=2)[2:-1] + b"b0"
    with pytest.raises(DisallowedTypeError, match="in use"):
        # Before the fix: arr[0]["o"] was `target` itself.
        RestrictedDeserializer(NUMPY_ARRAYS)(_protocol4(body))


def test_attack_an_array_in_use_cannot_be_rebuilt() -> None:
    pytest.importorskip("numpy")
    from proxystore.serialize import NUMPY_ARRAYS

    def dtype(kind: str) -> bytes:
        return _global("numpy", "dtype") + _text(kind) + b"\x89\x88\x87R"

    def state(shape: int, raw: bytes) -> bytes:
        size = b"J" + struct.pack("<i", shape) + b"\x85"
        data = b"B" + struct.pack("<I", len(raw)) + raw  # BINBYTES
        return b"(K\x01" + size + dtype("f8") + b"\x89" + data + b"t"

    # arr = _reconstruct(ndarray, (0,), b"b"), BUILD with 4096 float64s.
    body = _global("numpy._core.multiarray", "_reconstruct")
    body += _global("numpy", "ndarray") + b"K\x00\x85C\x01b\x87R\x94"
    body += state(4096, bytes(32768)) + b"b0"
    # view = _frombuffer(arr, u1, (32768,), "C"): a view of arr's memory.
    body += _global("numpy._core.numeric", "_frombuffer") + b"(h\x00" + dtype("u1")
    body += b"J" + struct.pack("<i", 32768) + b"\x85" + _text("C") + b"tR\x940"
    # BUILD arr again: numpy frees the memory the view still points into.
    body += b"h\x00" + state(1, bytes(8)) + b"b0h\x01"
    with pytest.raises(DisallowedTypeError, match="array"):
        # Before the fix: a view of freed memory (reading it crashed the process).
        RestrictedDeserializer(NUMPY_ARRAYS)(_protocol4(body))


def test_attack_reconstruct_does_not_hand_out_uninitialised_memory() -> None:
    pytest.importorskip("numpy")
    from proxystore.serialize import NUMPY_ARRAYS

    # numpy's pickles call _reconstruct(cls, (0,), b"b") only; a larger shape is
    # an array of whatever the process's heap held there (no BUILD follows).
    body = _global("numpy._core.multiarray", "_reconstruct")
    body += _global("numpy", "ndarray") + b"J" + struct.pack("<i", 1 << 16)
    body += b"\x85" + _text("f8") + b"\x87R"
    with pytest.raises(DisallowedTypeError, match="_reconstruct"):
        RestrictedDeserializer(NUMPY_ARRAYS)(_protocol4(body))
