"""Store overhead: ours vs the reference release (`proxystore==1.1.0`).

For payloads of 100 B, 10 KB, 1 MB and 100 MB (``bytes``) over a LocalConnector and
a FileConnector, times

* ``proxy+resolve``: ``store.proxy(obj, evict=True)``, a pickle round trip (what a
  proxy sent to another process goes through, so the copy is unresolved) and the
  first resolve, which fetches, deserializes and evicts;
* ``put+get``: ``store.put(obj)``, ``store.get(key)`` (a cache miss: put does not
  fill the cache) and ``store.evict(key)``;

plus the raw floor of ``put+get`` (a dict for Local; write, read and unlink of a
file for File). The same snippet runs in our venv and in the reference venv
(`.bench-venv/`), alternating, best of several rounds each.

    uv run --frozen python -m scripts.bench.store [--rounds N] [--sizes S,..] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from proxystore.utils.data import bytes_to_readable
from scripts.bench import _refvenv

ROOT = Path(__file__).resolve().parents[2]
SIZES = [100, 10_000, 1_000_000, 100_000_000]

# Runs unchanged in both venvs: `proxystore` is ours or the reference's.
SNIPPET = r"""
import json, os, pickle, shutil, sys, tempfile, time
from proxystore.connectors.file import FileConnector
from proxystore.connectors.local import LocalConnector
from proxystore.proxy import extract
from proxystore.store import Store

sizes = [int(s) for s in sys.argv[1].split(",")]
budget = float(sys.argv[2])  # seconds per case (at least 3 repeats are made)


def best(func, n_per_repeat):
    # Best repeat, in microseconds per operation, after one untimed warm-up repeat.
    for _ in range(n_per_repeat):
        func()
    times, spent = [], 0.0
    while len(times) < 3 or (spent < budget and len(times) < 50):
        start = time.perf_counter()
        for _ in range(n_per_repeat):
            func()
        took = time.perf_counter() - start
        spent += took
        times.append(took / n_per_repeat * 1e6)
    return min(times)


tmp = tempfile.mkdtemp(prefix="ps-bench-store-")
out = {}
try:
    for kind in ("local", "file"):
        for size in sizes:
            obj = os.urandom(size)
            connector = (
                LocalConnector()
                if kind == "local"
                else FileConnector(os.path.join(tmp, f"{kind}-{size}"))
            )
            store = Store(f"bench-{kind}-{size}", connector, register=True)

            def proxy_resolve():
                p = store.proxy(obj, evict=True)
                copy = pickle.loads(pickle.dumps(p))
                extract(copy)

            def put_get():
                key = store.put(obj)
                store.get(key)
                store.evict(key)

            if kind == "local":
                raw = {}

                def floor():
                    raw["k"] = obj
                    raw.get("k")
                    del raw["k"]

            else:
                path = os.path.join(tmp, "raw")

                def floor():
                    with open(path, "wb") as f:
                        f.write(obj)
                    with open(path, "rb") as f:
                        f.read()
                    os.remove(path)

            n = max(1, min(2000, 20_000_000 // max(size, 1) // 10))
            if kind == "file":
                n = max(1, n // 10)
            out[f"{kind} {size}"] = {
                "proxy+resolve": best(proxy_resolve, n),
                "put+get": best(put_get, n),
                "floor": best(floor, n),
            }
            store.close()
            del obj
finally:
    shutil.rmtree(tmp, ignore_errors=True)
print(json.dumps(out))
"""


def _run_ours(sizes: str, budget: float) -> dict[str, dict[str, float]]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", SNIPPET, sizes, str(budget)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=str(ROOT),
    )
    result: dict[str, dict[str, float]] = json.loads(out.stdout.splitlines()[-1])
    return result


def _best(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    return {
        case: {k: min(run[case][k] for run in runs) for k in runs[0][case]}
        for case in runs[0]
    }


def measure(rounds: int, sizes: list[int], budget: float) -> dict[str, Any]:
    """Alternate ours and the reference; keep the best of each."""
    arg = ",".join(str(s) for s in sizes)
    ours, theirs = [], []
    for _ in range(rounds):
        ours.append(_run_ours(arg, budget))
        theirs.append(_refvenv.run_json(SNIPPET, arg, str(budget)))
    best_ours, best_theirs = _best(ours), _best(theirs)
    table: dict[str, Any] = {}
    for case, row in best_ours.items():
        for op in ("proxy+resolve", "put+get"):
            table[f"{case} {op}"] = {
                "ours_us": row[op],
                "theirs_us": best_theirs[case][op],
                "floor_us": row["floor"] if op == "put+get" else None,
                "ratio": row[op] / best_theirs[case][op],
            }
    return table


def main(argv: list[str] | None = None) -> None:
    """Print the table (or JSON with `--json`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--sizes", default=",".join(str(s) for s in SIZES), help="bytes, comma list"
    )
    parser.add_argument(
        "--budget", type=float, default=0.3, help="seconds per case per round"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    table = measure(args.rounds, sizes, args.budget)
    if args.json:
        print(json.dumps(table, indent=2))
        return
    header = (
        f"{'connector':<10}{'size':>8}  {'operation':<15}{'ours us':>11}"
        f"{'theirs us':>11}{'floor us':>11}{'ours/theirs':>13}"
    )
    print(header)
    print("-" * len(header))
    for case, row in table.items():
        kind, size, op = case.split(" ")
        floor = "" if row["floor_us"] is None else f"{row['floor_us']:.1f}"
        label = bytes_to_readable(int(size))
        print(
            f"{kind:<10}{label:>8}  {op:<15}{row['ours_us']:>11.1f}"
            f"{row['theirs_us']:>11.1f}{floor:>11}{row['ratio']:>13.3f}"
        )


if __name__ == "__main__":
    main()
