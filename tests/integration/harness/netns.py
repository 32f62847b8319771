"""Small networks of Linux network namespaces: NATed sites, an internet, a cluster.

Everything here needs root and ``ip netns`` (iproute2) with ``iptables``; coturn's
``turnserver`` for STUN/TURN. :func:`unavailable` says why a network cannot be built
(tests skip with that reason, or fail under ``CI=true``).

Building blocks:

* :class:`Network` — owns namespaces, the processes started in them, and the links
  between them; ``close()`` (or leaving its ``with`` block) kills every process in
  every namespace it made and deletes the namespaces (their interfaces go with
  them). Names start with ``pstnet-<pid>-``; :func:`sweep` deletes those of dead
  owners (a crashed run), and an ``atexit`` hook closes what this process left open.
* :class:`Namespace` — one namespace: :meth:`Namespace.run` starts a process in it
  (``ip netns exec``, its own process group, tracked by the network),
  :meth:`Namespace.python` runs Python code of this venv in it to completion.

Topologies:

* :func:`build_sites` — an "internet" namespace with two public addresses on a
  bridge, and one site per requested :data:`NatKind`: a router namespace (WAN on
  the internet bridge, NAT made with iptables) and a host namespace behind it.
  The internet knows no route to any private subnet, so it cannot reach a site host
  unless the site's NAT lets it (and every router drops new connections forwarded
  from its WAN side, so adding such a route does not help either). Routers send
  everything else to the internet, which swallows what it cannot deliver (its
  default route points at a neighbour that does not exist, inside the namespace):
  like the real internet, a packet to another site's private address is lost,
  not refused. Nothing leaves the namespaces.
* :func:`build_cluster` — two "hosts" joined directly by one veth (no NAT).
* :func:`start_coturn` — coturn as STUN and TURN server (long-term credentials).
  Why TURN once failed here with "438 Wrong nonce, then 400": coturn ends an
  allocation when a send from its relay socket fails, and with no default route
  relaying to a peer's private host candidate failed at once with ENETUNREACH. The
  client's next request then opened a new, allocation-less session (438 for the
  old nonce, 400 for the ChannelBind/data after it). With the swallowing default
  route those sends succeed and TURN works (coturn's ``denied-peer-ip`` for
  private ranges would be the other way out).
* :func:`start_relay`, :func:`start_endpoint` — ``proxystore-relay`` in the
  internet and endpoints on site hosts, through their CLIs (another install's
  programs for comparisons); :func:`count_forwarded` / :func:`forwarded` count
  what a router forwards to a destination (which path the data took).
* ``sch_netem`` (added delay) is not in this kernel: nothing here emulates
  latency.

NAT kinds (router iptables rules, ``wan`` the router's internet side):

* ``"cone"`` — ``MASQUERADE`` plus ``-A INPUT -i wan -p udp -m conntrack --ctstate
  NEW -j DROP``, like a home router. An unsolicited packet is addressed to the
  router's own address (no conntrack entry translates it), so it traverses INPUT,
  not FORWARD; dropping it there keeps its conntrack entry unconfirmed, and the
  host's own packet to that peer later gets the same mapped port (hole punching
  works). Replies to mappings are de-NATed in PREROUTING and go through FORWARD, so
  they are untouched by the rule.
* ``"masquerade"`` — plain ``MASQUERADE``: an unsolicited packet that reaches the
  router first creates a conntrack entry on the mapped port, and the host's own
  packet to that peer is then remapped to another port (Linux port clash): hole
  punching fails when both sides send at once.
* ``"symmetric"`` — ``MASQUERADE --random-fully``: each destination gets another
  mapped port; only TURN gets through.

Addresses: the internet bridge is ``100.64.<w>.0/24`` (servers on ``.1`` and ``.2``,
routers from ``.11``), site ``i``'s LAN is ``10.<w>.<i>.0/24`` (router ``.1``, host
``.2``), the cluster link ``10.<w>.200.0/24``; ``w`` derives from the xdist worker.
Each namespace has its own addresses and ports, so fixed ports are safe.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

__all__ = [
    "PREFIX",
    "Cluster",
    "Coturn",
    "Internet",
    "Namespace",
    "NatKind",
    "Network",
    "NsEndpoint",
    "NsRelay",
    "Site",
    "Sites",
    "build_cluster",
    "build_sites",
    "console_script",
    "count_forwarded",
    "forwarded",
    "ice_server",
    "network",
    "start_coturn",
    "start_endpoint",
    "start_relay",
    "stun_mapped",
    "sweep",
    "unavailable",
    "wait_tcp",
    "worker_index",
]

#: Every namespace we create is named ``pstnet-<owner pid>-<n>-<role>``.
PREFIX = "pstnet-"

NatKind = Literal["cone", "masquerade", "symmetric"]

_ROOT = Path(__file__).resolve().parents[3]
_open_networks: set[Network] = set()
_lock = threading.Lock()


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", *args], capture_output=True, text=True, check=check, timeout=180
    )


def unavailable() -> str | None:
    """Return why no network can be built here, or ``None`` when one can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for program, package in (
        ("ip", "iproute2"),
        ("iptables", "iptables"),
        ("turnserver", "coturn"),
    ):
        if shutil.which(program) is None:
            return f"{program} is not installed (apt-get install {package})"
    name = f"{PREFIX}{os.getpid()}-probe"
    try:
        made = _ip("netns", "add", name, check=False)
        if made.returncode != 0:
            return f"cannot create a network namespace: {made.stderr.strip()}"
        nat = subprocess.run(
            ["ip", "netns", "exec", name, "iptables", "-t", "nat", "-L", "-n"],
            capture_output=True,
            text=True,
            check=False,
        )
        if nat.returncode != 0:
            return f"iptables NAT is unavailable: {nat.stderr.strip()}"
    finally:
        _ip("netns", "del", name, check=False)
    return None


