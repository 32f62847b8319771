"""Distributed reference counting: what a refcounted proxy costs, and its traffic.

Rows (a real ``redis-server`` on a free loopback port):

* ``create+resolve``: per operation, ``store.proxy(obj)`` of a small object,
  ``pickle.dumps`` and ``pickle.loads`` of the proxy, resolve of the copy
  (``cache_size=0``), then both dropped. Sides: ours plain, ours with
  ``refcount=True`` (a synchronous hold at creation; the transfer, conversion and
  releases go through the heartbeat thread, whose time is counted because it
  shares the process), and the reference release plain (``.bench-venv/``).
  Target: refcounted <= 1.3 x plain. Alternated round by round, best round kept.
* ``heartbeat``: ``--holders`` processes each hold ``--keys`` refcounted objects
  with a 0.2 s interval for 3 s; the server's ``INFO commandstats`` and
  ``total_net_input_bytes`` (reset first) give the heartbeat messages and bytes.
  Target: at most one small message per holder (process) per interval, whatever
  the number of keys it holds.

    uv run --frozen python -m scripts.bench.refcount [--rounds N] [--ops N]
        [--holders N] [--keys N] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from scripts.bench import _refvenv
from scripts.bench.redis import redis_server

CREATE_RESOLVE = r"""
import gc, json, pickle, sys, time
from proxystore.connectors.redis import RedisConnector
from proxystore.proxy import extract
from proxystore.store import Store

port, n, modes = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(",")
store = Store("refcount-bench", RedisConnector("127.0.0.1", port), cache_size=0,
              populate_target=False, register=True)
obj = list(range(10))

def once(refcount):
    p = store.proxy(obj, refcount=True) if refcount else store.proxy(obj)
    q = pickle.loads(pickle.dumps(p))
    extract(q)

def run(refcount, count):
    start = time.perf_counter()
    for _ in range(count):
        once(refcount)
    if refcount:
        from proxystore.store import refcount as rc
        rc.flush(10)  # the queued transfers and releases are part of the cost
    return (time.perf_counter() - start) / count

best = {}
for mode in modes:
    run(mode == "refcount", 300)  # warm-up
for _ in range(5):
    for mode in modes:
        best[mode] = min(best.get(mode, float("inf")), run(mode == "refcount", n))
print(json.dumps(best))
"""

HOLDER = r"""
import sys, time
from proxystore.connectors.redis import RedisConnector
from proxystore.store import Store, refcount

port, keys, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
refcount.configure(interval=0.2)
store = Store("refcount-beat", RedisConnector("127.0.0.1", port), register=True)
held = store.proxy_batch([[i] for i in range(keys)], refcount=True)
refcount.flush(5)
print("ready", flush=True)
sys.stdin.readline()
time.sleep(seconds)
print("done", flush=True)
sys.stdin.readline()
"""


def _run(python: str, code: str, *args: str) -> dict[str, float]:
    out = subprocess.run(
        [python, "-c", code, *args], check=True, capture_output=True, text=True
    )
    result: dict[str, float] = json.loads(out.stdout.splitlines()[-1])
    return result


def measure_create_resolve(port: int, rounds: int, ops: int) -> dict[str, float]:
    """Return the best seconds per operation of each side."""
    best: dict[str, float] = {}
    for _ in range(rounds):
        ours = _run(
            sys.executable, CREATE_RESOLVE, str(port), str(ops), "plain,refcount"
        )
        # The same driver, plain only (the reference has no refcount=).
        theirs = _refvenv.run_json(CREATE_RESOLVE, str(port), str(ops), "plain")
        for name, value in (
            ("plain", ours["plain"]),
            ("refcount", ours["refcount"]),
            ("theirs", theirs["plain"]),
        ):
            best[name] = min(best.get(name, float("inf")), value)
    return best


def _redis_info(port: int, *, reset: bool = False) -> dict[str, Any]:
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        if reset:
            client.config_resetstat()
            return {}
        return {
            "commandstats": client.info("commandstats"),
            "net": client.info("stats"),
        }
    finally:
        client.close()


def measure_heartbeat(port: int, holders: int, keys: int) -> dict[str, float]:
    """Run ``holders`` processes holding ``keys`` objects each; count their beats."""
    seconds = 3.0
    interval = 0.2
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(port), str(keys), str(seconds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(holders)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        _redis_info(port, reset=True)
        start = time.monotonic()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("\n")
            proc.stdin.flush()
        for proc in procs:
            assert proc.stdout is not None
            proc.stdout.readline()
        elapsed = time.monotonic() - start
        info = _redis_info(port)
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("\n")
            proc.stdin.flush()
            proc.wait(30)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    stats = info["commandstats"]
    calls = sum(
        v["calls"] for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval")
    )
    net_in = info["net"]["total_net_input_bytes"]
    intervals = elapsed / interval
    return {
        "messages": calls,
        "bytes": net_in,
        "elapsed": elapsed,
        "per_process_per_interval": calls / holders / intervals,
        "per_held_key_per_interval": calls / (holders * keys) / intervals,
        "bytes_per_message": net_in / max(1, calls),
        "bytes_per_held_key_per_interval": net_in / (holders * keys) / intervals,
    }


def main(argv: list[str] | None = None) -> None:
    """Run the rows and print a table (or ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ops", type=int, default=1000)
    parser.add_argument("--holders", type=int, default=4)
    parser.add_argument("--keys", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    _refvenv.ensure()
    with redis_server() as port:
        create = measure_create_resolve(port, args.rounds, args.ops)
        beat = measure_heartbeat(port, args.holders, args.keys)
    result: dict[str, Any] = {
        "create+resolve": {
            **{f"{k}_us": v * 1e6 for k, v in create.items()},
            "refcount/plain": create["refcount"] / create["plain"],
            "plain/theirs": create["plain"] / create["theirs"],
        },
        "heartbeat": {"holders": args.holders, "keys": args.keys, **beat},
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    c = result["create+resolve"]
    print("create+resolve on Redis (per op, best round)")
    print(f"  ours plain        {c['plain_us']:8.1f} us")
    print(f"  ours refcount     {c['refcount_us']:8.1f} us")
    print(f"  theirs plain      {c['theirs_us']:8.1f} us")
    print(f"  refcount/plain    {c['refcount/plain']:8.2f} x   (target <= 1.3)")
    print(f"  plain/theirs      {c['plain/theirs']:8.2f} x")
    b = result["heartbeat"]
    print(
        f"heartbeat: {b['holders']} processes x {b['keys']} keys, 0.2 s interval, "
        f"{b['elapsed']:.1f} s"
    )
    print(f"  messages per process per interval  {b['per_process_per_interval']:.2f}")
    print(f"  messages per held key per interval {b['per_held_key_per_interval']:.4f}")
    print(f"  bytes per message                  {b['bytes_per_message']:.0f}")
    per_key = b["bytes_per_held_key_per_interval"]
    print(f"  bytes per held key per interval    {per_key:.0f}")


if __name__ == "__main__":
    main()
