"""Benchmark: DIM ZeroMQ get across peers (ours vs proxystore-ex 0.1.5 vs raw pyzmq).

Two peers run on one machine, on two loopback addresses (127.0.0.1 and 127.0.0.2),
each with its own server process. Peer A puts an object; peer B gets it, so every
get crosses from B's connector to A's server. The raw floor is a pyzmq REQ/REP pair
(server in its own process) sending the same bytes with ``copy=False``.

Each round measures ours, the reference and the raw floor one after the other; the
figure kept per size is the best round's median get time.

    uv run --frozen python -m scripts.bench.dim [--rounds N] [--json]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
from typing import Any

from scripts.bench import _refvenv

# (object size in bytes, gets per round)
SIZES: list[tuple[int, int]] = [
    (10 * 1024, 400),
    (1024 * 1024, 40),
    (100 * 1024 * 1024, 5),
]

# Runs in the workspace venv (ours) and in `.bench-venv/` (the reference): the same
# code measures both. argv: module, sizes JSON, port A, port B.
_CONNECTOR_CODE = """
import importlib, json, statistics, sys, time
Connector = importlib.import_module(sys.argv[1]).ZeroMQConnector
sizes = json.loads(sys.argv[2])
a = Connector(port=int(sys.argv[3]), address="127.0.0.1")
b = Connector(port=int(sys.argv[4]), address="127.0.0.2")
out = {}
try:
    for size, reps in sizes:
        key = a.put(bytes(size))
        assert len(b.get(key)) == size
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            data = b.get(key)
            times.append(time.perf_counter() - start)
            del data
        a.evict(key)
        out[str(size)] = statistics.median(times)
finally:
    b.close()
    a.close()
print(json.dumps(out))
"""

# The raw floor: one REQ/REP round trip per get, reply sent with copy=False.
_RAW_CODE = """
import json, multiprocessing, statistics, sys, time
import zmq

def serve(port, size):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REP)
    sock.bind(f"tcp://127.0.0.1:{port}")
    data = bytes(size)
    while sock.recv() != b"stop":
        sock.send(data, copy=False)
    sock.send(b"")
    sock.close()
    ctx.term()

sizes = json.loads(sys.argv[1])
port = int(sys.argv[2])
out = {}
ctx = zmq.Context()
for size, reps in sizes:
    proc = multiprocessing.get_context("fork").Process(target=serve, args=(port, size))
    proc.start()
    sock = ctx.socket(zmq.REQ)
    sock.connect(f"tcp://127.0.0.1:{port}")
    sock.send(b"get")
    sock.recv(copy=False)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        sock.send(b"get")
        frame = sock.recv(copy=False)
        times.append(time.perf_counter() - start)
        del frame
    sock.send(b"stop")
    sock.recv()
    sock.close()
    proc.join()
    out[str(size)] = statistics.median(times)
ctx.term()
print(json.dumps(out))
"""


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _run_ours(code: str, *args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        check=True,
        capture_output=True,
        text=True,
    )
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    result: dict[str, float] = json.loads(lines[-1])
    return result


def _best(into: dict[str, float], new: dict[str, float]) -> None:
    for size, seconds in new.items():
        into[size] = min(seconds, into.get(size, float("inf")))


def measure(rounds: int) -> list[dict[str, Any]]:
    """Return one row per size with the best-of-rounds median get time of each."""
    sizes = json.dumps(SIZES)
    ours: dict[str, float] = {}
    theirs: dict[str, float] = {}
    raw: dict[str, float] = {}
    for _ in range(rounds):
        ports = (str(_free_port("127.0.0.1")), str(_free_port("127.0.0.2")))
        _best(
            ours,
            _run_ours(_CONNECTOR_CODE, "proxystore.connectors.dim.zmq", sizes, *ports),
        )
        ports = (str(_free_port("127.0.0.1")), str(_free_port("127.0.0.2")))
        _best(
            theirs,
            _refvenv.run_json(
                _CONNECTOR_CODE, "proxystore_ex.connectors.dim.zmq", sizes, *ports
            ),
        )
        _best(raw, _run_ours(_RAW_CODE, sizes, str(_free_port("127.0.0.1"))))
    rows = []
    for size, _ in SIZES:
        key = str(size)
        rows.append(
            {
                "size": size,
                "ours_s": ours[key],
                "reference_s": theirs[key],
                "raw_s": raw[key],
                "ours_mb_s": size / ours[key] / 1e6,
                "reference_mb_s": size / theirs[key] / 1e6,
                "raw_mb_s": size / raw[key] / 1e6,
                "ours_over_reference": ours[key] / theirs[key],
                "ours_throughput_over_raw": raw[key] / ours[key],
            },
        )
    return rows


def _human(size: int) -> str:
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= scale:
            return f"{size // scale} {unit}"
    return f"{size} B"


def main(argv: list[str] | None = None) -> None:
    """Print the table (or JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = measure(args.rounds)
    if args.json:
        print(json.dumps({"benchmark": "dim", "rows": rows}))
        return
    print(
        f"{'size':>7} | {'ours':>10} {'reference':>10} {'raw zmq':>10} | "
        f"{'ours MB/s':>9} {'raw MB/s':>9} | {'ours/ref':>8} {'thr/raw':>7}",
    )
    for row in rows:
        print(
            f"{_human(row['size']):>7} | {row['ours_s'] * 1e6:>8.0f}us "
            f"{row['reference_s'] * 1e6:>8.0f}us {row['raw_s'] * 1e6:>8.0f}us | "
            f"{row['ours_mb_s']:>9.0f} {row['raw_mb_s']:>9.0f} | "
            f"{row['ours_over_reference']:>8.2f} "
            f"{row['ours_throughput_over_raw']:>7.2f}",
        )
    print("time = best-of-rounds median get across peers; thr/raw = raw_s / ours_s")


if __name__ == "__main__":
    main()
