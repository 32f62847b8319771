"""Benchmark: one large message over WebRTC data channels, both peers in one process.

Three ways to move the same message between two aiortc peer connections on this host:

* raw    -- aiortc `RTCDataChannel.send` of 64 KiB pieces with buffered-amount flow
            control; the floor set by aiortc's pure-Python SCTP.
* ours   -- `proxystore.p2p.manager.PeerManager.send`/`recv` (chunking, reassembly,
            relay handshake on an in-process relay), ICE on 127.0.0.1.
* ref    -- the reference `proxystore==1.1.0` `PeerManager` in `.bench-venv/` (its
            websockets relay in-process; it cannot restrict ICE, so its host
            candidates are this host's own non-loopback addresses).

Each variant runs in a fresh process; rounds interleave raw, ours, ref and the
figure kept is the median. The machine may be shared: ratios from one run are what
count, not absolute MB/s.

    uv run --frozen python -m scripts.bench.p2p [--size-mb 100] [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from typing import Any

from scripts.bench import _refvenv

_RAW_CODE = """
import asyncio, json, sys, time
from aiortc import RTCConfiguration, RTCPeerConnection
from proxystore.p2p._ice import allowed_host_addresses

async def main(size):
    a = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    b = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    channel = a.createDataChannel("bench", ordered=False)
    opened, done = asyncio.Event(), asyncio.Event()
    received = 0

    @b.on("datachannel")
    def on_channel(remote):
        @remote.on("message")
        def on_message(data):
            nonlocal received
            received += len(data)
            if received >= size:
                done.set()

    channel.on("open", opened.set)
    with allowed_host_addresses(("127.0.0.1",)):
        await a.setLocalDescription(await a.createOffer())
        await b.setRemoteDescription(a.localDescription)
        await b.setLocalDescription(await b.createAnswer())
    await a.setRemoteDescription(b.localDescription)
    await opened.wait()
    low = asyncio.Event()
    channel.bufferedAmountLowThreshold = 2**20
    channel.on("bufferedamountlow", low.set)
    piece = bytes(2**16)
    start = time.perf_counter()
    sent = 0
    while sent < size:
        while channel.bufferedAmount > 4 * 2**20:
            low.clear()
            await low.wait()
        n = min(len(piece), size - sent)
        channel.send(piece[:n])
        sent += n
    await done.wait()
    seconds = time.perf_counter() - start
    await a.close()
    await b.close()
    print(json.dumps({"seconds": seconds}))

asyncio.run(main(int(sys.argv[1])))
"""

_OURS_CODE = """
import asyncio, json, sys, time
from aiohttp import web
from proxystore.p2p.manager import PeerManager
from proxystore.p2p.relay.authenticate import NullAuthenticator
from proxystore.p2p.relay.client import RelayClient
from proxystore.p2p.relay.server import RelayServer

async def main(size):
    runner = web.AppRunner(RelayServer(NullAuthenticator()).app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    kw = dict(ice_servers=[], ice_addresses=["127.0.0.1"])
    a = await PeerManager(RelayClient(f"ws://127.0.0.1:{port}"), **kw)
    b = await PeerManager(RelayClient(f"ws://127.0.0.1:{port}"), **kw)
    await a.send(b.uuid, b"warm-up")
    await b.recv()
    data = bytes(size)
    start = time.perf_counter()
    await a.send(b.uuid, data, timeout=600)
    _, got = await b.recv()
    seconds = time.perf_counter() - start
    assert len(got) == size
    await a.close()
    await b.close()
    await runner.cleanup()
    print(json.dumps({"seconds": seconds}))

asyncio.run(main(int(sys.argv[1])))
"""

_REF_CODE = """
import asyncio, json, logging, sys, time
import websockets.asyncio.server
from proxystore.p2p.manager import PeerManager
from proxystore.p2p.relay.authenticate import NullAuthenticator
from proxystore.p2p.relay.client import RelayClient
from proxystore.p2p.relay.server import RelayServer
logging.disable(logging.CRITICAL)

async def main(size):
    server = RelayServer(NullAuthenticator())
    async with websockets.asyncio.server.serve(server.handler, "127.0.0.1", 0) as ws:
        port = list(ws.sockets)[0].getsockname()[1]
        a = await PeerManager(RelayClient(f"ws://127.0.0.1:{port}"), ice_servers=[])
        b = await PeerManager(RelayClient(f"ws://127.0.0.1:{port}"), ice_servers=[])
        await a.send(b.uuid, b"warm-up")
        await b.recv()
        data = bytes(size)
        start = time.perf_counter()
        await a.send(b.uuid, data, timeout=600)
        _, got = await b.recv()
        seconds = time.perf_counter() - start
        assert len(got) == size
        await a.close()
        await b.close()
    print(json.dumps({"seconds": seconds}))

asyncio.run(main(int(sys.argv[1])))
"""


def _ours(code: str, size: int) -> float:
    out = subprocess.run(
        [sys.executable, "-c", code, str(size)],
        check=True,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    return float(json.loads(out.stdout.splitlines()[-1])["seconds"])


def _ref(size: int) -> float:
    return float(_refvenv.run_json(_REF_CODE, str(size))["seconds"])


def measure(size: int, rounds: int, *, reference: bool = True) -> dict[str, Any]:
    """Return median seconds and MB/s per variant for one `size`-byte message."""
    times: dict[str, list[float]] = {"raw": [], "ours": [], "ref": []}
    for _ in range(rounds):
        times["raw"].append(_ours(_RAW_CODE, size))
        times["ours"].append(_ours(_OURS_CODE, size))
        if reference:
            times["ref"].append(_ref(size))
    result: dict[str, Any] = {"size": size, "rounds": rounds}
    for name, values in times.items():
        if values:
            median = statistics.median(values)
            result[name] = {"seconds": median, "mb_per_s": size / median / 1e6}
    if "ref" in result:
        result["ours_over_ref_throughput"] = (
            result["ours"]["mb_per_s"] / result["ref"]["mb_per_s"]
        )
    result["ours_over_raw_throughput"] = (
        result["ours"]["mb_per_s"] / result["raw"]["mb_per_s"]
    )
    return result


def main(argv: list[str] | None = None) -> None:
    """Print the table (or JSON with `--json`)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    size = int(args.size_mb * 1_000_000)
    result = measure(size, args.rounds, reference=not args.no_reference)
    if args.json:
        print(json.dumps({"benchmark": "p2p", **result}))
        return
    print(f"one {size / 1e6:.0f} MB message, median of {args.rounds} rounds")
    for name in ("raw", "ours", "ref"):
        if name in result:
            row = result[name]
            print(f"  {name:5s} {row['seconds']:8.2f} s  {row['mb_per_s']:7.2f} MB/s")
    if "ours_over_ref_throughput" in result:
        print(f"  ours/ref throughput: {result['ours_over_ref_throughput']:.2f}x")
    print(f"  ours/raw throughput: {result['ours_over_raw_throughput']:.2f}x")


if __name__ == "__main__":
    main()
