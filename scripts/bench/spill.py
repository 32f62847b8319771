"""Spill: put 3x a memory budget of 8 MB arrays, then read them all back; ours vs Ray.

Both sides get the same budget of same-node memory and spill to the same disk
(a fresh directory under the working tree's file system, never ``/dev/shm``):

* ours: ``Store`` + ``SharedMemoryConnector(budget=...)`` (the arena is the
  budget; least recently used objects spill to the directory), ``store.put`` of
  each array, then ``store.get`` of each, summing it;
* Ray: ``ray.init(object_store_memory=budget)`` with filesystem spilling to the
  directory, ``ray.put`` of each array, then ``ray.get`` of each, summing it.

Reported: total time (puts + gets), put and get phases, spill throughput (bytes
that went to disk / put phase) and restore throughput (bytes read back from
disk / get phase). Ours also runs with ``spill_compress="zstd"`` on a
compressible array (integer counts) and reports bytes written / raw bytes.

Ray needs ``object_store_memory`` of at least ~75 MB; the default budget (128
MiB) is above it.

    uv run --frozen python -m scripts.bench.spill [--rounds N] [--budget-mb N] [--json]

Ray is installed in the reference venv (``.bench-venv/bin/python -m pip install
ray``); without it the Ray rows are skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from scripts.bench import _refvenv
from scripts.bench.shm import _RAY_ENV, _has_ray, _keep_best

ARRAY_BYTES = 8_000_000
ROOT = Path(__file__).resolve().parents[2]

OURS_DRIVER = r"""
import json, sys, time, uuid
import numpy as np
from proxystore.connectors.shm import SharedMemoryConnector
from proxystore.store import Store

budget, directory = int(sys.argv[1]), sys.argv[2]
count, kind = int(sys.argv[3]), sys.argv[4]
rng = np.random.default_rng(0)
if kind == "random":
    arrays = [rng.random(__ARRAY_BYTES__ // 8) for _ in range(count)]
    compress = None
else:
    n = __ARRAY_BYTES__ // 8
    arrays = [rng.poisson(3, n).astype(np.int64) for _ in range(count)]
    compress = "zstd"
sums = [float(a.sum()) for a in arrays]
namespace = "bench_spill_" + uuid.uuid4().hex[:12]
connector = SharedMemoryConnector(namespace, budget=budget, spill_directory=directory,
                                  spill_compress=compress)
store = Store(namespace, connector, cache_size=0)
with store:
    start = time.perf_counter()
    keys = [store.put(a) for a in arrays]
    put = time.perf_counter() - start
    spilled = connector.spill_metrics()["0:directory"]
    start = time.perf_counter()
    for key, expected in zip(keys, sums):
        got = store.get(key)
        assert float(got.sum()) == expected
        del got
    get = time.perf_counter() - start
    metrics = connector.spill_metrics()["0:directory"]
    connector.close(clear=True)
print(json.dumps({
    "total": put + get, "put": put, "get": get,
    "spilled_bytes": spilled["bytes_spilled"],
    "written_bytes": spilled["bytes_written"],
    "restored_bytes": metrics["bytes_read"] + metrics["bytes_restored"],
}))
"""

RAY_DRIVER = r"""
import json, os, sys, time
import numpy as np
import ray

budget, directory, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ray.init(
    num_cpus=1, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
    object_store_memory=budget,
    _system_config={"object_spilling_config": json.dumps(
        {"type": "filesystem", "params": {"directory_path": directory}})},
)
rng = np.random.default_rng(0)
arrays = [rng.random(__ARRAY_BYTES__ // 8) for _ in range(count)]
sums = [float(a.sum()) for a in arrays]
start = time.perf_counter()
refs = [ray.put(a) for a in arrays]
put = time.perf_counter() - start
start = time.perf_counter()
for ref, expected in zip(refs, sums):
    got = ray.get(ref)
    assert float(got.sum()) == expected
    del got
get = time.perf_counter() - start
spilled = sum(
    os.path.getsize(os.path.join(d, f))
    for d, _, files in os.walk(directory) for f in files
)
ray.shutdown()
total_bytes = count * __ARRAY_BYTES__
print(json.dumps({"total": put + get, "put": put, "get": get,
                  "spilled_bytes": max(total_bytes - budget, 0),
                  "restored_bytes": max(total_bytes - budget, 0),
                  "disk_bytes_at_end": spilled}))
"""


def _fill(code: str) -> str:
    return code.replace("__ARRAY_BYTES__", str(ARRAY_BYTES))


def _run_ours(*args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _fill(OURS_DRIVER), *args],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.splitlines()[-1])
    return result


def measure(rounds: int, budget: int) -> dict[str, dict[str, float]]:
    """Alternate ours and Ray ``rounds`` times; keep each figure's best."""
    count = 3 * budget // ARRAY_BYTES
    table: dict[str, dict[str, float]] = {}
    ray = _has_ray()
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix=".bench-spill-", dir=ROOT) as tmp:
            ours_dir = os.path.join(tmp, "ours")
            row = _run_ours(str(budget), ours_dir, str(count), "random")
            _keep_best(table, "ours", row)
            zdir = os.path.join(tmp, "ours-zstd")
            row = _run_ours(str(budget), zdir, str(count), "counts")
            _keep_best(table, "ours_zstd", row)
            if ray:
                ray_dir = os.path.join(tmp, "ray")
                os.makedirs(ray_dir)
                row = _refvenv.run_json(
                    _fill(RAY_DRIVER), str(budget), ray_dir, str(count), env=_RAY_ENV
                )
                _keep_best(table, "ray", row)
                shutil.rmtree(ray_dir, ignore_errors=True)
    return table


def report(table: dict[str, dict[str, float]], budget: int) -> dict[str, Any]:
    """Return the table with throughputs and the ratios the targets are stated in."""
    for row in table.values():
        row["spill_MBps"] = row["spilled_bytes"] / row["put"] / 1e6
        row["restore_MBps"] = row["restored_bytes"] / row["get"] / 1e6
    ours, ray = table["ours"], table.get("ray")
    zstd = table["ours_zstd"]
    ratios = {
        "total/ray": ours["total"] / ray["total"] if ray else None,
        "put/ray": ours["put"] / ray["put"] if ray else None,
        "get/ray": ours["get"] / ray["get"] if ray else None,
        "compressed_written/raw": zstd["written_bytes"] / zstd["spilled_bytes"],
    }
    return {"budget": budget, "array_bytes": ARRAY_BYTES, "seconds": table,
            "ratios": ratios}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Print the table (or JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--budget-mb", type=int, default=128)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    budget = args.budget_mb * 2**20
    result = report(measure(args.rounds, budget), budget)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    table = result["seconds"]
    print(f"budget {args.budget_mb} MiB, 3x of 8 MB arrays")
    for side, row in table.items():
        print(
            f"{side:<10} total {row['total']:.2f} s  put {row['put']:.2f} s  "
            f"get {row['get']:.2f} s  spill {row['spill_MBps']:.0f} MB/s  "
            f"restore {row['restore_MBps']:.0f} MB/s"
        )
    for name, value in result["ratios"].items():
        print(f"{name:<24}{'-' if value is None else f'{value:.3f}'}")


if __name__ == "__main__":
    main()
