"""TOML files for configuration dataclasses.

`dump`/`dumps` write a dataclass instance as TOML; `load`/
`loads` read TOML back into a dataclass *type*, validating every field
against its annotation. Supported annotations: ``str``, ``int``, ``float`` (ints
accepted), ``bool``, ``None``, unions/``Optional``, ``Literal``, ``Any``, ``Enum``
subclasses (by value), ``pathlib`` paths (as strings), ``list``/``Sequence``,
``tuple`` (variadic or fixed), ``set``/``frozenset``, ``dict``/``Mapping`` with
``str`` keys, nested dataclasses, and TOML's date/time types.

TOML has no null: ``None`` fields are left out when dumping (``exclude_none=True``,
the default) and take their defaults when loading.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import datetime
import enum
import pathlib
import tomllib
import types
import typing
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol, TypeVar, Union, cast

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


class _PydanticModel(Protocol):
    """What is used of a pydantic (v2) model instance: `model_dump`."""

    def model_dump(self, *, exclude_none: bool = ...) -> dict[str, Any]:
        """Return the model's fields as a dict."""
        ...


if TYPE_CHECKING:
    ConfigT = TypeVar("ConfigT", bound=DataclassInstance | _PydanticModel)
else:
    ConfigT = TypeVar("ConfigT")


def _is_pydantic_model(obj: object) -> bool:
    # Duck-typed so that pydantic is never imported here (nor required).
    cls = obj if isinstance(obj, type) else type(obj)
    return callable(getattr(cls, "model_validate", None)) and callable(
        getattr(cls, "model_dump", None)
    )


__all__ = ["dump", "dumps", "load", "loads"]

_TOML_SCALARS = (str, int, float, bool, datetime.date, datetime.time, datetime.datetime)
_SEQUENCE_ORIGINS = (
    list,
    tuple,
    set,
    frozenset,
    collections.abc.Sequence,
    collections.abc.Set,
    collections.abc.MutableSequence,
)
_MAPPING_ORIGINS = (dict, collections.abc.Mapping, collections.abc.MutableMapping)


# ---------------------------------------------------------------- dumping


def dumps(
    model: DataclassInstance | _PydanticModel, *, exclude_none: bool = True
) -> str:
    """Return the TOML document for ``model``.

    ``model`` is a dataclass instance or, as with the reference, a pydantic model
    (its ``model_dump()`` is written).

    Raises:
        TypeError: If ``model`` is not a dataclass instance or a field holds a value
            TOML cannot represent (the message names the field).
        ValueError: If a field is ``None`` and ``exclude_none`` is false.
        ImportError: If ``tomli-w`` is not installed.
    """
    candidate: object = model  # checked at runtime: callers may be untyped
    pydantic = not isinstance(candidate, type) and _is_pydantic_model(candidate)
    if not pydantic and (
        not dataclasses.is_dataclass(candidate) or isinstance(candidate, type)
    ):
        raise TypeError(
            "Expected a dataclass instance or a pydantic model, got "
            f"{type(model).__name__}."
        )
    try:
        import tomli_w
    except ImportError as exc:  # tomli-w is an optional dependency
        raise ImportError(
            "Writing TOML needs the 'tomli-w' package: pip install tomli-w"
        ) from exc
    if pydantic:
        data = cast("_PydanticModel", model).model_dump(exclude_none=exclude_none)
        return tomli_w.dumps(data)
    table = _to_toml(model, type(model).__name__, exclude_none)
    return tomli_w.dumps(table)


def dump(
    model: DataclassInstance | _PydanticModel,
    fp: IO[bytes],
    *,
    exclude_none: bool = True,
) -> None:
    """Write the TOML document for ``model`` to the binary file ``fp``.

    Raises:
        TypeError, ValueError, ImportError: As [`dumps`][proxystore.utils.config.dumps].
    """
    fp.write(dumps(model, exclude_none=exclude_none).encode("utf-8"))


def _to_toml(value: Any, path: str, exclude_none: bool) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        table: dict[str, Any] = {}
        for field in dataclasses.fields(value):
            item = getattr(value, field.name)
            field_path = f"{path}.{field.name}"
            if item is None:
                if exclude_none:
                    continue
                raise ValueError(
                    f"Field '{field_path}' is None, which TOML cannot represent; "
                    "use exclude_none=True."
                )
            table[field.name] = _to_toml(item, field_path, exclude_none)
        return table
    if isinstance(value, enum.Enum):
        return _to_toml(value.value, path, exclude_none)
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if isinstance(value, _TOML_SCALARS):
        return value
    if isinstance(value, collections.abc.Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"Field '{path}' has a non-string key {key!r}; TOML keys are "
                    "strings."
                )
            if item is None and exclude_none:
                continue
            out[key] = _to_toml(item, f"{path}[{key!r}]", exclude_none)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [
            _to_toml(item, f"{path}[{i}]", exclude_none) for i, item in enumerate(items)
        ]
    if value is None:
        raise ValueError(f"Field '{path}' holds None, which TOML cannot represent.")
    raise TypeError(
        f"Field '{path}' holds a {type(value).__name__}, which TOML cannot represent."
    )


# ---------------------------------------------------------------- loading


