"""Object lifecycles: what expiry, listing and telemetry cost (ours vs the reference).

Each row is a `Row`: a name, a ``measure(rounds)`` returning seconds per side, and
the ratios its targets are stated in. Rows run in the order of `ROWS`; more rows
(e.g. refcounted proxies) are added by appending to it.

* ``plain``: create a proxy of a small object (``Store.proxy`` on a
  ``LocalConnector``, not populated, no cache) and resolve it, per operation:
  ours, the reference release (``.bench-venv/``) and, with ``--before REV``, ours
  at an earlier commit (a throwaway ``git worktree``): the plain path must be
  unchanged by ``ttl=`` and lifetimes.
* ``list10k``: ``proxystore-store list --json`` (the console script, a new
  process) over a Redis database of 10 000 keys (1 000 with a TTL), wall clock;
  target <= 1 s.
* ``otel``: ``Store.put`` + ``Store.get`` of a small object on a
  ``LocalConnector``, in a process where OpenTelemetry is importable and
  ``proxystore.store.otel`` imported but not enabled, against one where
  ``opentelemetry`` cannot be imported at all; target: within 2 %. The
  instrumented cost (spans to a no-op exporter) is shown for information.

All sides alternate round by round (so load from other processes hits them alike)
and each figure is the best round.

    uv run --frozen python -m scripts.bench.lifecycle [--rounds N] [--before REV]
        [--rows plain,list10k,otel] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.bench import _refvenv
from scripts.bench.redis import redis_server
from scripts.bench.shm import _fmt

ROOT = Path(__file__).resolve().parents[2]

# Proxy create + resolve, per operation (same source for every side).
PLAIN_DRIVER = r"""
import json, sys, time
from proxystore.connectors.local import LocalConnector
from proxystore.proxy import extract
from proxystore.store import Store

n = int(sys.argv[1])
store = Store("lifecycle-bench", LocalConnector(), cache_size=0,
              populate_target=False, register=True)
obj = list(range(10))
for _ in range(2000):  # warm-up
    extract(store.proxy(obj))
best = float("inf")
for _ in range(40):  # many short batches: the best misses other load
    start = time.perf_counter()
    for _ in range(n):
        extract(store.proxy(obj))
    best = min(best, (time.perf_counter() - start) / n)
print(json.dumps({"plain": best}))
"""

# Store.put + Store.get, per pair. argv[2]: "absent" makes opentelemetry
# unimportable, "disabled" imports it and our module without enabling it,
# "enabled" instruments (spans go to a no-op span processor).
OTEL_DRIVER = r"""
import json, sys, time
mode = sys.argv[2]
if mode == "absent":
    sys.modules["opentelemetry"] = None
else:
    import opentelemetry.trace, opentelemetry.metrics
    from proxystore.store import otel
    if mode == "enabled":
        from opentelemetry.sdk.trace import TracerProvider
        otel.instrument(TracerProvider())
from proxystore.connectors.local import LocalConnector
from proxystore.store import Store

n = int(sys.argv[1])
store = Store("otel-bench", LocalConnector(), cache_size=0)
obj = b"x" * 100
for _ in range(2000):
    store.get(store.put(obj))
best = float("inf")
for _ in range(40):  # many short batches: the best misses other load
    start = time.perf_counter()
    for _ in range(n):
        store.get(store.put(obj))
    best = min(best, (time.perf_counter() - start) / n)
