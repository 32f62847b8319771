"""Endpoints at two NATed sites: connection set-up, small gets, throughput.

The network is the one the integration tests use (``tests/integration/harness/
netns.py``): an "internet" namespace with a relay and coturn (STUN and TURN), and
two sites, each a host behind its own NAT router. Per topology and per side (ours,
and the reference release's endpoints and relay from ``.bench-venv/``):

* ``start``: seconds from launching ``proxystore-endpoint start`` until its HTTP
  port accepts a connection (the slower of the two endpoints);
* ``first get``: a 10 KB get from site 1's endpoint of an object held by site 2's,
  the first request between them: relay offer/answer, ICE through the NATs and the
  data channel set-up included;
* ``10 KB get``: median of later 10 KB gets over the established connection;
* ``large get``: one get of ``--large`` bytes (default 10 MB; ``--large 100000000``
  for 100 MB), reported as seconds and MB/s (best and median of the rounds, which
  alternate ours and theirs).

Topologies: ``cone`` (both sites behind home-router-like NATs: hole punching,
server-reflexive candidates from coturn's STUN) and ``turn`` (both sites behind
symmetric NATs: only coturn's TURN relay gets through). The direct HTTP path is on
(as configured by default); it must be skipped, the peers' addresses are private.

Besides, ``--prototype`` measures the transport plan of docs/guides/peer-transports.md:
a TCP connection between the two NATed hosts made by simultaneous open (both
connect to the other's public address from a fixed port, after learning it through
a rendezvous), and the MB/s of one stream over it, next to the endpoints' figure.

    uv run --frozen python -m scripts.bench.nat [--rounds N] [--large BYTES]
        [--topologies cone,turn] [--no-reference] [--prototype] [--json]

Needs root (network namespaces), iptables and coturn's ``turnserver``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Any

from scripts.bench import _refvenv
from tests.integration.harness import netns

SMALL_BYTES = 10_000
SMALL_COUNT = 20
_TURN_ENV = "PS_BENCH_TURN_CREDENTIAL"

# Runs in a site host: store `size` bytes at `key` on the endpoint at `url`.
_SET = r"""
import sys, urllib.request
url, key, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
request = urllib.request.Request(f"{url}/set?key={key}", data=data, method="POST")
urllib.request.urlopen(request, timeout=120).read()
"""

# Runs in site 1's host: gets through its endpoint (argv: url, peer uuid, large,
# then the PIDs of the two endpoint processes, whose CPU time the large get costs).
_CLIENT = r"""
import json, os, statistics, sys, time, urllib.request
url, peer, large = sys.argv[1], sys.argv[2], int(sys.argv[3])
pids = sys.argv[4:]

def cpu():
    ticks = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")

def get(key):
    start = time.perf_counter()
    with urllib.request.urlopen(
        f"{url}/get?key={key}&endpoint={peer}", timeout=600
    ) as answer:
        data = answer.read()
    return time.perf_counter() - start, len(data)

out = {}
out["first get"], n = get("small")
assert n == 10_000, n
small = [get("small")[0] for _ in range(20)]
out["10 KB get"] = statistics.median(small)
def drops():
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    return int(dict(zip(rows[0], rows[1]))["RcvbufErrors"])