def loads(model: type[ConfigT], data: str) -> ConfigT:
    """Parse the TOML string ``data`` into an instance of ``model``.

    ``model`` is a dataclass type or, as with the reference, a pydantic model class
    (validated with ``model_validate(..., strict=True)``; its validation error is
    a ``ValueError``).

    Raises:
        ValueError: If ``data`` is not valid TOML, a required field is missing, an
            unknown field is present, or a value is not allowed (e.g. a ``Literal``
            or ``Enum`` mismatch); the message names the field.
        TypeError: If ``model`` is not a dataclass, or a value has the wrong type for
            its field's annotation; the message names the field.
    """
    candidate: object = model  # checked at runtime: callers may be untyped
    pydantic = isinstance(candidate, type) and _is_pydantic_model(candidate)
    if not pydantic and not (
        isinstance(candidate, type) and dataclasses.is_dataclass(candidate)
    ):
        raise TypeError(
            f"Expected a dataclass type or a pydantic model, got {model!r}."
        )
    try:
        table = tomllib.loads(data)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"Invalid TOML for {model.__name__}: {exc}") from exc
    if pydantic:
        validate = getattr(model, "model_validate")  # noqa: B009
        return cast("ConfigT", validate(table, strict=True))
    return _from_table(model, table, model.__name__)


def load(model: type[ConfigT], fp: IO[bytes]) -> ConfigT:
    """Read the binary file ``fp`` as TOML into an instance of ``model`` (see `loads`).

    Raises:
        ValueError, TypeError: As [`loads`][proxystore.utils.config.loads].
    """
    raw = fp.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{model.__name__} file is not UTF-8: {exc}") from exc
    return loads(model, text)


def _from_table(cls: type[ConfigT], table: Any, path: str) -> ConfigT:
    if not isinstance(table, dict):
        raise TypeError(
            f"Field '{path}' must be a table for {cls.__name__}, "
            f"got {type(table).__name__}."
        )
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cast("Any", cls)) if f.init]
    known = {f.name for f in fields}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ValueError(
            f"Unknown field(s) for '{path}' ({cls.__name__}): "
            + ", ".join(repr(name) for name in unknown)
        )
    kwargs: dict[str, Any] = {}
    for field in fields:
        field_path = f"{path}.{field.name}"
        if field.name not in table:
            required = (
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING
            )
            if required:
                raise ValueError(f"Missing required field '{field_path}'.")
            continue
        kwargs[field.name] = _convert(table[field.name], hints[field.name], field_path)
    return cls(**kwargs)


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


def _wrong_type(path: str, expected: str, value: Any) -> TypeError:
    return TypeError(f"Field '{path}': expected {expected}, got {_describe(value)}.")


def _convert(value: Any, hint: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any or hint is object:
        return value
    if hint is None or hint is type(None):
        if value is not None:
            raise _wrong_type(path, "None", value)
        return None
    if origin is Union or origin is types.UnionType:
        return _convert_union(value, args, path)
    if origin is Literal:
        if value in args and not (
            isinstance(value, bool) and True not in args and False not in args
        ):
            return value
        raise ValueError(
            f"Field '{path}': expected one of {list(args)!r}, got {value!r}."
        )
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _from_table(hint, value, path)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError as exc:
            choices = [member.value for member in hint]
            raise ValueError(
                f"Field '{path}': expected one of {choices!r}, got {value!r}."
            ) from exc
    if origin in _MAPPING_ORIGINS or hint in _MAPPING_ORIGINS:
        return _convert_mapping(value, args, path)
    if origin in _SEQUENCE_ORIGINS or hint in _SEQUENCE_ORIGINS:
        return _convert_sequence(value, origin or hint, args, path)
    return _convert_scalar(value, hint, path)


def _convert_scalar(value: Any, hint: Any, path: str) -> Any:
    if hint is bool:
        if not isinstance(value, bool):
            raise _wrong_type(path, "bool", value)
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong_type(path, "int", value)
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _wrong_type(path, "float", value)
        return float(value)
    if isinstance(hint, type) and issubclass(hint, pathlib.PurePath):
        if not isinstance(value, str):
            raise _wrong_type(path, "a path string", value)
        return hint(value)
    if isinstance(hint, type):
        if not isinstance(value, hint):
            raise _wrong_type(path, hint.__name__, value)
        return value
    raise TypeError(f"Field '{path}': unsupported annotation {hint!r}.")


def _convert_union(value: Any, args: tuple[Any, ...], path: str) -> Any:
    errors: list[str] = []
    for arm in args:
        try:
            return _convert(value, arm, path)
        except (TypeError, ValueError) as exc:
            errors.append(str(exc))
    names = " | ".join(getattr(arm, "__name__", repr(arm)) for arm in args)
    raise TypeError(
        f"Field '{path}': expected {names}, got {_describe(value)} "
        f"({'; '.join(errors)})"
    )


def _convert_mapping(value: Any, args: tuple[Any, ...], path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _wrong_type(path, "a table", value)
    key_hint, value_hint = args if args else (str, Any)
    if key_hint not in (str, Any):
        raise TypeError(
            f"Field '{path}': TOML table keys are strings, not {key_hint!r}."
        )
    return {
        key: _convert(item, value_hint, f"{path}[{key!r}]")
        for key, item in value.items()
    }


def _convert_sequence(
    value: Any, container: Any, args: tuple[Any, ...], path: str
) -> Any:
    if not isinstance(value, list):
        raise _wrong_type(path, "an array", value)
    if container is tuple and args and args[-1] is not Ellipsis:
        if len(value) != len(args):
            raise ValueError(
                f"Field '{path}': expected {len(args)} items, got {len(value)}."
            )
        return tuple(
            _convert(item, arm, f"{path}[{i}]")
            for i, (item, arm) in enumerate(zip(value, args, strict=True))
        )
    item_hint = args[0] if args else Any
    items = [_convert(item, item_hint, f"{path}[{i}]") for i, item in enumerate(value)]
    if container in (tuple, collections.abc.Sequence):
        # An abstract Sequence loads as a tuple: immutable, like frozen configs.
        return tuple(items)
    if container in (set, collections.abc.Set):
        return set(items)
    if container is frozenset:
        return frozenset(items)
    return items