print(json.dumps({mode: best}))
"""


def _run(python: str, code: str, *args: str, env: dict[str, str] | None = None,
         cwd: str | None = None) -> dict[str, float]:  # fmt: skip
    out = subprocess.run(
        [python, "-c", code, *args],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    result: dict[str, float] = json.loads(out.stdout.splitlines()[-1])
    return result


def _keep_best(best: dict[str, float], row: dict[str, float]) -> None:
    for name, value in row.items():
        best[name] = min(best.get(name, float("inf")), value)


@dataclass
class Row:
    """One benchmark row: how to measure it, and the ratios it is judged by."""

    name: str
    measure: Callable[[int, argparse.Namespace], dict[str, float]]
    ratios: Callable[[dict[str, float]], dict[str, float | None]]


# ------------------------------------------------------------------- plain
@contextmanager
def _worktree(rev: str) -> Iterator[str]:
    """Check ``rev`` out in a throwaway worktree; yield a PYTHONPATH for it.

    Compiled extensions of the live tree are copied in (a worktree has none;
    without them the old code would take its pure-Python paths).
    """
    path = tempfile.mkdtemp(prefix="ps-bench-before-")
    shutil.rmtree(path)
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", path, rev],
        check=True,
    )
    try:
        for so in (ROOT / "packages").glob("*/src/proxystore/**/*.so"):
            target = Path(path) / so.relative_to(ROOT)
            if target.parent.is_dir():
                shutil.copy2(so, target)
        srcs = sorted(str(p) for p in (Path(path) / "packages").glob("*/src"))
        yield os.pathsep.join(srcs)
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", path],
            check=False,
        )


def _measure_plain(rounds: int, args: argparse.Namespace) -> dict[str, float]:
    n = str(args.ops)
    best: dict[str, float] = {}
    ctx = _worktree(args.before) if args.before else None
    before_path = ctx.__enter__() if ctx is not None else None
    try:
        for _ in range(rounds):
            _keep_best(best, {"ours": _run(sys.executable, PLAIN_DRIVER, n)["plain"]})
            theirs = _refvenv.run_json(PLAIN_DRIVER, n)["plain"]
            _keep_best(best, {"theirs": theirs})
            if before_path is not None:
                row = _run(
                    sys.executable,
                    PLAIN_DRIVER,
                    n,
                    env={"PYTHONPATH": before_path},
                    cwd=tempfile.gettempdir(),
                )
                _keep_best(best, {"before": row["plain"]})
    finally:
        if ctx is not None:
            ctx.__exit__(None, None, None)
    return best


def _plain_ratios(seconds: dict[str, float]) -> dict[str, float | None]:
    ours = seconds["ours"]
    before = seconds.get("before")
    return {
        "plain_us": ours * 1e6,
        "plain/theirs": ours / seconds["theirs"],
        "plain/before": None if before is None else ours / before,
    }


# ----------------------------------------------------------------- list10k
def _console_script() -> str:
    found = shutil.which(
        "proxystore-store", path=os.path.dirname(sys.executable)
    ) or shutil.which("proxystore-store")
    if found is None:
        raise SystemExit("proxystore-store is not installed (uv sync --frozen).")
    return found


def _measure_list(rounds: int, args: argparse.Namespace) -> dict[str, float]:
    from proxystore.connectors.redis import RedisConnector
    from proxystore.store import Store

    best: dict[str, float] = {}
    script = _console_script()
    with redis_server() as port, tempfile.TemporaryDirectory() as tmp:
        connector = RedisConnector("127.0.0.1", port)
        store = Store("listed", connector)
        connector.put_batch([b"v" * 100] * 9_000)
        connector.put_batch([b"w" * 100] * 1_000, ttl=3600)
        config = Path(tmp, "redis.toml")
        store.config().write_toml(config)
        for _ in range(rounds):
            for fmt, extra in (("json", ["--json"]), ("text", [])):
                start = time.perf_counter()
                out = subprocess.run(
                    [script, "list", *extra, str(config)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                elapsed = time.perf_counter() - start
                if fmt == "json":
                    total = json.loads(out.stdout)["stores"][0]["total"]["objects"]
                    assert total == 10_000, total
                _keep_best(best, {fmt: elapsed})
        store.close()
    return best


def _list_ratios(seconds: dict[str, float]) -> dict[str, float | None]:
    return {"list10k_json_s": seconds["json"], "list10k_text_s": seconds["text"]}


# -------------------------------------------------------------------- otel
def _measure_otel(rounds: int, args: argparse.Namespace) -> dict[str, float]:
    n = str(args.ops)
    best: dict[str, float] = {}
    for _ in range(rounds):
        for mode in ("absent", "disabled", "enabled"):
            _keep_best(best, _run(sys.executable, OTEL_DRIVER, n, mode))
    return best


def _otel_ratios(seconds: dict[str, float]) -> dict[str, float | None]:
    return {
        "put_get_us": seconds["absent"] * 1e6,
        "disabled/absent": seconds["disabled"] / seconds["absent"],
        "enabled/absent": seconds["enabled"] / seconds["absent"],
    }


ROWS: list[Row] = [
    Row("plain", _measure_plain, _plain_ratios),
    Row("list10k", _measure_list, _list_ratios),
    Row("otel", _measure_otel, _otel_ratios),
]


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run the selected rows; return ``{"seconds": ..., "ratios": ...}``."""
    wanted = set(args.rows.split(",")) if args.rows else None
    seconds: dict[str, dict[str, float]] = {}
    ratios: dict[str, float | None] = {}
    for row in ROWS:
        if wanted is not None and row.name not in wanted:
            continue
        seconds[row.name] = row.measure(args.rounds, args)
        ratios.update(row.ratios(seconds[row.name]))
    return {"seconds": seconds, "ratios": ratios}


def main(argv: list[str] | None = None) -> None:
    """Print the table (or JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--ops", type=int, default=1000, help="operations per timed batch"
    )
    parser.add_argument("--before", help="also time ours at this git revision")
    parser.add_argument("--rows", help="comma-separated rows to run (default: all)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = measure(args)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for name, sides in result["seconds"].items():
        cells = "  ".join(f"{side}={_fmt(value)}" for side, value in sides.items())
        print(f"{name:<10} {cells}")
    for name, value in result["ratios"].items():
        print(f"  {name:<18} {'-' if value is None else f'{value:.3f}'}")


if __name__ == "__main__":
    main()
