"""Shared Hypothesis strategies: picklable values, numpy arrays, and an equality check.

Import from here in any property test::

    from tests.property.strategies import assert_same, picklable_values

``assert_same`` compares the values these strategies build, treating NaN as equal to
NaN and checking numpy dtype and shape, which ``==`` alone does not.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

__all__ = [
    "assert_same",
    "numpy_arrays",
    "picklable_scalars",
    "picklable_values",
]

#: Dtype kinds whose arrays may hold NaN/NaT, compared with ``equal_nan``.
_NAN_KINDS = frozenset("fcmM")


def picklable_scalars() -> st.SearchStrategy[Any]:
    """None, bools, ints (beyond 64 bits), floats (NaN, inf, -0.0), text, bytes."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=-(2**200), max_value=2**200),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(),
        st.binary(),
    )


def _dtypes() -> st.SearchStrategy[np.dtype[Any]]:
    return st.one_of(
        hnp.scalar_dtypes(),
        hnp.byte_string_dtypes(max_len=8),
        hnp.unicode_string_dtypes(max_len=8),
    )


@st.composite
def numpy_arrays(draw: st.DrawFn, *, max_side: int = 6) -> npt.NDArray[Any]:
    """Arrays of random dtype and shape (0-3 dims), in C, Fortran or strided layout."""
    dtype = draw(_dtypes())
    shape = draw(
        hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=max_side)
    )
    array: npt.NDArray[Any] = draw(hnp.arrays(dtype, shape))
    layout = draw(st.sampled_from(["C", "F", "strided", "read-only"]))
    if layout == "F":
        array = np.asfortranarray(array)
    elif layout == "strided" and array.ndim > 0:
        array = array[::2]
    elif layout == "read-only":
        array.flags.writeable = False
    return array


def picklable_values(*, with_arrays: bool = True) -> st.SearchStrategy[Any]:
    """Nested lists, tuples and str-keyed dicts of scalars (and numpy arrays)."""
    leaves = picklable_scalars()
    if with_arrays:
        leaves = leaves | numpy_arrays()
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.tuples(children, children),
            st.dictionaries(st.text(max_size=8), children, max_size=4),
        ),
        max_leaves=12,
    )


def assert_same(got: Any, want: Any) -> None:
    """Assert ``got`` equals ``want``: same types, NaN == NaN, arrays by dtype/shape."""
    assert type(got) is type(want), (type(got), type(want))
    if isinstance(want, np.ndarray):
        # numpy's own in-band pickling (datetimes, strided arrays) converts
        # non-native byte order to native; the values survive. Allow only that.
        assert got.dtype in (want.dtype, want.dtype.newbyteorder("="))
        assert got.shape == want.shape
        equal_nan = want.dtype.kind in _NAN_KINDS
        assert np.array_equal(got, want, equal_nan=equal_nan)
    elif isinstance(want, float):
        assert (math.isnan(got) and math.isnan(want)) or got == want
    elif isinstance(want, list | tuple):
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert_same(g, w)
    elif isinstance(want, dict):
        assert list(got) == list(want)
        for key in want:
            assert_same(got[key], want[key])
    else:
        assert got == want