before, dropped = cpu(), drops()
out["large get"], n = get("large")
out["large get CPU s"] = cpu() - before
out["large get UDP drops"] = drops() - dropped
assert n == large, n
print(json.dumps(out))
"""


def _ice_servers(
    coturn: netns.Coturn, topology: str, reference: bool
) -> list[dict[str, Any]]:
    if topology == "cone":
        return [netns.ice_server(coturn.stun_url)]
    if reference:  # the reference reads only a credential written in the config
        return [
            {
                "urls": coturn.turn_url,
                "username": coturn.username,
                "credential": coturn.password,
            }
        ]
    return [netns.ice_server(coturn.turn_url, coturn.username, _TURN_ENV)]


def run_once(topology: str, large: int, reference: bool) -> dict[str, float]:
    """Build the network, start relay and endpoints, time the gets; tear down."""
    nats: list[netns.NatKind] = (
        ["cone", "cone"] if topology == "cone" else ["symmetric", "symmetric"]
    )
    endpoint_program = relay_program = None
    if reference:
        bin_dir = _refvenv.VENV_DIR / "bin"
        endpoint_program = str(bin_dir / "proxystore-endpoint")
        relay_program = str(bin_dir / "proxystore-relay")
    with netns.network("bench") as network:
        sites = netns.build_sites(network, nats)
        coturn = netns.start_coturn(sites.internet)
        relay = netns.start_relay(sites.internet, program=relay_program)
        ice = _ice_servers(coturn, topology, reference)
        env = {_TURN_ENV: coturn.password}
        one, two = sites.sites
        ep1 = netns.start_endpoint(
            one.host, one.private, "site1", relay, ice_servers=ice, env=env,
            program=endpoint_program,
        )  # fmt: skip
        ep2 = netns.start_endpoint(
            two.host, two.private, "site2", relay, ice_servers=ice, env=env,
            program=endpoint_program,
        )  # fmt: skip
        for key, size in (("small", SMALL_BYTES), ("large", large)):
            done = two.host.python(_SET, ep2.url, key, str(size), timeout=300)
            if done.returncode != 0:
                raise RuntimeError(done.stderr.decode(errors="replace")[-2000:])
        done = one.host.python(
            _CLIENT, ep1.url, ep2.uuid, str(large), str(ep1.process.pid),
            str(ep2.process.pid), timeout=900,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(
                done.stderr.decode(errors="replace")[-2000:]
                + "\n--- site 1 endpoint log ---\n"
                + ep1.log[-4000:]
            )
        result: dict[str, float] = json.loads(done.stdout.decode().splitlines()[-1])
        result["start"] = max(ep1.started_in, ep2.started_in)
        result["large MB/s"] = large / result["large get"] / 1e6
        result["large MB per CPU s"] = large / result.pop("large get CPU s") / 1e6
        return result


# Runs in each site's host (argv: coturn host:port, local port, bytes, send|recv):
# learn our TCP mapping from coturn, print it for the rendezvous (stdout), read the
# peer's from stdin, connect to it from our fixed local port until the simultaneous
# open works, then send or receive the bytes and print the timings.
_PUNCH = r"""
import json, os, socket, sys, time
from proxystore.p2p.nat import decode_binding_response, encode_binding_request
coturn, local_port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
send = sys.argv[4] == "send"
host, port = coturn.rsplit(":", 1)

def stun_tcp():
    # One STUN binding over TCP from our fixed port (one message each way; a
    # short answer fits one read): the NAT maps this source port.
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("0.0.0.0", local_port))
    s.connect((host, int(port)))
    s.sendall(encode_binding_request(os.urandom(12)))
    decoded = decode_binding_response(s.recv(2048))
    s.close()
    if decoded is None:
        raise SystemExit("no mapped address")
    return decoded[1]

mine = stun_tcp()
print(json.dumps(mine), flush=True)
peer_ip, peer_port = json.loads(sys.stdin.readline())
start = time.perf_counter()
deadline = start + 10
while True:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("0.0.0.0", local_port))
    s.settimeout(0.5)
    try:
        s.connect((peer_ip, peer_port))
        break
    except OSError:
        s.close()
        if time.perf_counter() > deadline:
            raise SystemExit("simultaneous open failed")
        time.sleep(0.05)
s.settimeout(60)
connected = time.perf_counter() - start
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
start = time.perf_counter()
if send:
    block = b"x" * (1 << 20)
    left = size
    while left:
        n = s.send(block[: min(left, len(block))])
        left -= n
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
else:
    got = 0
    buf = bytearray(1 << 20)
    while got < size:
        n = s.recv_into(buf)
        if not n:
            break
        got += n
    s.sendall(b"k")
    assert got == size, got
