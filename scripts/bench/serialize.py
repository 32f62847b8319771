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
    data = serialize(array)
    writable = bytearray(data)
    return {
        "copy_s": best_s(lambda: np.copy(array), 5),
        "large_s": best_s(lambda: roundtrip(array), 5),
        "ser_s": best_s(lambda: serialize(array), 5),
        "de_ro_s": best_s(lambda: deserialize(data), 5),
        "de_rw_s": best_s(lambda: deserialize(writable), 5),
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
    big = f"{large_mb} MB float64"
    rows = [
        ("metric", "ours", "reference", "floor", "ref/ours"),
        (f"{big} round trip (ms)", *_large(ours, ref, "large_s", copy_s)),
        (f"{big} serialize (ms)", *_large(ours, ref, "ser_s", copy_s)),
        (f"{big} deserialize bytes (ms)", *_large(ours, ref, "de_ro_s", copy_s)),
        (f"{big} deserialize bytearray (ms)", *_large(ours, ref, "de_rw_s", 0.0)),
        ("100 B bytes round trip (ns)", *_small(ours, ref, "bytes100_ns")),
        ("small dict round trip (ns)", *_small(ours, ref, "dict_ns")),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows
    ]
    writable_trip = ours["ser_s"] + ours["de_rw_s"]
    lines += [
        "floor = one numpy.copy of the array (0: no copy needed).",
        f"round trip / one numpy.copy: {ours['large_s'] / copy_s:.2f}x time "
        f"(throughput {copy_s / ours['large_s']:.2f}x of a copy; target >= 0.4x)",
        f"serialize + deserialize(writable): {writable_trip * 1e3:.1f} ms, "
        f"{(ref['ser_s'] + ref['de_rw_s']) / writable_trip:.1f}x faster than the "
        "reference",
    ]
    return "\n".join(lines)


def _large(
    ours: dict[str, float], ref: dict[str, float], key: str, floor_s: float
) -> tuple[str, ...]:
    return (
        f"{ours[key] * 1e3:.1f}",
        f"{ref[key] * 1e3:.1f}",
        f"{floor_s * 1e3:.1f}",
        f"{ref[key] / ours[key]:.1f}x",
    )


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
