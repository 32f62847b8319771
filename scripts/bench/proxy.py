"""Proxy overhead: ours vs the reference release (`proxystore==1.1.0`).

Times, in ns per operation, attribute access, a method call, `len`, `+` and `[i]`
on a *resolved* proxy, the same operations on the plain object (the floor), and
creating + first resolving a proxy. The same snippet runs in our venv and in the
reference venv (`.bench-venv/`), alternating, best of several rounds each, so CPU
load from other processes hits both sides alike.

    uv run --frozen python -m scripts.bench.proxy [--rounds N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from scripts.bench import _refvenv

ROOT = Path(__file__).resolve().parents[2]

# Runs unchanged in both venvs: `proxystore.proxy.Proxy` is ours or the reference's.
SNIPPET = r"""
import json, sys, timeit
from proxystore.proxy import Proxy

class Obj:
    def __init__(self):
        self.attr = 1
    def method(self):
        return 1

number = int(sys.argv[1])
obj, lst = Obj(), [1, 2, 3]
po = Proxy(lambda: obj, target=obj)
pl = Proxy(lambda: lst, target=lst)
cases = {
    "attribute": ("p.attr", "o.attr"),
    "method call": ("p.method()", "o.method()"),
    "len": ("len(pl)", "len(l)"),
    "add": ("pl + l", "l + l"),
    "getitem": ("pl[1]", "l[1]"),
    "create + resolve": ("Proxy(f).__proxy_wrapped__", "f()"),
}
env = {"p": po, "o": obj, "pl": pl, "l": lst, "Proxy": Proxy, "f": lambda: lst}
out = {}
for name, (ours, plain) in cases.items():
    n = number // 10 if name.startswith("create") else number
    out[name] = {
        "proxy": min(timeit.repeat(ours, globals=env, number=n, repeat=5)) / n * 1e9,
        "plain": min(timeit.repeat(plain, globals=env, number=n, repeat=5)) / n * 1e9,
    }
print(json.dumps(out))
"""


def _run_ours(number: int, *, pure: bool) -> dict[str, dict[str, float]]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pure:
        env["PROXYSTORE_PROXY_PURE_PYTHON"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", SNIPPET, str(number)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=str(ROOT),
    )
    result: dict[str, dict[str, float]] = json.loads(out.stdout.splitlines()[-1])
    return result


def _best(
    runs: list[dict[str, dict[str, float]]],
) -> dict[str, dict[str, float]]:
    return {
        case: {k: min(run[case][k] for run in runs) for k in runs[0][case]}
        for case in runs[0]
    }


def measure(rounds: int, number: int) -> dict[str, Any]:
    """Alternate ours (compiled and pure) and the reference; keep the best of each."""
    ours, pure, theirs = [], [], []
    for _ in range(rounds):
        ours.append(_run_ours(number, pure=False))
        pure.append(_run_ours(number, pure=True))
        theirs.append(_refvenv.run_json(SNIPPET, str(number)))
    best_ours, best_pure, best_theirs = _best(ours), _best(pure), _best(theirs)
    table = {}
    for case in best_ours:
        o, p, t = best_ours[case], best_pure[case], best_theirs[case]
        table[case] = {
            "ours_ns": o["proxy"],
            "ours_pure_ns": p["proxy"],
            "theirs_ns": t["proxy"],
            "plain_ns": o["plain"],
            "ratio": o["proxy"] / t["proxy"],
            "ratio_pure": p["proxy"] / t["proxy"],
        }
    return table


def main(argv: list[str] | None = None) -> None:
    """Print the table (or JSON with `--json`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--number", type=int, default=200_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    table = measure(args.rounds, args.number)
    if args.json:
        print(json.dumps(table, indent=2))
        return
    header = (
        f"{'operation':<18}{'ours ns':>10}{'pure ns':>10}{'theirs ns':>11}"
        f"{'plain ns':>10}{'ours/theirs':>13}{'pure/theirs':>13}"
    )
    print(header)
    print("-" * len(header))
    for case, row in table.items():
        print(
            f"{case:<18}{row['ours_ns']:>10.1f}{row['ours_pure_ns']:>10.1f}"
            f"{row['theirs_ns']:>11.1f}{row['plain_ns']:>10.1f}"
            f"{row['ratio']:>13.3f}{row['ratio_pure']:>13.3f}"
        )


if __name__ == "__main__":
    main()
