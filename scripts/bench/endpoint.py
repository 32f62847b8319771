"""Benchmark: reading another endpoint's object, ours against the reference release.

Setup, all on this host and in this run: a relay and two endpoints A and B (each a
separate process started by its CLI from its own proxystore home), once with our
packages and once with the reference `proxystore==1.1.0` from `.bench-venv/` (its
own relay and endpoints). An object is stored on A; a client asks B for it with
`GET /get?key=K&endpoint=<A>` over one keep-alive HTTP connection, so B fetches it
from its peer A. Measured:

* latency of one such get for a 10 KB object (median of many);
* time to get a 100 MB object (plus 1 MB and 10 MB), reported as MB/s;

for three setups:

* `ours-webrtc` -- our endpoints with direct transfers off: B fetches over the
  WebRTC data channel (ICE restricted to 127.0.0.1, no ICE servers);
* `ours-direct` -- our endpoints as configured by default: B learns A's HTTP
  address over the peer connection, checks it answers with A's UUID, and fetches
  over a keep-alive HTTP connection (WebRTC stays for peers it cannot reach);
* `ref` -- the reference endpoints (WebRTC always; ICE servers set to none, but it
  cannot restrict host candidates).

The floor: raw aiortc data-channel throughput between two peers in one process
(`scripts/bench/p2p.py`'s raw variant). Rounds interleave the setups and figures
are medians; the machine may be shared with other work, so the ratios from one
run are what count.

    uv run --frozen python -m scripts.bench.endpoint [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from proxystore.endpoint import client
from proxystore.utils.data import bytes_to_readable
from scripts.bench import _refvenv
from scripts.bench.p2p import _RAW_CODE, _ours
from tests.integration.harness.endpoint import (
    EndpointProcess,
    start_endpoint,
    start_relay,
)

SMALL = 10_000
SIZES = [1_000_000, 10_000_000, 100_000_000]
SETUPS = ["ours-webrtc", "ours-direct", "ref"]


class _Pair:
    """Client view of one setup: store on A, read through B.

    Uses the keep-alive client of `proxystore.endpoint.client` for both ours and
    the reference (it reconnects when a server drops an idle connection).
    """

    def __init__(self, a: EndpointProcess, b: EndpointProcess) -> None:
        self.a, self.b = a, b
        self.session = client.Session(timeout=600)

    def put_on_a(self, key: str, data: bytes) -> None:
        status, _, body = self.session.request(
            "POST", self.a.address, "set", {"key": key}, data
        )
        assert status == 200, (status, body[:200])

    def get_via_b(self, key: str) -> float:
        params = {"key": key, "endpoint": self.a.uuid}
        start = time.perf_counter()
        status, _, body = self.session.request("GET", self.b.address, "get", params)
        seconds = time.perf_counter() - start
        assert status == 200, (status, body[:200])
        return seconds

    def close(self) -> None:
        self.session.close()


@contextmanager
def _setups(workdir: Path) -> Iterator[dict[str, _Pair]]:
    ref_bin = Path(_refvenv.python()).parent
    with ExitStack() as stack:
        relay = start_relay(workdir / "relay")
        stack.callback(relay.stop)
        ref_relay = start_relay(
            workdir / "ref-relay", program=str(ref_bin / "proxystore-relay")
        )
        stack.callback(ref_relay.stop)
        pairs: dict[str, _Pair] = {}
        for setup in SETUPS:
            endpoints = []
            for side in ("A", "B"):
                name = f"{setup.replace('-', '_')}_{side}"
                endpoint = start_endpoint(
                    workdir / name,
                    name,
                    ref_relay if setup == "ref" else relay,
                    direct=setup == "ours-direct",
                    request_timeout=600,
                    max_object_size=max(SIZES),
                    program=str(ref_bin / "proxystore-endpoint")
                    if setup == "ref"
                    else None,
                )
                stack.callback(endpoint.stop)
                endpoints.append(endpoint)
            pairs[setup] = _Pair(*endpoints)
            stack.callback(pairs[setup].close)
        yield pairs


def measure(rounds: int, small_reps: int) -> dict[str, Any]:
    """Run every setup, interleaved, and return the medians."""
    latency: dict[str, list[float]] = {s: [] for s in SETUPS}
    seconds: dict[str, dict[int, list[float]]] = {
        s: {n: [] for n in SIZES} for s in SETUPS
    }
    raw: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-endpoint-") as tmp:
        env_home = os.environ.get("PROXYSTORE_HOME")
        with _setups(Path(tmp)) as pairs:
            for pair in pairs.values():  # warm up: peer connection, probes
                pair.put_on_a("warm", b"x")
                pair.get_via_b("warm")
            small = os.urandom(SMALL)
            payloads = {n: os.urandom(n) for n in SIZES}
            for r in range(rounds):
                raw.append(_ours(_RAW_CODE, max(SIZES)))
                for setup in SETUPS:
                    pair = pairs[setup]
                    pair.put_on_a(f"small{r}", small)
                    samples = [pair.get_via_b(f"small{r}") for _ in range(small_reps)]
                    latency[setup].append(statistics.median(samples))
                    for n, data in payloads.items():
                        pair.put_on_a(f"big{r}-{n}", data)
                        seconds[setup][n].append(pair.get_via_b(f"big{r}-{n}"))
                        pair.put_on_a(f"big{r}-{n}", b"0")  # free the memory
        if env_home is not None:
            os.environ["PROXYSTORE_HOME"] = env_home
    return {
        "latency_10kb_ms": {s: statistics.median(v) * 1000 for s, v in latency.items()},
        "throughput_mb_s": {
            s: {str(n): n / 1e6 / statistics.median(v) for n, v in by_size.items()}
            for s, by_size in seconds.items()
        },
        "raw_aiortc_100mb_mb_s": max(SIZES) / 1e6 / statistics.median(raw),
        "rounds": rounds,
        "small_reps": small_reps,
    }


def _table(result: dict[str, Any]) -> str:
    lat = result["latency_10kb_ms"]
    thr = result["throughput_mb_s"]
    lines = [
        "Peer get through endpoint B of an object on endpoint A "
        f"(medians of {result['rounds']} interleaved rounds; shared machine)",
        "",
        f"{'':24}{'ours-webrtc':>14}{'ours-direct':>14}{'ref':>10}"
        f"{'webrtc/ref':>12}{'direct/ref':>12}",
        f"{'10 KB latency (ms)':24}{lat['ours-webrtc']:>14.2f}"
        f"{lat['ours-direct']:>14.2f}{lat['ref']:>10.2f}"
        f"{lat['ours-webrtc'] / lat['ref']:>12.2f}"
        f"{lat['ours-direct'] / lat['ref']:>12.2f}",
    ]
    for n in SIZES:
        key = str(n)
        label = f"{bytes_to_readable(n)} (MB/s)"
        lines.append(
            f"{label:24}{thr['ours-webrtc'][key]:>14.1f}"
            f"{thr['ours-direct'][key]:>14.1f}{thr['ref'][key]:>10.1f}"
            f"{thr['ours-webrtc'][key] / thr['ref'][key]:>12.2f}"
            f"{thr['ours-direct'][key] / thr['ref'][key]:>12.2f}"
        )
    lines += [
        "",
        f"raw aiortc data channel, 100 MB in one process: "
        f"{result['raw_aiortc_100mb_mb_s']:.1f} MB/s (the WebRTC floor)",
        "targets: 10 KB latency <= 0.5x ref; 100 MB throughput >= 2x ref",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print a table (or JSON with `--json`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--small-reps", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = measure(args.rounds, args.small_reps)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        print(_table(result))


if __name__ == "__main__":
    main()