def worker_index() -> int:
    """The xdist worker number (``gw3`` is 3; 0 without xdist), in 0..199."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    digits = "".join(c for c in worker if c.isdigit())
    return int(digits or 0) % 200


def _pid_alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _kill_namespace_processes(name: str) -> None:
    """SIGKILL every process whose network namespace is ``name`` (and reap ours)."""
    for _ in range(50):
        listed = _ip("netns", "pids", name, check=False)
        pids = [int(p) for p in listed.stdout.split() if p.isdigit()]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)


def _delete_namespace(name: str) -> None:
    _kill_namespace_processes(name)
    _ip("netns", "del", name, check=False)


def sweep(*, everything: bool = False) -> list[str]:
    """Delete our namespaces whose owner process is gone; return their names.

    Args:
        everything: Delete those of live owners too (a manual clean-up).
    """
    listed = _ip("netns", "list", check=False).stdout.split("\n")
    removed = []
    for line in listed:
        name = line.split(" ", 1)[0]
        if not name.startswith(PREFIX):
            continue
        owner = name[len(PREFIX) :].split("-", 1)[0]
        if not everything and owner.isdigit() and _pid_alive(int(owner)):
            continue
        _delete_namespace(name)
        removed.append(name)
    return removed


@atexit.register
def _close_open_networks() -> None:
    for network in list(_open_networks):
        network.close()


@dataclass(eq=False)
class Namespace:
    """One network namespace of a :class:`Network`."""

    name: str
    network: Network

    def ip(self, *args: str) -> str:
        """Run ``ip -n NAME ARGS...``; return its output (raises on failure)."""
        return _ip("-n", self.name, *args).stdout

    def check(self, *argv: str) -> str:
        """Run ``argv`` in this namespace to completion; return its stdout.

        Raises:
            subprocess.CalledProcessError: If it exits with a non-zero status.
        """
        return subprocess.run(
            ["ip", "netns", "exec", self.name, *argv],
            capture_output=True,
            text=True,
            check=True,
            # Generous: on a loaded machine even `iptables -L` once took > 60 s.
            timeout=180,
        ).stdout

    def run(
        self,
        argv: Sequence[str],
        *,
        log: Path | None = None,
        stdin: int | IO[Any] | None = subprocess.DEVNULL,
        stdout: int | IO[Any] | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` in this namespace, in its own process group.

        The network kills it (and everything else in the namespace) on close.

        Args:
            argv: Program and arguments.
            log: File that receives stdout and stderr (appended); stderr goes to
                ``stdout`` (or is inherited) without one.
            stdin: As for :class:`subprocess.Popen`.
            stdout: As for :class:`subprocess.Popen` when ``log`` is not given.
            env: Extra environment variables (added to this process's).
            cwd: Working directory (default: the repository root, so
                ``python -m tests...`` works).
        """
        full_env = {**os.environ, **(env or {})}
        command = ["ip", "netns", "exec", self.name, *argv]
        if log is not None:
            with log.open("ab") as out:
                process = subprocess.Popen(
                    command,
                    stdin=stdin,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=full_env,
                    cwd=cwd or _ROOT,
                    start_new_session=True,
                )
        else:
            process = subprocess.Popen(
                command,
                stdin=stdin,
                stdout=stdout,
                env=full_env,
                cwd=cwd or _ROOT,
                start_new_session=True,
            )
        self.network.processes.append(process)
        return process

    def python(
        self,
        code: str,
        *args: str,
        input: bytes | None = None,
        timeout: float = 120,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run ``code`` with this venv's Python in this namespace, to completion.

        ``code`` sees ``args`` as ``sys.argv[1:]``; the repository root is the
        working directory (``tests`` is importable). The result is not checked:
        assert on ``returncode``, ``stdout`` and ``stderr`` (both captured).
        A run cut short by ``timeout`` is killed with everything it started.

        Raises:
            subprocess.TimeoutExpired: If it runs longer than ``timeout``.
        """
        return subprocess.run(
            ["ip", "netns", "exec", self.name, sys.executable, "-c", code, *args],
            input=input,
            capture_output=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
            cwd=_ROOT,
            check=False,
            start_new_session=True,
        )

    def link_up(self, ifname: str, up: bool = True) -> None:
        """Bring interface ``ifname`` of this namespace up (or down)."""
        self.ip("link", "set", ifname, "up" if up else "down")

    def iptables(self, *args: str) -> None:
        """Run ``iptables ARGS...`` in this namespace."""
        self.check("iptables", *args)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
    # The leader may be gone while others of its group live on.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


class Network:
    """Namespaces, links and processes, all removed by :meth:`close`.

    Args:
        tag: A short word in the namespace names (for people reading
            ``ip netns list``).
    """

    _count = 0

    def __init__(self, tag: str = "net") -> None:
        with _lock:
            Network._count += 1
            serial = Network._count
        self.base = f"{PREFIX}{os.getpid()}-{serial}-{tag}"
        self.namespaces: list[Namespace] = []
        self.processes: list[subprocess.Popen[bytes]] = []
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.base}-"))
        self.closed = False
        sweep()
        _open_networks.add(self)

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def namespace(self, role: str) -> Namespace:
        """Create a namespace (loopback up, forwarding off) named after ``role``."""
        ns = Namespace(f"{self.base}-{role}", self)
        _ip("netns", "add", ns.name)
        self.namespaces.append(ns)
        ns.ip("link", "set", "lo", "up")
        # IPv4 only: no link-local IPv6 candidates or duplicate-address waits.
        ns.check("sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1")
        ns.check("sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1")
        return ns

    def link(
        self,
        a: Namespace,
        a_if: str,
        b: Namespace,
        b_if: str,
        a_address: str | None = None,
        b_address: str | None = None,
    ) -> None:
        """Join ``a`` and ``b`` by a veth pair (``a_if`` in ``a``, ``b_if`` in ``b``).

        The pair is created inside ``a`` (its names never exist in the root
        namespace); addresses are CIDR (``10.0.0.1/24``), both ends are brought up.
        """
        a.ip("link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b.name)
        for ns, ifname, address in ((a, a_if, a_address), (b, b_if, b_address)):
            if address is not None:
                ns.ip("addr", "add", address, "dev", ifname)
            ns.ip("link", "set", ifname, "up")

    def close(self) -> None:
        """Kill every process, delete every namespace and the work directory."""
        if self.closed:
            return
        self.closed = True
        for process in reversed(self.processes):
            _kill_group(process)
        for ns in reversed(self.namespaces):
            _delete_namespace(ns.name)
        shutil.rmtree(self.workdir, ignore_errors=True)
        _open_networks.discard(self)

    def leftovers(self) -> list[str]:
        """Names of this network's namespaces that still exist (empty after close)."""
        listed = _ip("netns", "list", check=False).stdout
        names = {line.split(" ", 1)[0] for line in listed.splitlines()}
        return [ns.name for ns in self.namespaces if ns.name in names]


# ------------------------------------------------------------------ topologies


@dataclass
class Internet:
    """The internet namespace: servers listen on ``address`` (and ``second``)."""

    ns: Namespace
    address: str
    second: str


@dataclass
class Site:
    """A host behind its own NAT router."""

    index: int
    nat: NatKind
    router: Namespace
    host: Namespace
    #: The host's private address (on the LAN).
    private: str
    #: The router's internet address (what the world sees).
    public: str


@dataclass
class Sites:
    """The result of :func:`build_sites`."""

    network: Network
    internet: Internet
    sites: list[Site] = field(default_factory=list)


def _prefix16() -> str:
    return f"10.{worker_index() + 1}"


def build_sites(network: Network, nats: Sequence[NatKind]) -> Sites:
    """An internet namespace and one NATed site per entry of ``nats``."""
    w = worker_index()
    inet = network.namespace("inet")
    inet.ip("link", "add", "br0", "type", "bridge")
    internet = Internet(inet, f"100.64.{w}.1", f"100.64.{w}.2")
    inet.ip("addr", "add", f"{internet.address}/24", "dev", "br0")
    inet.ip("addr", "add", f"{internet.second}/24", "dev", "br0")
    inet.ip("link", "set", "br0", "up")
    # Packets to addresses nobody here has (a peer's private host candidate) are
    # swallowed, as the real internet does, instead of failing the send with
    # ENETUNREACH (coturn ends an allocation whose relay socket got that error).
    # (No dummy interface in this kernel: a veth pair inside the namespace whose
    # far end drops frames sent to a MAC address it does not have.)
    inet.ip("link", "add", "void", "type", "veth", "peer", "name", "voidend")
    for ifname in ("void", "voidend"):
        inet.ip("link", "set", ifname, "up")
    inet.ip("route", "add", "default", "via", "192.0.2.1", "dev", "void", "onlink")
    inet.ip(
        "neigh", "add", "192.0.2.1", "lladdr", "02:00:00:00:00:01",
        "dev", "void", "nud", "permanent",
    )  # fmt: skip
    result = Sites(network, internet)
    for i, nat in enumerate(nats, start=1):
        router = network.namespace(f"r{i}")
        host = network.namespace(f"h{i}")
        public = f"100.64.{w}.{10 + i}"
        lan = f"{_prefix16()}.{i}"
        network.link(router, "wan", inet, f"site{i}", f"{public}/24")
        inet.ip("link", "set", f"site{i}", "master", "br0")
        network.link(router, "lan", host, "eth0", f"{lan}.1/24", f"{lan}.2/24")
        host.ip("route", "add", "default", "via", f"{lan}.1")
        # Everything else goes to the internet (which swallows what it cannot
        # deliver): a packet to another site's private address gets no answer,
        # not a fast "unreachable" from this router.
        router.ip("route", "add", "default", "via", internet.address)
        router.check("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        masquerade = ["-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE"]
        if nat == "symmetric":
            masquerade.append("--random-fully")
        router.iptables(*masquerade)
        # Nothing from the internet opens a connection to the LAN (even with a
        # route to it): only replies to the hosts' own mappings pass.
        router.iptables(
            "-A", "FORWARD", "-i", "wan", "-m", "conntrack",
            "--ctstate", "NEW,INVALID", "-j", "DROP",
        )  # fmt: skip
        if nat == "cone":
            router.iptables(
                "-A", "INPUT", "-i", "wan", "-p", "udp",
                "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP",
            )  # fmt: skip
        result.sites.append(Site(i, nat, router, host, f"{lan}.2", public))
    return result


@dataclass
class Cluster:
    """Two hosts joined directly: ``a`` (``a_address``) and ``b`` (``b_address``).

    Each end of the link is called ``eth0``; ``a.link_up("eth0", False)`` makes
    host A vanish from B's point of view (packets are dropped, no reset is sent).
    """

    network: Network
    a: Namespace
    b: Namespace
    a_address: str
    b_address: str


def build_cluster(network: Network) -> Cluster:
    """Two host namespaces on one directly joined /24."""
    a = network.namespace("ca")
    b = network.namespace("cb")
    subnet = f"{_prefix16()}.200"
    network.link(a, "eth0", b, "eth0", f"{subnet}.1/24", f"{subnet}.2/24")
    return Cluster(network, a, b, f"{subnet}.1", f"{subnet}.2")


def count_forwarded(router: Namespace, name: str, *match: str) -> None:
    """Count packets the router forwards out of its WAN side matching ``match``.

    ``match`` are iptables matches (e.g. ``-d``, ``100.64.0.12``, ``-p``, ``udp``);
    the rule only counts (no target). Read the count with :func:`forwarded`.
    """
    router.iptables(
        "-A", "FORWARD", "-o", "wan", *match,
        "-m", "comment", "--comment", name,
    )  # fmt: skip


def forwarded(router: Namespace, name: str) -> tuple[int, int]:
    """``(packets, bytes)`` counted so far by the rule :func:`count_forwarded` named."""
    table = router.check("iptables", "-L", "FORWARD", "-v", "-n", "-x")
    for line in table.splitlines():
        if f"/* {name} */" in line:
            packets, size = line.split()[:2]
            return int(packets), int(size)
    raise KeyError(f"no counting rule {name!r} on {router.name}")


# ------------------------------------------------------------------ coturn


@dataclass
class Coturn:
    """A running coturn: STUN and TURN (UDP, long-term credentials) on ``address``."""

    address: str
    second: str
    port: int
    username: str
    password: str
    realm: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def stun_url(self) -> str:
        return f"stun:{self.address}:{self.port}"

    @property
    def turn_url(self) -> str:
        return f"turn:{self.address}:{self.port}?transport=udp"


def start_coturn(
    internet: Internet,
    *,
    port: int = 3478,
    username: str = "proxystore",
    password: str = "turn-secret",
    realm: str = "proxystore.test",
    extra: Sequence[str] = (),
) -> Coturn:
    """Start ``turnserver`` in the internet namespace, on both its addresses.

    Raises:
        RuntimeError: If ``turnserver`` is not installed, exits, or does not answer
            a STUN binding request within 10 s.
    """
    program = shutil.which("turnserver")
    if program is None:
        raise RuntimeError("turnserver is not installed (apt-get install coturn)")
    network = internet.ns.network
    workdir = network.workdir / f"coturn-{port}"
    workdir.mkdir()
    config = workdir / "turnserver.conf"
    lines = [
        f"listening-ip={internet.address}",
        f"listening-ip={internet.second}",
        f"relay-ip={internet.address}",
        f"listening-port={port}",
        "min-port=49152",
        "max-port=49999",
        f"realm={realm}",
        "lt-cred-mech",
        f"user={username}:{password}",
        "fingerprint",
        "no-tls",
        "no-dtls",
        "no-cli",
        "no-multicast-peers",
        f"userdb={workdir / 'turndb'}",
        f"pidfile={workdir / 'turnserver.pid'}",
        "log-file=stdout",
        "simple-log",
        *extra,
    ]
    config.write_text("\n".join(lines) + "\n")
    log = workdir / "turnserver.log"
    process = internet.ns.run([program, "-c", str(config)], log=log)
    coturn = Coturn(
        internet.address,
        internet.second,
        port,
        username,
        password,
        realm,
        process,
        log,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"turnserver exited with {process.returncode}: "
                + log.read_text()[-2000:]
            )
        probe = internet.ns.python(STUN_QUERY, f"{internet.address}:{port}", timeout=30)
        if probe.returncode == 0:
            return coturn
        time.sleep(0.1)
    raise RuntimeError(f"turnserver did not answer STUN: {log.read_text()[-2000:]}")


#: Python code: one UDP socket asks each ``host:port`` argument for its mapped
#: address (STUN binding); prints one ``ip:port`` line per server, in order.
STUN_QUERY = """
import os, socket, struct, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", int(os.environ.get("STUN_LOCAL_PORT", "0"))))
sock.settimeout(1.0)
for server in sys.argv[1:]:
    host, port = server.rsplit(":", 1)
    txid = os.urandom(12)
    for _ in range(5):
        sock.sendto(struct.pack("!HHI", 1, 0, 0x2112A442) + txid, (host, int(port)))
        try:
            data, _ = sock.recvfrom(2048)
        except TimeoutError:
            continue
        if data[8:20] == txid:
            break
    else:
        sys.exit(f"no STUN answer from {server}")
    pos = 20
    while pos + 4 <= len(data):
        kind, length = struct.unpack("!HH", data[pos : pos + 4])
        value = data[pos + 4 : pos + 4 + length]
        if kind == 0x0020:
            mapped_port = struct.unpack("!H", value[2:4])[0] ^ 0x2112
            raw = struct.unpack("!I", value[4:8])[0] ^ 0x2112A442
            print(f"{socket.inet_ntoa(struct.pack('!I', raw))}:{mapped_port}")
            break
        pos += 4 + length + (-length % 4)
    else:
        sys.exit(f"no XOR-MAPPED-ADDRESS from {server}")
"""


def stun_mapped(
    ns: Namespace, servers: Sequence[str], local_port: int = 0
) -> list[tuple[str, int]]:
    """The mapped ``(ip, port)`` that each STUN server sees for one socket of ``ns``.

    Raises:
        RuntimeError: If a server does not answer.
    """
    done = ns.python(
        STUN_QUERY, *servers, env={"STUN_LOCAL_PORT": str(local_port)}, timeout=60
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode(errors="replace")[-2000:])
    mapped = []
    for line in done.stdout.decode().split():
        host, port = line.rsplit(":", 1)
        mapped.append((host, int(port)))
    return mapped


@contextlib.contextmanager
def network(tag: str) -> Iterator[Network]:
    """A :class:`Network`, closed (even on error) when the block ends."""
    net = Network(tag)
    try:
        yield net
    finally:
        net.close()


# ------------------------------------------------------------ proxystore processes

#: Python code: wait until ``host:port`` accepts TCP connections (argv: host port
#: seconds); exit 1 if it does not in time.
_WAIT_TCP = """
import socket, sys, time
host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.02)
sys.exit(1)
"""


def wait_tcp(
    ns: Namespace,
    host: str,
    port: int,
    process: subprocess.Popen[bytes],
    timeout: float,
) -> None:
    """Wait until ``host:port`` accepts connections from ``ns``.

    Raises:
        RuntimeError: If ``process`` exits first or nothing listens in time.
    """
    done = ns.python(_WAIT_TCP, host, str(port), str(timeout), timeout=timeout + 30)
    if done.returncode != 0 or process.poll() is not None:
        raise RuntimeError(
            f"{process.args!r} did not listen on {host}:{port} within {timeout} s "
            f"(exit code {process.poll()})"
        )


def console_script(name: str) -> str:
    """Path of a console script installed next to this interpreter."""
    path = shutil.which(name, path=os.path.dirname(sys.executable))
    if path is None:
        raise RuntimeError(f"console script {name} is not installed")
    return path


@dataclass
class NsRelay:
    """A ``proxystore-relay`` in the internet namespace."""

    address: str
    port: int
    process: subprocess.Popen[bytes]
    log_dir: Path

    @property
    def url(self) -> str:
        return f"ws://{self.address}:{self.port}"


def start_relay(
    internet: Internet, *, port: int = 8700, program: str | None = None
) -> NsRelay:
    """Start a relay on the internet's first address and wait until it listens.

    Args:
        internet: Where the relay runs.
        port: Its port (namespaces have their own ports: no clash between tests).
        program: Another install's ``proxystore-relay`` (e.g. the reference's).
    """
    log_dir = internet.ns.network.workdir / f"relay-{port}"
    log_dir.mkdir()
    process = internet.ns.run(
        [
            program or console_script("proxystore-relay"),
            "--host",
            internet.address,
            "--port",
            str(port),
            "--log-dir",
            str(log_dir),
        ],
        log=log_dir / "relay.out",
    )
    wait_tcp(internet.ns, internet.address, port, process, timeout=30)
    return NsRelay(internet.address, port, process, log_dir)


@dataclass
class NsEndpoint:
    """A ``proxystore-endpoint start NAME --no-detach`` in a namespace."""

    ns: Namespace
    name: str
    home: Path
    host: str
    port: int
    uuid: str
    process: subprocess.Popen[bytes]
    #: Seconds from ``Popen`` until its port accepted a connection.
    started_in: float

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log(self) -> str:
        """The endpoint's log file and its captured output."""
        texts = []
        for path in (self.home / self.name / "log.txt", self.home / f"{self.name}.out"):
            if path.exists():
                texts.append(path.read_text(errors="replace"))
        return "\n".join(texts)


def ice_server(
    url: str, username: str | None = None, credential_env: str | None = None
) -> dict[str, Any]:
    """One ``[[relay.ice_servers]]`` table (the TURN credential by reference)."""
    table: dict[str, Any] = {"urls": url}
    if username is not None:
        table["username"] = username
    if credential_env is not None:
        table["credential_env"] = credential_env
    return table


def start_endpoint(
    ns: Namespace,
    host: str,
    name: str,
    relay: NsRelay,
    *,
    ice_servers: Sequence[dict[str, Any]] | None = (),
    env: dict[str, str] | None = None,
    port: int = 8765,
    direct: bool = True,
    request_timeout: float | None = None,
    direct_networks: Sequence[str] | None = None,
    program: str | None = None,
    ready_timeout: float = 60,
) -> NsEndpoint:
    """Configure an endpoint with the CLI and start it in ``ns`` on ``host:port``.

    Args:
        ns: The namespace of the endpoint's host.
        host: Its address there (what it binds and advertises).
        name: Endpoint name (its home is a fresh directory of the network).
        relay: The relay it registers with.
        ice_servers: ``[[relay.ice_servers]]`` tables (see :func:`ice_server`);
            empty: host candidates only; ``None``: unset (the endpoint's public
            defaults, which cannot be resolved in these namespaces).
        env: Extra environment (e.g. the TURN credential's variable).
        port: Its port.
        direct: ``[peering] direct``.
        request_timeout: ``[peering] request_timeout`` (the default when ``None``).
        direct_networks: ``[peering] direct_networks`` (unset when ``None``).
        program: Another install's ``proxystore-endpoint`` (it must read the same
            ``config.toml`` keys; unknown tables are written only when set).
        ready_timeout: Seconds the endpoint may take to listen.
    """
    import tomllib

    import tomli_w

    home = ns.network.workdir / f"home-{name}"
    home.mkdir()
    full_env = {"PROXYSTORE_HOME": str(home), **(env or {})}
    script = program or console_script("proxystore-endpoint")
    ns.check(
        "env",
        f"PROXYSTORE_HOME={home}",
        script,
        "configure",
        name,
        "--host",
        host,
        "--port",
        str(port),
        "--relay-address",
        relay.url,
        "--no-relay-auth",
    )
    path = home / name / "config.toml"
    config = tomllib.loads(path.read_text())
    if ice_servers is None:
        config["relay"].pop("ice_servers", None)
    else:
        config["relay"]["ice_servers"] = list(ice_servers)
    peering = {
        key: value
        for key, value in (
            ("direct", None if direct else False),
            ("request_timeout", request_timeout),
            (
                "direct_networks",
                None if direct_networks is None else [*direct_networks],
            ),
        )
        if value is not None
    }
    if peering:
        config.setdefault("peering", {}).update(peering)
    path.write_text(tomli_w.dumps(config))
    start = time.monotonic()
    process = ns.run(
        [script, "start", name, "--no-detach"],
        env=full_env,
        log=home / f"{name}.out",
    )
    wait_tcp(ns, host, port, process, timeout=ready_timeout)
    return NsEndpoint(
        ns,
        name,
        home,
        host,
        port,
        str(config["uuid"]),
        process,
        time.monotonic() - start,
    )
