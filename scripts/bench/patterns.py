"""Proxy patterns: ours vs the reference release (`proxystore==1.1.0`).

Over a LocalConnector store, the same snippet runs in our venv and in the reference
venv (`.bench-venv/`), alternating, best of several rounds:

* ``future wake``: a thread sets a future's result 30 ms after another started
  waiting on ``future.result()``; time from ``set_result`` to the waiter waking
  (median over repeats). Both use ``polling_interval=0.05``: the reference polls at
  that interval, ours wakes on the connector's notification.
* ``owned create+drop``: ``store.owned_proxy(obj)`` then dropping it (evicts).
* ``borrow+release``: ``borrow(owned)`` then dropping the borrow.
* ``lifetime proxy+close``: a ``ContextLifetime`` with one proxy, closed.
* ``executor submit``: ``StoreExecutor(ThreadPoolExecutor(1), ProxyAlways())``
  submit of a task on a small list and its result (argument and result proxied).

    uv run --frozen python -m scripts.bench.patterns [--rounds N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from scripts.bench import _refvenv

ROOT = Path(__file__).resolve().parents[2]

# Runs unchanged in both venvs: `proxystore` is ours or the reference's.
SNIPPET = r"""
import gc, json, statistics, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
from proxystore.connectors.local import LocalConnector
from proxystore.store import Store
from proxystore.store.executor import ProxyAlways, StoreExecutor
from proxystore.store.lifetimes import ContextLifetime
from proxystore.store.ref import borrow
from proxystore.proxy import get_factory

budget = float(sys.argv[1])
gc.disable()  # owners evict on refcount drop; keep GC pauses out of the timings


def best(func, n):
    times, spent = [], 0.0
    while len(times) < 3 or (spent < budget and len(times) < 50):
        start = time.perf_counter()
        for _ in range(n):
            func()
        took = time.perf_counter() - start
        spent += took
        times.append(took / n * 1e6)
    return min(times)


store = Store("bench-patterns", LocalConnector(), register=True)
obj = list(range(100))


def wake_latency(repeats=7):
    lat = []
    for _ in range(repeats):
        future = store.future(evict=True, polling_interval=0.05)
        mark = []

        def setter():
            time.sleep(0.03)
            mark.append(time.perf_counter())
            future.set_result(1)

        t = threading.Thread(target=setter)
        t.start()
        future.result()
        lat.append(time.perf_counter() - mark[0])
        t.join()
    return statistics.median(lat) * 1e6


def owned_create_drop():
    o = store.owned_proxy(obj)
    del o


owner = store.owned_proxy(obj)


def borrow_release():
    r = borrow(owner)
    del r


def lifetime_proxy_close():
    with ContextLifetime(store) as lt:
        store.proxy(obj, lifetime=lt)


pool = ThreadPoolExecutor(1)
executor = StoreExecutor(pool, store, ProxyAlways(), ownership=False, close_store=False)


def executor_submit():
    p = executor.submit(len, obj).result()
    store.evict(get_factory(p).key)


out = {
    "future wake": wake_latency(),
    "owned create+drop": best(owned_create_drop, 200),
    "borrow+release": best(borrow_release, 500),
    "lifetime proxy+close": best(lifetime_proxy_close, 200),
    "executor submit": best(executor_submit, 50),
}
pool.shutdown()
del owner
store.close()
print(json.dumps(out))
"""


def _run_ours(budget: float) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", SNIPPET, str(budget)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=str(ROOT),
    )
    result: dict[str, float] = json.loads(out.stdout.splitlines()[-1])
    return result


def measure(rounds: int, budget: float) -> dict[str, dict[str, float]]:
    """Alternate ours and the reference; keep the best of each."""
    ours: list[dict[str, float]] = []
    theirs: list[dict[str, float]] = []
    for _ in range(rounds):
        ours.append(_run_ours(budget))
        theirs.append(_refvenv.run_json(SNIPPET, str(budget)))
    table: dict[str, dict[str, float]] = {}
    for case in ours[0]:
        mine = min(run[case] for run in ours)
        ref = min(run[case] for run in theirs)
        table[case] = {"ours_us": mine, "theirs_us": ref, "ratio": mine / ref}
    return table


def main(argv: list[str] | None = None) -> None:
    """Print the table (or JSON with `--json`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--budget", type=float, default=0.3, help="seconds per case per round"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    table = measure(args.rounds, args.budget)
    if args.json:
        print(json.dumps(table, indent=2))
        return
    header = f"{'pattern':<24}{'ours us':>11}{'theirs us':>11}{'ours/theirs':>13}"
    print(header)
    print("-" * len(header))
    for case, row in table.items():
        print(
            f"{case:<24}{row['ours_us']:>11.1f}{row['theirs_us']:>11.1f}"
            f"{row['ratio']:>13.3f}"
        )


if __name__ == "__main__":
    main()
