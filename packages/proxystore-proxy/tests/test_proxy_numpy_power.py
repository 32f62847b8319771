"""`array ** proxy` gives exactly `array ** target` (numpy's `**` shortcuts)."""

from __future__ import annotations

import pytest

from proxystore.proxy import Proxy

np = pytest.importorskip("numpy")


@pytest.mark.parametrize("exponent", [2, 0.5, 1, 3])
def test_power_with_proxy_exponent_matches_the_operator(exponent: float) -> None:
    for base in (np.array(False), np.arange(4, dtype=np.int8), np.arange(3.0)):
        expected = base**exponent
        actual = base ** Proxy(lambda: exponent)
        assert actual.dtype == expected.dtype
        np.testing.assert_array_equal(actual, expected)


def test_explicit_ufunc_calls_still_unwrap_proxies() -> None:
    values = Proxy(lambda: np.arange(3.0))
    np.testing.assert_array_equal(np.sqrt(values), np.sqrt(np.arange(3.0)))
    out = np.zeros(3)
    np.power(np.arange(3.0), Proxy(lambda: 2), out=out)
    np.testing.assert_array_equal(out, [0.0, 1.0, 4.0])
