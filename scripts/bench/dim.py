"""Benchmark: DIM get across peers, ZeroMQ and UCX (ours vs proxystore-ex vs raw).

Two peers run on one machine, on two loopback addresses (127.0.0.1 and 127.0.0.2),
each with its own server process. Peer A puts an object; peer B gets it, so every
get crosses from B's connector to A's server. The raw floor is a pyzmq REQ/REP pair
(server in its own process) sending the same bytes with ``copy=False``.

The UCX column runs our ``UCXConnector`` the same way (when ``ucxx`` is installed:
``uv sync --group ucx``), against a raw ucxx floor: a server process that answers
each one-byte request with a tag send of the object, received into a fresh buffer
of its size, over the same kind of endpoint (opened from worker addresses, with
UCX error handling unless ``PROXYSTORE_DIM_UCX_ERROR_HANDLING=0``, as the
connector). UCX
runs with ``UCX_TLS=tcp,self,sm`` and ``UCX_NET_DEVICES=lo`` unless they are set.
proxystore-ex's UCX connector needs ``ucp`` (ucx-py), which is not installed in the
reference venv, so UCX has no reference column.

The Margo column runs our ``MargoConnector`` the same way wherever ``pymargo``
imports (built with Mochi: ``spack install py-mochi-margo``; it is not on PyPI),
over ``PROXYSTORE_BENCH_MARGO_PROTOCOL`` (default ``ofi+tcp``). libfabric listens
only on addresses an interface carries, so when 127.0.0.2 is not one, peer B uses
another address of this machine (or 127.0.0.1 with its own port); all of them are
local, so the bytes cross the loopback device as for ZeroMQ. Without pymargo the
column is empty (``null`` in ``--json``) and the reason is printed.

Each round measures ours, the reference and the raw floors one after the other; the
figure kept per size is the best round's median get time.

    uv run --frozen python -m scripts.bench.dim [--rounds N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
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
# code measures both. argv: module, sizes JSON, port A, port B, and optionally
# hosts A and B, and extra connector arguments (JSON).
_CONNECTOR_CODE = """
import importlib, json, statistics, sys, time
module, _, name = sys.argv[1].partition(":")
Connector = getattr(importlib.import_module(module), name or "ZeroMQConnector")
sizes = json.loads(sys.argv[2])
host_a, host_b = sys.argv[5:7] or ("127.0.0.1", "127.0.0.2")
extra = json.loads(sys.argv[7]) if len(sys.argv) > 7 else {}
a = Connector(port=int(sys.argv[3]), address=host_a, timeout=30, **extra)
b = Connector(port=int(sys.argv[4]), address=host_b, timeout=30, **extra)
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
    a.close(kill_server=True)
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


# The raw UCX floor, on the same kind of endpoint as the connector (opened from
# worker addresses, swapped here through the server's stdin/stdout): the client
# sends a 1-byte tag message, the server answers with one tag send of the object,
# received into a fresh buffer of its size.
_RAW_UCX_SERVER = """
import asyncio, os, sys
import ucxx

async def run(size):
    data = b"x" * size  # written pages, like an object a peer has stored
    print(ucxx.get_worker_address().tobytes().hex(), flush=True)
    peer = bytes.fromhex(sys.stdin.readline())
    ep = await ucxx.create_endpoint_from_worker_address(
        ucxx.get_ucx_address_from_buffer(peer),
        endpoint_error_handling=os.environ.get(
            "PROXYSTORE_DIM_UCX_ERROR_HANDLING", "1"
        ) != "0",
    )
    request = bytearray(1)
    while True:
        await ep.recv(request, tag=1, force_tag=True)
        if request == b"s":
            break
        await ep.send(data, tag=2, force_tag=True)
    await ep.close()

asyncio.run(run(int(sys.argv[1])))
"""

_RAW_UCX_CODE = """
import asyncio, json, os, statistics, subprocess, sys, time
import ucxx

async def client(server, size, reps):
    peer = bytes.fromhex(server.stdout.readline().decode())
    server.stdin.write(ucxx.get_worker_address().tobytes().hex().encode() + b"\\n")
    server.stdin.flush()
    ep = await ucxx.create_endpoint_from_worker_address(
        ucxx.get_ucx_address_from_buffer(peer),
        endpoint_error_handling=os.environ.get(
            "PROXYSTORE_DIM_UCX_ERROR_HANDLING", "1"
        ) != "0",
    )
    times = []
    for i in range(reps + 1):
        start = time.perf_counter()
        await ep.send(b"g", tag=1, force_tag=True)
        buffer = bytearray(size)
        await ep.recv(buffer, tag=2, force_tag=True)
        if i:
            times.append(time.perf_counter() - start)
        del buffer
    await ep.send(b"s", tag=1, force_tag=True)
    await ep.close()
    return statistics.median(times)

sizes = json.loads(sys.argv[1])
out = {}
for size, reps in sizes:
    server = subprocess.Popen(
        [sys.executable, "-c", sys.argv[2], str(size)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    out[str(size)] = asyncio.run(client(server, size, reps))
    server.wait(60)
print(json.dumps(out))
"""


