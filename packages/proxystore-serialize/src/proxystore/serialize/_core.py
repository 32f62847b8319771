"""Tagged object serialization with zero-copy out-of-band buffers.

Wire format (version 1)::

    byte 0      format version (1)
    bytes 1-2   format tag (ASCII), e.g. b"PK"
    bytes 3-    payload, laid out as the tag's format defines

Tags, tried in this order when serializing (the first that supports the object and
succeeds wins):

``BS``  exact ``bytes``: the raw bytes.
``US``  exact ``str``: UTF-8 text.
``PD``  ``pandas.DataFrame``: the pickle layout below (its blocks are numpy arrays).
``PL``  ``polars.DataFrame``: Arrow IPC file bytes.
``NA``  a plain contiguous ``numpy.ndarray`` (no object or structured dtype): a
        small header, then the raw data at offset 64 (see below).
``PK``  anything picklable: pickle protocol 5 with out-of-band buffers.
``CP``  cloudpickle fallback (lambdas, local functions), same layout as ``PK``.

Pickle layout (``PK``, ``PD``, ``CP``), all integers little-endian::

    u32 n                      number of out-of-band buffers
    n == 0:  pickle stream     (rest of the data)
    n > 0:   u64 stream_len, n * u64 buffer_len, pickle stream,
             then each buffer starting at the next multiple of 64 bytes
             (counted from the start of the data), zero padding in between.

Array layout (``NA``)::

    u8 flags (1: Fortran order, 2: read-only), u8 ndim, u16 dtype length,
    dtype string (numpy's ``dtype.str``), ndim * u64 shape,
    zero padding, then the data starting at offset 64 (counted from the start
    of the payload; headers never need more).

Decoding an array is ``numpy.frombuffer`` plus a reshape: no pickle machinery
on the path, which matters most when caches are cold (a fresh worker).

Payloads of the reference release (``b"PK\\n"`` + pickle, ...) are also read.

Buffers are placed after the stream instead of being copied into it, so a large
numpy array is copied exactly once when serializing (into the output) and at most
once when deserializing (see [`deserialize`][proxystore.serialize._core.deserialize]).
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import pickle
import struct
import sys
from collections.abc import Callable, Sequence
from typing import Any, Final, NamedTuple, TypeAlias, TypeGuard, cast

from proxystore.serialize._culprit import describe_failure
from proxystore.serialize._memory import LARGE, new_buffer, new_bytes
from proxystore.serialize.exceptions import SerializationError
from proxystore.serialize.protocols import BytesLike

__all__ = [
    "FORMAT_VERSION",
    "deserialize",
    "deserialize_parts",
    "is_bytes_like",
    "serialize",
    "serialize_parts",
]

#: Version byte written first in every payload; bump it when the layout changes.
FORMAT_VERSION: Final = 1
_PREFIX_LEN: Final = 3
#: Out-of-band buffers start at offsets that are multiples of this, so numpy views
#: over them are aligned for every dtype (and for SIMD loads).
_ALIGN: Final = 64
_ZEROS: Final = bytes(_ALIGN)
_U32: Final = struct.Struct("<I")
_U64: Final = struct.Struct("<Q")
_COUNT_END: Final = _PREFIX_LEN + _U32.size
_NO_BUFFERS: Final = _U32.pack(0)
#: The 3-byte prefix of a payload as ``bytes``, in one call.
_PREFIX_OF: Final = struct.Struct(f"{_PREFIX_LEN}s").unpack_from
_PICKLE_PROTOCOL: Final = 5
#: Small in-band pickle streams are sliced out of ``bytes`` input (cheaper than a
#: memoryview); larger ones are read through a view to avoid copying them.
_SLICE_LIMIT: Final = 1 << 16

#: Payload as the format loaders see it: the caller's ``bytes`` object itself, or a
#: flat unsigned-byte view of any other buffer.
_Payload: TypeAlias = bytes | memoryview


def _prefix(tag: bytes) -> bytes:
    return bytes((FORMAT_VERSION,)) + tag


class _Format(NamedTuple):
    tag: bytes
    name: str
    supported: Callable[[Any], bool]
    dump: Callable[[Any], bytes]
    load: Callable[[_Payload], Any]
    #: Like ``dump`` but returns parts to concatenate (``None``: ``[dump(obj)]``).
    parts: Callable[[Any], list[bytes | memoryview]] | None = None


# ---------------------------------------------------------------- pickle layout


def _pickle_parts(
    prefix: bytes,
    dumps: Callable[..., bytes],
    obj: Any,
) -> tuple[list[bytes | memoryview], int]:
    """Return the pickle layout of ``obj`` as parts to concatenate, and its size."""
    buffers: list[pickle.PickleBuffer] = []
    stream = dumps(obj, protocol=_PICKLE_PROTOCOL, buffer_callback=buffers.append)
    if not buffers:
        head = _IN_BAND[prefix]
        return [head, stream], len(head) + len(stream)
    return _lay_out(prefix, dumps, obj, stream, buffers)


def _lay_out(
    prefix: bytes,
    dumps: Callable[..., bytes],
    obj: Any,
    stream: bytes,
    buffers: list[pickle.PickleBuffer],
) -> tuple[list[bytes | memoryview], int]:
    try:
        raws = [buf.raw() for buf in buffers]
    except BufferError:
        # A non-contiguous exporter cannot be laid out flat; let pickle copy it in-band.
        head = _IN_BAND[prefix]
        stream = dumps(obj, protocol=_PICKLE_PROTOCOL)
        return [head, stream], len(head) + len(stream)
    count = len(raws)
    table = struct.pack(f"<IQ{count}Q", count, len(stream), *(r.nbytes for r in raws))
    parts: list[bytes | memoryview] = [prefix, table, stream]
    pos = len(prefix) + len(table) + len(stream)
    for raw in raws:
        pad = -pos % _ALIGN
        if pad:
            parts.append(_ZEROS[:pad])
        parts.append(raw)
        pos += pad + raw.nbytes
    return parts, pos


def _dump_pickle_layout(
    prefix: bytes,
    dumps: Callable[..., bytes],
    obj: Any,
) -> bytes:
    buffers: list[pickle.PickleBuffer] = []
    stream = dumps(obj, protocol=_PICKLE_PROTOCOL, buffer_callback=buffers.append)
    if not buffers:
        return _IN_BAND[prefix] + stream
    parts, size = _lay_out(prefix, dumps, obj, stream, buffers)
    # The only copy of the buffers' bytes: straight into the output.
    return _join(parts, size)


def _join(parts: list[bytes | memoryview], size: int) -> bytes:
    fresh = new_bytes(size) if size >= LARGE else None
    if fresh is None:
        return b"".join(parts)
    result, view = fresh
    with view:
        pos = 0
        for part in parts:
            end = pos + len(part)
            view[pos:end] = part
            pos = end
    return result


def _load_pickle_layout(
    data: _Payload, loads: Callable[..., Any] = pickle.loads
) -> Any:
    total = len(data)
    if total < _COUNT_END:
        raise SerializationError(
            f"truncated payload: expected at least {_COUNT_END} bytes, got {total}"
        )
    if data[_PREFIX_LEN:_COUNT_END] == _NO_BUFFERS:  # common case, cheapest test
        if type(data) is bytes and total > _SLICE_LIMIT:
            data = memoryview(data)
        return loads(data[_COUNT_END:])
    (count,) = _U32.unpack_from(data, _PREFIX_LEN)
    table_end = _COUNT_END + _U64.size * (count + 1)
    if table_end > total:
        raise SerializationError(
            f"truncated payload: header declares {count} buffers, which needs "
            f"{table_end} bytes, got {total}"
        )
    stream_len, *lengths = struct.unpack_from(f"<{count + 1}Q", data, _COUNT_END)
    stream_end = table_end + stream_len
    offsets: list[int] = []
    pos = stream_end
    for length in lengths:
        pos += -pos % _ALIGN
        offsets.append(pos)
        pos += length
    if pos > total:
        raise SerializationError(
            f"truncated payload: expected {pos} bytes, got {total}"
        )
    if pos < total:
        raise SerializationError(
            f"corrupt payload: header accounts for {pos} bytes, got {total}"
        )
    view = memoryview(data)
    source, shift = view, 0
    if view.readonly and not getattr(view.obj, "proxystore_zero_copy", False):
        # Buffers over read-only memory would give read-only arrays; copy the whole
        # out-of-band region once so results are writable, as with plain pickle.
        shift = offsets[0]
        source = new_buffer(total - shift)
        source[:] = view[shift:]
    views = [
        source[o - shift : o - shift + n] for o, n in zip(offsets, lengths, strict=True)
    ]
    return loads(view[table_end:stream_end], buffers=views)


# ---------------------------------------------------------------- formats


def _dataframe_check(root: str) -> Callable[[Any], bool]:
    prefix = root + "."

    def supported(obj: Any) -> bool:
        # Checking the type's module first keeps heavy libraries unimported unless
        # the object really came from them.
        module = type(obj).__module__
        if module != root and not module.startswith(prefix):
            return False
        library = sys.modules.get(root)
        return library is not None and isinstance(obj, library.DataFrame)

    return supported


_NA: Final = _prefix(b"NA")
_BS: Final = _prefix(b"BS")
_US: Final = _prefix(b"US")
_PD: Final = _prefix(b"PD")
_PL: Final = _prefix(b"PL")
_PK: Final = _prefix(b"PK")
_CP: Final = _prefix(b"CP")


def _dump_bytes(obj: bytes) -> bytes:
    return _BS + obj


def _load_bytes(data: _Payload) -> bytes:
    size = len(data) - _PREFIX_LEN
    fresh = new_bytes(size) if size >= LARGE else None
    if fresh is None:
        return bytes(data[_PREFIX_LEN:])
    # Large: fill huge-page-advised storage (a plain copy faults every 4 KiB page).
    result, view = fresh
    with view:
        view[:] = memoryview(data)[_PREFIX_LEN:]
    return result


def _dump_str(obj: str) -> bytes:
    return _US + obj.encode("utf-8")


def _load_str(data: _Payload) -> str:
    return str(data[_PREFIX_LEN:], "utf-8")


def _dump_pandas(obj: Any) -> bytes:
    return _dump_pickle_layout(_PD, pickle.dumps, obj)


def _dump_polars(obj: Any) -> bytes:
    out = io.BytesIO()
    out.write(_PL)
    obj.write_ipc(out)
    return out.getvalue()


def _load_polars(data: _Payload) -> Any:
    polars = importlib.import_module("polars")
    return polars.read_ipc(io.BytesIO(data[_PREFIX_LEN:]))


_NA_HEAD: Final = struct.Struct("<BBH")
#: The whole 64-byte array header as ``bytes`` (one call; the key of `_HEADS`).
_NA_HEADER_OF: Final = struct.Struct("64s").unpack_from
_NA_DATA: Final = 64
_NA_FORTRAN: Final = 1
_NA_READONLY: Final = 2


def _plain_array(obj: Any) -> bool:
    if type(obj).__module__ != "numpy":
        return False
    numpy = sys.modules.get("numpy")
    if numpy is None or type(obj) is not numpy.ndarray:
        return False
    dtype = obj.dtype
    flags = obj.flags
    return bool(
        dtype.fields is None
        and not dtype.hasobject
        and dtype.subdtype is None
        and dtype.itemsize > 0
        and obj.ndim <= 32
        and (flags.c_contiguous or flags.f_contiguous)
    )


def _parts_array(obj: Any) -> list[bytes | memoryview]:
    flags = obj.flags
    mode = (0 if flags.c_contiguous else _NA_FORTRAN) | (
        0 if flags.writeable else _NA_READONLY
    )
    dtype = obj.dtype.str.encode("ascii")
    head = b"".join(
        (
            _NA,
            _NA_HEAD.pack(mode, obj.ndim, len(dtype)),
            dtype,
            struct.pack(f"<{obj.ndim}Q", *obj.shape),
        )
    )
    if len(head) > _NA_DATA:
        raise ValueError("array header too long")
    raw = pickle.PickleBuffer(obj).raw() if obj.size else b""
    return [head, _ZEROS[: _NA_DATA - len(head)], raw]


def _dump_array(obj: Any) -> bytes:
    parts = _parts_array(obj)
    return _join(parts, _NA_DATA + len(parts[2]))


class _ArrayHead(NamedTuple):
    """A decoded array header."""

    dtype: Any
    shape: tuple[int, ...]
    items: int
    order: str
    readonly: bool


#: Decoded array headers by their 64 header bytes (a bounded cache): arrays of one
#: shape and dtype, sent again and again, skip the header parse.
_HEADS: dict[bytes, _ArrayHead] = {}


def _parse_array_head(data: _Payload) -> _ArrayHead:
    numpy = sys.modules.get("numpy") or importlib.import_module("numpy")
    mode, ndim, dtype_len = _NA_HEAD.unpack_from(data, _PREFIX_LEN)
    start = _PREFIX_LEN + _NA_HEAD.size
    shape_at = start + dtype_len
    if shape_at + 8 * ndim > _NA_DATA:
        raise SerializationError("corrupt array header")
    dtype = numpy.dtype(bytes(data[start:shape_at]).decode("ascii"))
    shape = struct.unpack_from(f"<{ndim}Q", data, shape_at)
    count = 1
    for side in shape:
        count *= side
    order = "F" if mode & _NA_FORTRAN else "C"
    return _ArrayHead(dtype, shape, count, order, bool(mode & _NA_READONLY))


def _load_array(data: _Payload) -> Any:
    total = len(data)
    if total < _NA_DATA:
        raise SerializationError(f"truncated array payload: {total} bytes")
    (key,) = _NA_HEADER_OF(data)
    head = _HEADS.get(key)
    if head is None:
        head = _parse_array_head(data)
        if len(_HEADS) < 256:
            _HEADS[key] = head
    dtype = head.dtype
    if total != _NA_DATA + head.items * dtype.itemsize:
        raise SerializationError(
            f"corrupt array payload: {total} bytes for shape {head.shape} of {dtype}"
        )
    view = data if type(data) is memoryview else memoryview(data)
    if view.readonly and not getattr(view.obj, "proxystore_zero_copy", False):
        # As for pickled buffers: read-only input is copied once, so the array is
        # writable (unless it was stored read-only) and independent of it.
        copy = new_buffer(total - _NA_DATA)
        copy[:] = view[_NA_DATA:]
        view, offset = copy, 0
    else:
        offset = _NA_DATA
    numpy = sys.modules.get("numpy") or importlib.import_module("numpy")
    # One constructor call with the final shape (cheaper than frombuffer, reshape).
    array = numpy.ndarray(head.shape, dtype, view, offset, order=head.order)
    if head.readonly and array.flags.writeable:
        array.flags.writeable = False
    return array


def _dump_pickle(obj: Any) -> bytes:
    return _dump_pickle_layout(_PK, pickle.dumps, obj)


def _has_cloudpickle(obj: Any) -> bool:
    return importlib.util.find_spec("cloudpickle") is not None


def _dump_cloudpickle(obj: Any) -> bytes:
    cloudpickle = importlib.import_module("cloudpickle")
    return _dump_pickle_layout(_CP, cloudpickle.dumps, obj)


def _always(obj: Any) -> bool:
    return True


def _parts_pandas(obj: Any) -> list[bytes | memoryview]:
    return _pickle_parts(_PD, pickle.dumps, obj)[0]


def _parts_pickle(obj: Any) -> list[bytes | memoryview]:
    return _pickle_parts(_PK, pickle.dumps, obj)[0]


def _parts_cloudpickle(obj: Any) -> list[bytes | memoryview]:
    cloudpickle = importlib.import_module("cloudpickle")
    return _pickle_parts(_CP, cloudpickle.dumps, obj)[0]


_FORMATS: Final = (
    _Format(b"BS", "bytes", lambda o: type(o) is bytes, _dump_bytes, _load_bytes),
    _Format(b"US", "str", lambda o: type(o) is str, _dump_str, _load_str),
    _Format(
        b"PD",
        "pandas",
        _dataframe_check("pandas"),
        _dump_pandas,
        _load_pickle_layout,
        _parts_pandas,
    ),
    _Format(b"PL", "polars", _dataframe_check("polars"), _dump_polars, _load_polars),
    _Format(b"NA", "numpy", _plain_array, _dump_array, _load_array, _parts_array),
    _Format(b"PK", "pickle", _always, _dump_pickle, _load_pickle_layout, _parts_pickle),
    _Format(
        b"CP",
        "cloudpickle",
        _has_cloudpickle,
        _dump_cloudpickle,
        _load_pickle_layout,
        _parts_cloudpickle,
    ),
)


def _load_plain_pickle(data: _Payload) -> Any:
    return pickle.loads(memoryview(data)[_PREFIX_LEN:])


def _load_numpy_save(data: _Payload) -> Any:
    numpy = importlib.import_module("numpy")
    # Same trust model as the pickle formats: the reference wrote object arrays
    # with pickle inside numpy's .npy container.
    return numpy.load(io.BytesIO(data[_PREFIX_LEN:]), allow_pickle=True)


def _load_pandas_pickle(data: _Payload) -> Any:
    pandas = importlib.import_module("pandas")
    return pandas.read_pickle(io.BytesIO(data[_PREFIX_LEN:]))


def _reading_only(tag: bytes, name: str, load: Callable[[_Payload], Any]) -> _Format:
    return _Format(tag, name, lambda o: False, _dump_never, load)


def _dump_never(obj: Any) -> bytes:  # never selected: supported() is False
    raise NotImplementedError("legacy formats are read, never written")


#: Payloads written by the reference release (``<2-byte id>\n<payload>``) are read
#: too, so data already stored by it stays usable. Their first byte is an ASCII
#: letter, which no version of our format will use.
_LEGACY: Final = (
    _reading_only(b"BS\n", "reference bytes", _load_bytes),
    _reading_only(b"US\n", "reference str", _load_str),
    _reading_only(b"NP\n", "reference numpy", _load_numpy_save),
    _reading_only(b"PD\n", "reference pandas", _load_pandas_pickle),
    _reading_only(b"PL\n", "reference polars", _load_polars),
    _reading_only(b"PK\n", "reference pickle", _load_plain_pickle),
    _reading_only(b"CP\n", "reference cloudpickle", _load_plain_pickle),
)
#: Formats keyed by the whole 3-byte prefix (version + tag): one lookup per payload.
_BY_PREFIX: Final = {_prefix(fmt.tag): fmt for fmt in _FORMATS} | {
    fmt.tag: fmt for fmt in _LEGACY
}
#: Pickle-layout prefixes followed by a zero buffer count.
_IN_BAND: Final = {p: p + _NO_BUFFERS for p in (_PD, _PK, _CP)}
_BUILTINS: Final = frozenset(
    (dict, list, tuple, set, frozenset, int, float, complex, bool, type(None))
)
#: Where the format scan starts: builtins already went through pickle, so only the
#: formats after it remain for them.
_PICKLE_FIRST: Final[dict[type, int]] = dict.fromkeys(
    _BUILTINS, 1 + next(i for i, fmt in enumerate(_FORMATS) if fmt.tag == b"PK")
)


# ---------------------------------------------------------------- public API


def is_bytes_like(obj: object) -> TypeGuard[BytesLike]:
    """Return whether ``obj`` is ``bytes``, ``bytearray`` or ``memoryview``."""
    return isinstance(obj, bytes | bytearray | memoryview)


def serialize(obj: Any) -> bytes:
    """Serialize ``obj`` into a tagged, versioned ``bytes`` payload.

    ``bytes`` and ``str`` are stored raw; numpy arrays and other objects exporting
    `pickle.PickleBuffer` travel as out-of-band buffers, copied exactly once
    (into the result). Objects plain pickle rejects (lambdas, local functions) fall
    back to cloudpickle when it is installed.

    Raises:
        SerializationError: If no format can serialize ``obj``; the last format's
            exception is chained as the cause.
    """
    cls = type(obj)
    if cls is bytes:  # the hot path of most stores: skip the format scan
        if len(obj) < LARGE:
            raw: bytes = _BS + obj
            return raw
        return _join([_BS, obj], len(_BS) + len(obj))
    if cls in _BUILTINS:
        # No format before pickle can take a builtin: skip their checks.
        try:
            return _dump_pickle_layout(_PK, pickle.dumps, obj)
        except Exception as exc:
            return cast(bytes, _encode(obj, False, _PICKLE_FIRST[cls], exc))
    return cast(bytes, _encode(obj, False, 0, None))


def serialize_parts(obj: Any) -> list[bytes | memoryview]:
    """Serialize ``obj`` like `serialize`, as parts to concatenate.

    The parts reference the object's own buffers (a ``bytes`` object, numpy array
    data...) instead of copying them, so a connector can write them straight to
    their destination: ``b"".join(serialize_parts(obj)) == serialize(obj)``. The
    parts are only valid while ``obj`` is unchanged.

    Raises:
        SerializationError: If no format can serialize ``obj``.
    """
    cls = type(obj)
    if cls is bytes:
        return [_BS, obj]
    if cls in _BUILTINS:
        try:
            return _pickle_parts(_PK, pickle.dumps, obj)[0]
        except Exception as exc:
            return cast(
                list[bytes | memoryview], _encode(obj, True, _PICKLE_FIRST[cls], exc)
            )
    return cast(list[bytes | memoryview], _encode(obj, True, 0, None))


def deserialize_parts(parts: Sequence[BytesLike]) -> Any:
    """Rebuild an object from parts whose concatenation `deserialize` takes.

    The inverse of `serialize_parts`, for connectors that keep parts unjoined
    (`LocalConnector` keeps immutable ``bytes`` parts by reference). A ``bytes``
    object serialized as parts comes back as that same object, without a copy (it
    is immutable, so sharing it is safe); anything else is joined once and decoded
    by `deserialize`.

    Raises:
        SerializationError: As `deserialize`.
    """
    if len(parts) == 1:
        return deserialize(parts[0])
    if len(parts) == 2 and type(parts[1]) is bytes and parts[0] == _BS:
        return parts[1]
    return deserialize(b"".join(parts))


def _encode(
    obj: Any, parts: bool, start: int, error: Exception | None
) -> bytes | list[bytes | memoryview]:
    """Encode ``obj`` with the first format from ``start`` on that takes it."""
    for fmt in _FORMATS[start:]:
        if not fmt.supported(obj):
            continue
        try:
            if not parts:
                return fmt.dump(obj)
            return [fmt.dump(obj)] if fmt.parts is None else fmt.parts(obj)
        except Exception as exc:
            error = exc
    # Only now, on the failure path, is the object searched for the part to blame.
    raise SerializationError(describe_failure(obj, error)) from error


def _as_payload(data: object) -> _Payload:
    if type(data) is bytes:
        return data
    try:
        view = memoryview(data)  # type: ignore[arg-type]
    except TypeError:
        raise SerializationError(
            f"expected a bytes-like object, got {type(data).__name__}"
        ) from None
    if not view.c_contiguous:
        raise SerializationError("expected a contiguous buffer, got a strided one")
    if view.format == "B" and view.ndim == 1:
        return view
    return view.cast("B")


def deserialize(buffer: BytesLike) -> Any:
    """Rebuild an object from a payload produced by `serialize`.

    Any C-contiguous buffer is accepted (``bytes``, ``bytearray``, ``memoryview``,
    ``mmap``...). Out-of-band buffers (e.g. numpy array data) are handled as follows:

    * read-only input (``bytes``, read-only views): the buffer region is copied once
      into private writable memory, so resulting arrays are writable and independent
      of ``buffer``;
    * read-only input whose exporting object has a true ``proxystore_zero_copy``
      attribute (the read-only views of the shared-memory arena): no copy; the
      resulting arrays are read-only views of ``buffer``;
    * writable input (``bytearray``, writable ``memoryview``, a private ``mmap``):
      no copy at all -- resulting arrays are views that **share memory with**
      ``buffer``, which must then stay unchanged while they are in use (and cannot be
      resized or closed while they exist).

    Raises:
        SerializationError: If ``buffer`` is not a contiguous bytes-like buffer, is
            truncated, has an unsupported version or an unknown format tag, or its
            format's decoder fails (that exception is chained as the cause).
    """
    kind = type(buffer)
    if kind is bytes or (
        kind is memoryview
        and buffer.ndim == 1  # type: ignore[union-attr]
        and buffer.format == "B"  # type: ignore[union-attr]
        and buffer.c_contiguous  # type: ignore[union-attr]
    ):
        payload: _Payload = buffer  # type: ignore[assignment]
    else:
        payload = _as_payload(buffer)
    size = len(payload)
    if size < _PREFIX_LEN:
        raise SerializationError(
            f"truncated payload: expected at least {_PREFIX_LEN} bytes, got {size}"
        )
    fmt = _BY_PREFIX.get(_PREFIX_OF(payload)[0])
    if fmt is None:
        version = payload[0]
        if version != FORMAT_VERSION:
            raise SerializationError(
                f"unsupported format version {version} (this build reads "
                f"version {FORMAT_VERSION})"
            )
        raise SerializationError(
            f"unknown format tag {bytes(payload[1:_PREFIX_LEN])!r}"
        )
    try:
        return fmt.load(payload)
    except SerializationError:
        raise
    except Exception as exc:
        raise SerializationError(
            f"failed to deserialize object using the {fmt.name} format: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
