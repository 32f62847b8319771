"""Shared memory: a 100 MB array to another process, ours vs Ray, Dask, reference.

One run measures, best of several rounds (all sides alternate round by round so the
CPU load of other processes hits them alike):

* ``task``: a long-lived, warmed-up worker process (spawned) receives a handle to a
  stored 100 MB float64 array and returns its sum; time from submit to result.
  Each repeat stores a *new* array, so every resolve really fetches.
  - ours: ``Store`` + ``SharedMemoryConnector`` in arena mode (default arena
    size), a proxy sent to a ``ProcessPoolExecutor`` (spawn) worker;
  - theirs: the reference release (``.bench-venv/``), ``RedisConnector`` on a
    throwaway ``redis-server``, same executor pattern;
  - Ray: ``ray.put`` + a remote task taking the ``ObjectRef`` (Ray resolves it);
  - Dask: ``client.scatter`` + a task on the future (one worker process).
* ``resolve``: inside the worker, the time to turn the handle into the array (ours
  and theirs: ``extract(proxy)``; Ray: ``ray.get`` of a ref passed in a list).
* ``put``: storing the array (``Store.put``, ``ray.put``, ``client.scatter``) against
  one ``numpy.copy`` of it (the floor for anything that must copy the data once).
  Ours and theirs also time the two halves of a put: ``serialize`` and the
  connector's ``put`` of the serialized bytes.
* ``100 B resolve``: median time for a worker to resolve one 100 B object's proxy.

    uv run --frozen python -m scripts.bench.shm [--rounds N] [--repeats N] [--json]

Ray is installed in the reference venv (``.bench-venv/bin/python -m pip install ray``);
without it the Ray rows are skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from scripts.bench import _refvenv
from scripts.bench.redis import redis_server

ARRAY_BYTES = 100_000_000
SMALL_BYTES = 100
SMALL_COUNT = 200

# Imported by the worker processes of ours and of the reference (same source).
WORKER = r"""
import statistics, time
from proxystore.proxy import extract


def resolve_sum(proxy):
    start = time.perf_counter()
    array = extract(proxy)
    resolved = time.perf_counter() - start
    return resolved, float(array.sum())


def resolve_each(proxies):
    times = []
    for proxy in proxies:
        start = time.perf_counter()
        extract(proxy)
        times.append(time.perf_counter() - start)
    return statistics.median(times)
"""

# Runs unchanged in both venvs (ours: shared memory; theirs: Redis); prints JSON.
# argv: connector kind, its argument, repeats.
PROXY_DRIVER = r"""
import json, multiprocessing, sys, time, uuid
from concurrent.futures import ProcessPoolExecutor
import numpy as np
from proxystore.serialize import serialize
from proxystore.store import Store
import _psbench_worker as worker

kind, arg, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
if kind == "shm":
    from proxystore.connectors.shm import SharedMemoryConnector
    connector = SharedMemoryConnector(arg, arena=True)
else:
    from proxystore.connectors.redis import RedisConnector
    connector = RedisConnector("127.0.0.1", int(arg))