def _ucx_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("ucxx") is not None


def _margo_plan() -> tuple[tuple[str, str, str] | None, str]:
    """Margo's (protocol, host A, host B), or `None` and why it cannot run."""
    import importlib.util

    if importlib.util.find_spec("pymargo") is None:
        return None, (
            "pymargo not installed (built with Mochi: spack install "
            "py-mochi-margo; not on PyPI), no Margo column"
        )
    from proxystore.connectors.dim.margo import bind_problem
    from proxystore.connectors.dim.utils import interface_addresses

    protocol = os.environ.get("PROXYSTORE_BENCH_MARGO_PROTOCOL", "ofi+tcp")
    # Peer B on another local address libfabric accepts; else on 127.0.0.1 too.
    candidates = ["127.0.0.2", *interface_addresses()]
    host_b = next(
        (
            host
            for host in candidates
            if "." in host
            and host != "127.0.0.1"
            and bind_problem(protocol, host) is None
        ),
        "127.0.0.1",
    )
    return (protocol, "127.0.0.1", host_b), f"Margo over {protocol}"


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
    ucx: dict[str, float] = {}
    ucx_raw: dict[str, float] = {}
    margo: dict[str, float] = {}
    with_ucx = _ucx_installed()
    margo_plan, margo_note = _margo_plan()
    os.environ.setdefault("UCX_TLS", "tcp,self,sm")
    os.environ.setdefault("UCX_NET_DEVICES", "lo")
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
        if with_ucx:
            ports = (str(_free_port("127.0.0.1")), str(_free_port("127.0.0.2")))
            module = "proxystore.connectors.dim.ucx:UCXConnector"
            _best(ucx, _run_ours(_CONNECTOR_CODE, module, sizes, *ports))
            _best(ucx_raw, _run_ours(_RAW_UCX_CODE, sizes, _RAW_UCX_SERVER))
        if margo_plan is not None:
            protocol, host_a, host_b = margo_plan
            module = "proxystore.connectors.dim.margo:MargoConnector"
            ports = (str(_free_port(host_a)), str(_free_port(host_b)))
            extra = json.dumps({"protocol": protocol})
            _best(
                margo,
                _run_ours(
                    _CONNECTOR_CODE, module, sizes, *ports, host_a, host_b, extra
                ),
            )
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
                "ucx_s": ucx.get(key),
                "ucx_raw_s": ucx_raw.get(key),
                "ucx_throughput_over_raw": (
                    ucx_raw[key] / ucx[key] if key in ucx else None
                ),
                "ucx_over_zmq": ucx[key] / ours[key] if key in ucx else None,
                "margo_s": margo.get(key),
                "margo_over_zmq": margo[key] / ours[key] if key in margo else None,
            },
        )
    if margo_plan is None:
        print(f"Margo: {margo_note}", file=sys.stderr)
    return rows


def _print_margo(rows: list[dict[str, Any]]) -> None:
    if rows[0]["margo_s"] is None:
        return  # measure() said why
    print(f"\n{'size':>7} | {'margo':>10} {'zmq':>10} | {'margo MB/s':>10} | margo/zmq")
    for row in rows:
        print(
            f"{_human(row['size']):>7} | {row['margo_s'] * 1e6:>8.0f}us "
            f"{row['ours_s'] * 1e6:>8.0f}us | "
            f"{row['size'] / row['margo_s'] / 1e6:>10.0f} | "
            f"{row['margo_over_zmq']:>9.2f}",
        )
    print("margo/zmq = margo_s / zmq_s (the issue's bar: 10 KB <= 1.5)")


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
    _print_margo(rows)
    if rows[0]["ucx_s"] is None:
        print("UCX: ucxx not installed (uv sync --group ucx), no UCX column")
        return
    print(
        f"\n{'size':>7} | {'ucx':>10} {'raw ucxx':>10} {'zmq':>10} | "
        f"{'ucx MB/s':>9} {'raw MB/s':>9} | {'thr/raw':>7} {'ucx/zmq':>7}",
    )
    for row in rows:
        print(
            f"{_human(row['size']):>7} | {row['ucx_s'] * 1e6:>8.0f}us "
            f"{row['ucx_raw_s'] * 1e6:>8.0f}us {row['ours_s'] * 1e6:>8.0f}us | "
            f"{row['size'] / row['ucx_s'] / 1e6:>9.0f} "
            f"{row['size'] / row['ucx_raw_s'] / 1e6:>9.0f} | "
            f"{row['ucx_throughput_over_raw']:>7.2f} {row['ucx_over_zmq']:>7.2f}",
        )
    print("ucx/zmq = ucx_s / zmq_s (below 1: UCX is faster)")


if __name__ == "__main__":
    main()
