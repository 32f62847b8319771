"""Byte chunking and human-readable byte sizes."""

from __future__ import annotations

import decimal
import math
import re
from collections.abc import Iterator
from typing import Final, TypeVar

__all__ = ["bytes_to_readable", "chunk_bytes", "readable_to_bytes"]

BytesT = TypeVar("BytesT", bytes, bytearray, memoryview)

_DECIMAL_UNITS: Final = (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3))
_UNITS: Final = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_VALUE_AND_UNIT: Final = re.compile(
    r"\s*(?P<value>[^\sa-zA-Z]+)\s*(?P<unit>[a-zA-Z]+)\s*"
)


def chunk_bytes(data: BytesT, chunk_size: int) -> Iterator[BytesT]:
    """Yield consecutive slices of ``data`` of ``chunk_size`` bytes (the last may
    be shorter). Slices have ``data``'s type, so a ``memoryview`` is chunked
    without copying.

    Raises:
        ValueError: If ``chunk_size`` is not positive.
    """
    if chunk_size <= 0:
        raise ValueError(f"Chunk size must be positive, got {chunk_size}.")
    for start in range(0, len(data), chunk_size):
        yield data[start : start + chunk_size]


def bytes_to_readable(size: int, precision: int = 3) -> str:
    """Format a byte count with decimal units, e.g. ``1500 -> '1.5 KB'``.

    Units are B, KB, MB, GB and TB (powers of 1000); the value is rounded to
    ``precision`` decimal places and trailing zeros are dropped.

    Raises:
        ValueError: If ``size`` or ``precision`` is negative.
    """
    if size < 0:
        raise ValueError(f"Size ({size}) cannot be negative.")
    if precision < 0:
        raise ValueError(f"Precision ({precision}) cannot be negative.")
    unit, scale = next(
        ((unit, scale) for unit, scale in _DECIMAL_UNITS if size >= scale),
        ("B", 1),
    )
    text = f"{size / scale:.{precision}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} {unit}"


def readable_to_bytes(size: str) -> int:
    """Parse a byte size such as ``'1.2 KB'``, ``'0.6MiB'`` or ``'512'``.

    A plain number is a count of bytes. Units are case-insensitive: B, KB, MB, GB,
    TB (powers of 1000) and KiB, MiB, GiB, TiB (powers of 1024). The result is
    truncated to an integer.

    Raises:
        ValueError: If the string is not a number optionally followed by a unit,
            the number cannot be parsed, or the unit is unknown.
    """
    try:
        plain = float(size)
    except ValueError:
        pass  # not a bare number: parse value and unit below
    else:
        if not math.isfinite(plain):
            raise ValueError(f"Size {size!r} is not finite.")
        return int(plain)
    match = _VALUE_AND_UNIT.fullmatch(size)
    if match is None:
        raise ValueError(f"Input string {size!r} must contain only a value and a unit.")
    value, unit = match["value"], match["unit"]
    try:
        amount = decimal.Decimal(value)
    except decimal.InvalidOperation as exc:
        raise ValueError(f"Unable to interpret {value!r} as a number.") from exc
    scale = _UNITS.get(unit.lower())
    if scale is None:
        raise ValueError(
            f"Unknown unit {unit!r}; expected one of B, KB, MB, GB, TB, KiB, MiB, "
            "GiB, TiB."
        )
    if not amount.is_finite():
        raise ValueError(f"Size {size!r} is not finite.")
    return int(amount * scale)
