"""Benchmark ``proxystore.serialize`` against the reference release.

Measures, in one run and interleaved with the reference (run in ``.bench-venv``):

* round trip (``deserialize(serialize(x))``) of a 100 MB float64 numpy array, with
  one ``numpy.copy`` of the same array as the raw floor;
* round trip of small objects (100 B of ``bytes``, a small ``dict``), in ns.

Usage: ``uv run --frozen python -m scripts.bench.serialize [--json] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from scripts.bench import _refvenv

# The same harness runs here (our package) and in the reference venv, so both sides
# are timed by identical code.
HARNESS = r"""
import json, sys, time
import numpy as np
from proxystore.serialize import deserialize, serialize


def best_s(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def per_call_ns(fn, repeat=7, number=20000):
    def batch():
        for _ in range(number):
            fn()
    return best_s(batch, repeat) / number * 1e9


def measure(large_mb):
    array = np.random.default_rng(0).random(large_mb * 1_000_000 // 8)
    small_bytes = bytes(range(100))
    small_dict = {"name": "proxy", "size": 42, "tags": ["a", "b"], "ratio": 0.5}
    roundtrip = lambda obj: deserialize(serialize(obj))
    assert np.array_equal(roundtrip(array), array)
    assert roundtrip(small_bytes) == small_bytes
    assert roundtrip(small_dict) == small_dict
    return {
        "copy_s": best_s(lambda: np.copy(array), 5),
        "large_s": best_s(lambda: roundtrip(array), 5),
        "bytes100_ns": per_call_ns(lambda: roundtrip(small_bytes)),
        "dict_ns": per_call_ns(lambda: roundtrip(small_dict)),
    }


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]))))
"""


def _ours(large_mb: int) -> dict[str, float]:
    namespace: dict[str, Any] = {"__name__": "bench_harness"}
    exec(HARNESS, namespace)
    result: dict[str, float] = namespace["measure"](large_mb)
    return result


def _theirs(large_mb: int) -> dict[str, float]:
    result: dict[str, float] = _refvenv.run_json(HARNESS, str(large_mb))
    return result


def run(rounds: int, large_mb: int) -> dict[str, dict[str, float]]:
    """Interleave our and the reference measurements; keep the best of each."""
    ours: dict[str, float] = {}
    theirs: dict[str, float] = {}
    for _ in range(rounds):
        for side, measure in ((ours, _ours), (theirs, _theirs)):
            for key, value in measure(large_mb).items():
                side[key] = min(value, side.get(key, value))
    return {"ours": ours, "reference": theirs}


def _table(results: dict[str, dict[str, float]], large_mb: int) -> str:
    ours, ref = results["ours"], results["reference"]
    copy_s = min(ours["copy_s"], ref["copy_s"])
    rows = [
        ("metric", "ours", "reference", "floor", "ref/ours"),
        (
            f"{large_mb} MB float64 round trip (ms)",
            f"{ours['large_s'] * 1e3:.1f}",
            f"{ref['large_s'] * 1e3:.1f}",
            f"{copy_s * 1e3:.1f} (numpy.copy)",
            f"{ref['large_s'] / ours['large_s']:.1f}x",
        ),
        ("100 B bytes round trip (ns)", *_small(ours, ref, "bytes100_ns")),
        ("small dict round trip (ns)", *_small(ours, ref, "dict_ns")),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows
    ]
    lines.append(
        f"large round trip / one numpy.copy: {ours['large_s'] / copy_s:.2f}x time "
        f"(throughput {copy_s / ours['large_s']:.2f}x of a copy; target >= 0.4x)"
    )
    return "\n".join(lines)


def _small(ours: dict[str, float], ref: dict[str, float], key: str) -> tuple[str, ...]:
    return (f"{ours[key]:.0f}", f"{ref[key]:.0f}", "-", f"{ref[key] / ours[key]:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--large-mb", type=int, default=100, help="large array size")
    args = parser.parse_args()
    results = run(args.rounds, args.large_mb)
    if args.json:
        print(json.dumps(results))
    else:
        print(_table(results, args.large_mb))


if __name__ == "__main__":
    main()