elapsed = time.perf_counter() - start
print(json.dumps({"connect": connected, "seconds": elapsed}), flush=True)
"""


def run_prototype(size: int) -> dict[str, float]:
    """TCP simultaneous open between the two cone-NATed hosts; MB/s of one stream."""
    import subprocess

    with netns.network("punch") as network:
        sites = netns.build_sites(network, ["cone", "cone"])
        coturn = netns.start_coturn(sites.internet)  # answers STUN over TCP too
        one, two = sites.sites
        for site in (one, two):
            # A router that drops unsolicited TCP as it drops UDP (a stealth home
            # router). The harness's routers answer a SYN to a closed port with a
            # reset, which would abort the other side's simultaneous open.
            site.router.iptables(
                "-A", "INPUT", "-i", "wan", "-p", "tcp",
                "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP",
            )  # fmt: skip
        target = f"{coturn.address}:{coturn.port}"
        procs = []
        for site, role in ((one, "send"), (two, "recv")):
            procs.append(
                site.host.run(
                    [sys.executable, "-c", _PUNCH, target, "40000", str(size), role],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
            )
        addresses = []
        for proc in procs:
            assert proc.stdout is not None
            addresses.append(proc.stdout.readline())
        for proc, peer in zip(procs, reversed(addresses), strict=True):
            assert proc.stdin is not None
            proc.stdin.write(peer)
            proc.stdin.flush()
        results = []
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            proc.wait(timeout=120)
            if not line:
                raise RuntimeError(f"prototype side exited with {proc.returncode}")
            results.append(json.loads(line))
        seconds = max(r["seconds"] for r in results)
        return {
            "connect": max(r["connect"] for r in results),
            "seconds": seconds,
            "MB/s": size / seconds / 1e6,
        }


def _best(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = rows[0].keys()
    out = {}
    for key in keys:
        values = [r[key] for r in rows]
        out[key] = max(values) if key.endswith("MB/s") else min(values)
    out["first get (median)"] = statistics.median(r["first get"] for r in rows)
    out["large MB/s (median)"] = statistics.median(r["large MB/s"] for r in rows)
    return out


def measure(
    rounds: int,
    large: int,
    topologies: list[str],
    reference: bool,
    prototype: bool,
) -> dict[str, Any]:
    """Return ``{"seconds": {side: {topology: row}}, "ratios": {...}}``."""
    sides = ["ours", "theirs"] if reference else ["ours"]
    raw: dict[str, dict[str, list[dict[str, float]]]] = {
        side: {t: [] for t in topologies} for side in sides
    }
    errors: dict[str, str] = {}
    for _ in range(rounds):
        for topology in topologies:
            for side in sides:
                try:
                    row = run_once(topology, large, reference=side == "theirs")
                except (RuntimeError, OSError) as exc:
                    errors[f"{side} {topology}"] = str(exc)[-600:]
                    continue
                raw[side][topology].append(row)
    table = {
        side: {t: _best(rows) for t, rows in by_topology.items() if rows}
        for side, by_topology in raw.items()
    }
    ratios: dict[str, float] = {}
    for topology in topologies:
        ours = table["ours"].get(topology)
        theirs = table.get("theirs", {}).get(topology)
        if ours is None or theirs is None:
            continue
        ratios[f"{topology} set-up (first get) ours/theirs"] = (
            ours["first get"] / theirs["first get"]
        )
        ratios[f"{topology} 10 KB get ours/theirs"] = (
            ours["10 KB get"] / theirs["10 KB get"]
        )
        ratios[f"{topology} throughput ours/theirs"] = (
            ours["large MB/s"] / theirs["large MB/s"]
        )
        ratios[f"{topology} throughput ours/theirs (medians)"] = (
            ours["large MB/s (median)"] / theirs["large MB/s (median)"]
        )
        ratios[f"{topology} start ours/theirs"] = ours["start"] / theirs["start"]
    result: dict[str, Any] = {
        "large_bytes": large,
        "rounds": rounds,
        "seconds": table,
        "large MB/s per round": {
            side: {t: [r["large MB/s"] for r in rows] for t, rows in by.items()}
            for side, by in raw.items()
        },
        "ratios": ratios,
    }
    if errors:
        result["errors"] = errors
    if prototype:
        proto = run_prototype(max(large, 100_000_000))
        result["prototype"] = proto
        cone = table["ours"].get("cone")
        if cone is not None:
            ratios["prototype MB/s / ours aiortc MB/s"] = (
                proto["MB/s"] / cone["large MB/s"]
            )
    return result


def main(argv: list[str] | None = None) -> None:
    """Print the table (or JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--large", type=int, default=10_000_000)
    parser.add_argument("--topologies", default="cone,turn")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--prototype", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    why = netns.unavailable()
    if why is not None:
        raise SystemExit(f"cannot build the network: {why}")
    result = measure(
        args.rounds,
        args.large,
        args.topologies.split(","),
        not args.no_reference,
        args.prototype,
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for side, by_topology in result["seconds"].items():
        for topology, row in by_topology.items():
            cells = ", ".join(f"{k} {v:.4g}" for k, v in row.items())
            print(f"{side:6} {topology:5} {cells}")
    for name, value in result["ratios"].items():
        print(f"{name}: {value:.3g}")
    if "prototype" in result:
        print("prototype (TCP simultaneous open):", result["prototype"])
    for name, error in result.get("errors", {}).items():
        print(f"ERROR {name}: {error}")


if __name__ == "__main__":
    main()