array = np.random.default_rng(0).random(__ARRAY_BYTES__ // 8)
expected = float(array.sum())
out = {"put": [], "copy": [], "task": [], "resolve": [], "serialize": [],
       "connector_put": []}
store = Store("bench-shm-" + uuid.uuid4().hex, connector, cache_size=0, register=True)
context = multiprocessing.get_context("spawn")
with store, ProcessPoolExecutor(1, mp_context=context) as pool:
    for _ in range(2):  # warm-up: worker started, modules imported, store made
        proxy = store.proxy(array)
        pool.submit(worker.resolve_sum, proxy).result()
        pool.submit(worker.resolve_each, [store.proxy(b"x")]).result()
    for _ in range(repeats):
        start = time.perf_counter()
        copy = array.copy()
        out["copy"].append(time.perf_counter() - start)
        del copy
        start = time.perf_counter()
        key = store.put(array)
        out["put"].append(time.perf_counter() - start)
        store.evict(key)
        start = time.perf_counter()
        data = serialize(array)
        out["serialize"].append(time.perf_counter() - start)
        start = time.perf_counter()
        key = connector.put(data)
        out["connector_put"].append(time.perf_counter() - start)
        connector.evict(key)
        del data
        proxy = store.proxy(array, populate_target=False)
        start = time.perf_counter()
        resolved, total = pool.submit(worker.resolve_sum, proxy).result()
        out["task"].append(time.perf_counter() - start)
        out["resolve"].append(resolved)
        assert abs(total - expected) < 1e-6 * expected, (total, expected)
        from proxystore.store.utils import get_key
        store.evict(get_key(proxy))
    small = [store.proxy(bytes(__SMALL_BYTES__), populate_target=False)
             for _ in range(__SMALL_COUNT__)]
    out["small_resolve"] = [pool.submit(worker.resolve_each, small).result()]
print(json.dumps({k: min(v) for k, v in out.items()}))
"""

RAY_DRIVER = r"""
import json, sys, time
import numpy as np
import ray

repeats = int(sys.argv[1])
ray.init(num_cpus=1, include_dashboard=False, logging_level="ERROR",
         log_to_driver=False)


@ray.remote
def total(array):
    return float(array.sum())


@ray.remote
def resolve_sum(refs):
    start = time.perf_counter()
    array = ray.get(refs[0])
    resolved = time.perf_counter() - start
    return resolved, float(array.sum())


array = np.random.default_rng(0).random(__ARRAY_BYTES__ // 8)
expected = float(array.sum())
out = {"put": [], "task": [], "resolve": []}
for _ in range(2):
    ref = ray.put(array)
    ray.get(total.remote(ref))
    ray.get(resolve_sum.remote([ref]))
    del ref
for _ in range(repeats):
    start = time.perf_counter()
    ref = ray.put(array)
    out["put"].append(time.perf_counter() - start)
    start = time.perf_counter()
    assert abs(ray.get(total.remote(ref)) - expected) < 1e-6 * expected
    out["task"].append(time.perf_counter() - start)
    resolved, _ = ray.get(resolve_sum.remote([ref]))
    out["resolve"].append(resolved)
    del ref
ray.shutdown()
print(json.dumps({k: min(v) for k, v in out.items()}))
"""

DASK_DRIVER = r"""
import json, sys, time
import numpy as np
from dask.distributed import Client, LocalCluster

repeats = int(sys.argv[1])
array = np.random.default_rng(0).random(__ARRAY_BYTES__ // 8)
expected = float(array.sum())
out = {"put": [], "task": []}
with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                  dashboard_address=":0") as cluster, Client(cluster) as client:
    for _ in range(2):
        future = client.scatter(array)
        client.submit(np.sum, future).result()
        del future
    for _ in range(repeats):
        start = time.perf_counter()
        future = client.scatter(array)
        out["put"].append(time.perf_counter() - start)
        start = time.perf_counter()
        total = client.submit(np.sum, future, pure=False).result()
        assert abs(total - expected) < 1e-6 * expected
        out["task"].append(time.perf_counter() - start)
        del future
print(json.dumps({k: min(v) for k, v in out.items()}))
"""


# Ray notices it runs under `uv run` and would ship the workspace to its workers.
_RAY_ENV = {"RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}


def _fill(code: str) -> str:
    return (
        code.replace("__ARRAY_BYTES__", str(ARRAY_BYTES))
        .replace("__SMALL_BYTES__", str(SMALL_BYTES))
        .replace("__SMALL_COUNT__", str(SMALL_COUNT))
    )


def _run_ours(code: str, *args: str, env: dict[str, str]) -> dict[str, float]:
    """Run ``code`` with our venv's interpreter; parse its last line as JSON."""
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )
    result: dict[str, float] = json.loads(out.stdout.splitlines()[-1])
    return result


def _has_ray() -> bool:
    probe = subprocess.run(
        [str(_refvenv.python()), "-c", "import ray"], capture_output=True, check=False
    )
    return probe.returncode == 0


def _keep_best(
    table: dict[str, dict[str, float]], side: str, row: dict[str, float]
) -> None:
    best = table.setdefault(side, {})
    for name, value in row.items():
        best[name] = min(best.get(name, float("inf")), value)


def measure(rounds: int, repeats: int) -> dict[str, dict[str, float]]:
    """Alternate the four systems ``rounds`` times; keep each figure's best."""
    table: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="ps-bench-shm-") as tmp:
        Path(tmp, "_psbench_worker.py").write_text(WORKER)
        path_env = {"PYTHONPATH": tmp}
        ray = _has_ray()
        with redis_server() as port:
            for _ in range(rounds):
                namespace = f"bench_{secrets.token_hex(6)}"
                args = ("shm", namespace, str(repeats))
                _keep_best(table, "ours", _run_ours(_fill(PROXY_DRIVER), *args,
                                                    env=path_env))  # fmt: skip
                theirs = _refvenv.run_json(
                    _fill(PROXY_DRIVER), "redis", str(port), str(repeats), env=path_env
                )
                _keep_best(table, "theirs", theirs)
                if ray:
                    row = _refvenv.run_json(
                        _fill(RAY_DRIVER), str(repeats), env=_RAY_ENV
                    )
                    _keep_best(table, "ray", row)
                dask = _run_ours(_fill(DASK_DRIVER), str(repeats), env={})
                _keep_best(table, "dask", dask)
    return table


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def _ratio(ours: float | None, other: float | None) -> str:
    return "-" if ours is None or not other else f"{ours / other:.2f}"


def report(table: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Return the table with the ratios the targets are stated in."""
    ours = table["ours"]
    ratios = {
        "resolve_ms": ours["resolve"] * 1e3,
        "task/ray": ours["task"] / table["ray"]["task"] if "ray" in table else None,
        "task/dask": ours["task"] / table["dask"]["task"],
        "task/theirs": ours["task"] / table["theirs"]["task"],
        "put/numpy.copy": ours["put"] / ours["copy"],
        "small_resolve/theirs": ours["small_resolve"]
        / table["theirs"]["small_resolve"],
    }
    return {"seconds": table, "ratios": ratios}


def main(argv: list[str] | None = None) -> None:
    """Print the table (or JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = report(measure(args.rounds, args.repeats))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    table: dict[str, dict[str, float]] = result["seconds"]
    sides = ["ours", "theirs", "ray", "dask"]
    header = f"{'100 MB float64':<22}" + "".join(
        f"{name:>12}" for name in ["ours", "ref+Redis", "Ray", "Dask"]
    )
    print(header)
    print("-" * len(header))
    rows = [
        ("task (submit->sum)", "task"),
        ("resolve in worker", "resolve"),
        ("put", "put"),
        ("  of which serialize", "serialize"),
        ("  of which connector", "connector_put"),
        ("numpy.copy (floor)", "copy"),
        ("100 B resolve", "small_resolve"),
    ]
    for label, name in rows:
        cells = "".join(f"{_fmt(table.get(s, {}).get(name)):>12}" for s in sides)
        print(f"{label:<22}{cells}")
    print()
    for name, value in result["ratios"].items():
        print(f"{name:<24}{'-' if value is None else f'{value:.3f}'}")


if __name__ == "__main__":
    main()
