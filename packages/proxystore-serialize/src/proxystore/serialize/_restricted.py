"""Restricted deserialization: pickle may only load allow-listed globals.

A pickle stream names every class and function it needs by module and name, and
plain ``pickle.loads`` imports and calls whatever it names: whoever can write the
payload can run code in the reader. `RestrictedDeserializer` reads the same
formats as `proxystore.serialize.deserialize`, but its unpickler resolves a global
only when its dotted path (``module.qualname``) is in the allow-list, and refuses
any other *before importing its module*.

An allow-list entry is a prefix on dotted-name boundaries: ``"numpy"`` allows
``numpy.dtype`` and ``numpy._core.numeric._frombuffer``, not ``numpyx.Evil``;
``"myapp.models.Point"`` allows that one class (and its nested names). A small set
of harmless builtins (containers, numbers, text, ``datetime``, ``decimal``,
``uuid``, ...) is always allowed; ``builtins.eval``, ``getattr`` and the like are
not. Bytes, text and Polars payloads contain no pickle and load as usual; the
reference release's numpy and pandas payloads are refused (their loaders run
pickle in ways this class cannot restrict).

The deserializer is plain data (its allow-list), so a store configured with it
(``Store(..., deserializer=RestrictedDeserializer([...]))``) carries it inside
every proxy, and remote readers apply the same restriction.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Iterable
from typing import Any, Final

from proxystore.serialize._core import (
    _BY_PREFIX,
    _PREFIX_LEN,
    _as_payload,
    _load_pickle_layout,
    _load_plain_pickle,
)
from proxystore.serialize._core import deserialize as _deserialize
from proxystore.serialize.exceptions import DisallowedTypeError, SerializationError
from proxystore.serialize.protocols import BytesLike

__all__ = ["ALWAYS_ALLOWED", "RestrictedDeserializer"]

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
# Reference-release formats whose loaders run unrestricted pickle.
_REFUSED_LEGACY: Final = frozenset((b"NP\n", b"PD\n"))


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, allowed: RestrictedDeserializer, **kw: Any):
        super().__init__(file, **kw)
        self._allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        path = f"{module}.{name}"
        if not self._allowed.allows(path):
            raise DisallowedTypeError(
                f"restricted deserialization refused global {path!r}: it is not "
                "in the allow-list (its module was not imported)",
                path,
            )
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise DisallowedTypeError(
            "restricted deserialization refused a persistent id", "<persistent id>"
        )


class RestrictedDeserializer:
    """A deserializer whose pickle path loads only allow-listed globals.

    Args:
        allow: Dotted-path prefixes (modules, classes) that pickle may load, in
            addition to `ALWAYS_ALLOWED`.

    Raises:
        ValueError: if an entry is not a non-empty string of dotted names.
    """

    __slots__ = ("_prefixes", "allow")

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
        self._prefixes = tuple(entry + "." for entry in self.allow)

    def allows(self, path: str) -> bool:
        """Return whether the global at dotted ``path`` may be loaded."""
        return (
            path in ALWAYS_ALLOWED
            or path in self.allow
            or path.startswith(self._prefixes)
        )

    def _loads(self, data: BytesLike, *, buffers: Any = None) -> Any:
        return _Unpickler(io.BytesIO(data), self, buffers=buffers).load()

    def __call__(self, buffer: BytesLike, /) -> Any:
        """Rebuild an object like `proxystore.serialize.deserialize`, restricted.

        Raises:
            DisallowedTypeError: if the payload needs a global outside the
                allow-list (nothing of that global's module is imported), or is a
                reference-release numpy/pandas payload.
            SerializationError: for anything `proxystore.serialize.deserialize`
                rejects.
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
