"""Security costs: signed payloads, restricted deserialization and Redis over TLS.

Times ``Store.put`` + ``Store.get`` (cache off) of a ``bytes`` object:

* signing: a store with ``auth_key_id`` (a MAC on put, verified on get; HMAC-SHA256
  and keyed BLAKE3) against the same store without, on the Local, File and Redis
  connectors, 1 MB and 100 MB;
* TLS: our ``RedisConnector`` to one ``redis-server`` (``--requirepass``) through its
  TLS port against its plain port, 1 MB and 100 MB; and raw redis-py ``SET``+``GET``
  through the same two ports (the floor: what TLS costs any client).

The ``floor`` column of the signing rows is the bare cost of the two MAC passes
(sign + verify, with the row's algorithm) over the payload, plus 1, as a ratio to the
unsigned put+get: no implementation of signing can do better; ``vs floor`` is the
signed ratio over that floor (1.0 = signing costs its MAC passes and nothing more).

Restricted deserialization (``RestrictedDeserializer``) of a 10 000-element list of
allowed objects (dataclass instances; datetimes), and of one dataclass, against plain
``pickle.loads`` of the same pickle stream (the floor: no restriction at all).

Each pair alternates block by block (rotating who goes first) and reports the
median over rounds. Neither feature exists in the reference release, so the ratios
are ours/ours (with/without); the reference's plain Redis put+get is timed too, for
scale. The machine may be shared with other work: medians, not best runs.

    uv run --frozen python -m scripts.bench.security [--rounds N] [--json]
        [--only signing,restricted,tls]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import functools
import importlib
import json
import os
import pickle
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from scripts.bench import _refvenv
from scripts.bench.redis import _fmt, _free_port

SIZES = {"1 MB": 1_000_000, "100 MB": 100_000_000}
PARTS = ("signing", "restricted", "tls")
ITEMS = 10_000
KEY_VAR = "PS_BENCH_HMAC_KEY"
PASSWORD_VAR = "PS_BENCH_REDIS_PASSWORD"

REFERENCE = r"""
import json, sys, time, uuid
from proxystore.connectors.redis import RedisConnector
from proxystore.store import Store

port, size, reps, rounds = (int(a) for a in sys.argv[1:5])
obj = bytes(size)
times = []
with Store("bench-ref-" + uuid.uuid4().hex, RedisConnector("127.0.0.1", port),
           cache_size=0) as store:
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(reps):
            key = store.put(obj)
            store.get(key)
            store.evict(key)
        times.append((time.perf_counter() - start) / reps)
print(json.dumps(sorted(times)[len(times) // 2]))
"""


def _reps(size: int) -> int:
    return max(2, min(40, 200_000_000 // size))


def _median_interleaved(
    ops: dict[str, Callable[[], object]], reps: int, rounds: int
) -> dict[str, float]:
    """Median over ``rounds`` of the mean time of ``reps`` calls, ops alternating."""
    samples: dict[str, list[float]] = {name: [] for name in ops}
    order = list(ops.items())
    for _ in range(rounds):
        order = order[1:] + order[:1]
        for name, op in order:
            start = time.perf_counter()
            for _ in range(reps):
                op()
            samples[name].append((time.perf_counter() - start) / reps)
    return {name: statistics.median(times) for name, times in samples.items()}


@contextlib.contextmanager
def secure_redis() -> Iterator[tuple[int, int, Path]]:
    """Run redis-server with a password, a plain and a TLS port; yield both + CA."""
    from tests.integration.harness.secure_redis import make_tls_files

    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server not found (apt-get install redis-server)")
    workdir = Path(tempfile.mkdtemp(prefix="ps-bench-tls-"))
    files = make_tls_files(workdir)
    plain, tls = _free_port(), _free_port()
    os.environ[PASSWORD_VAR] = secrets.token_hex(16)
    process = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(plain), "--tls-port", str(tls),
         "--tls-cert-file", str(files.server_cert), "--tls-key-file",
         str(files.server_key), "--tls-ca-cert-file", str(files.ca),
         "--tls-auth-clients", "no", "--requirepass", os.environ[PASSWORD_VAR],
         "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        from tests.integration.harness.redis import redis_command
        from tests.integration.harness.servers import ServerAddress

        for _ in range(200):
            with contextlib.suppress(OSError):
                if redis_command(ServerAddress("127.0.0.1", plain), "PING"):
                    break
            time.sleep(0.05)
        yield plain, tls, files.ca
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def _two_macs(algorithm: str, obj: bytes) -> Callable[[], object]:
    """Two bare MAC passes over ``obj`` (what sign + verify cannot avoid)."""
    from proxystore.serialize._auth import _mac

    key = bytes(32)
    return lambda: (_mac(algorithm, key, obj), _mac(algorithm, key, obj))


def _raw_tls_ratio(plain: int, tls: int, ca: Path, obj: bytes, rounds: int) -> float:
    """Raw redis-py SET+GET over TLS / over plain TCP, same server, interleaved."""
    import redis

    password = os.environ[PASSWORD_VAR]
    clients = {
        "plain": redis.Redis(port=plain, password=password),
        "tls": redis.Redis(port=tls, password=password, ssl=True, ssl_ca_certs=str(ca)),
    }
    try:

        def op(client: Any) -> Callable[[], object]:
            return lambda: (client.set("bench", obj), client.get("bench"))

        got = _median_interleaved(
            {name: op(c) for name, c in clients.items()}, _reps(len(obj)), rounds
        )
    finally:
        for client in clients.values():
            client.close()
    return got["tls"] / got["plain"]


def _put_get(store: Any, obj: bytes) -> Callable[[], None]:
    def op() -> None:
        key = store.put(obj)
        store.get(key)
        store.evict(key)

    return op


@dataclasses.dataclass
class BenchPoint:
    """An application dataclass, allowed by name in the restricted rows."""

    x: int
    y: float
    label: str


def _restricted_rows(rounds: int) -> dict[str, dict[str, float]]:
    """Restricted deserialization vs plain ``pickle.loads`` of the same stream."""
    from proxystore.serialize import RestrictedDeserializer, serialize

    # Imported by name, so the class pickles as scripts.bench.security.BenchPoint
    # even when this file runs as __main__.
    point = importlib.import_module("scripts.bench.security").BenchPoint
    path = f"{point.__module__}.{point.__qualname__}"
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    cases: dict[str, Any] = {
        f"{ITEMS // 1000}k dataclasses": [
            point(i, i / 3, f"p{i}") for i in range(ITEMS)
        ],
        f"{ITEMS // 1000}k datetimes": [
            start + datetime.timedelta(seconds=i) for i in range(ITEMS)
        ],
        "1 dataclass": point(1, 0.5, "one"),
    }
    restricted = RestrictedDeserializer([path])
    table: dict[str, dict[str, float]] = {}
    for label, value in cases.items():
        payload = serialize(value)
        stream = pickle.dumps(value, protocol=5)
        assert restricted(payload) == value
        reps = 2000 if label.startswith("1 ") else 20
        got = _median_interleaved(
            {
                "without": functools.partial(pickle.loads, stream),
                "with": functools.partial(restricted, payload),
            },
            reps,
            rounds,
        )
        table[f"restricted {label}"] = {
            "without_s": got["without"],
            "with_s": got["with"],
        }
    return table


def _signing_rows(
    rounds: int, makers: dict[str, Callable[[], Any]]
) -> dict[str, dict[str, float]]:
    from proxystore.store import Store

    table: dict[str, dict[str, float]] = {}
    for kind, make in makers.items():
        with (
            Store(f"plain-{uuid.uuid4().hex}", make(), cache_size=0) as bare,
            Store(
                f"hmac-{uuid.uuid4().hex}",
                make(),
                cache_size=0,
                auth_key_id=f"env:{KEY_VAR}",
            ) as hmac_store,
            Store(
                f"blake3-{uuid.uuid4().hex}",
                make(),
                cache_size=0,
                auth_key_id=f"env:{KEY_VAR}",
                auth_algorithm="blake3",
            ) as blake3_store,
        ):
            for label, size in SIZES.items():
                obj = os.urandom(size)
                # The MAC passes run interleaved with the stores, so the floor
                # sees the same machine load as the rows it bounds.
                got = _median_interleaved(
                    {
                        "without": _put_get(bare, obj),
                        "hmac-sha256": _put_get(hmac_store, obj),
                        "blake3": _put_get(blake3_store, obj),
                        "mac hmac-sha256": _two_macs("hmac-sha256", obj),
                        "mac blake3": _two_macs("blake3", obj),
                    },
                    _reps(size),
                    rounds,
                )
                for algorithm in ("hmac-sha256", "blake3"):
                    table[f"{algorithm} {kind} {label}"] = {
                        "without_s": got["without"],
                        "with_s": got[algorithm],
                        "floor": got[f"mac {algorithm}"] / got["without"],
                    }
    return table


def _tls_rows(
    rounds: int, plain: int, tls: int, ca: Path, make_plain: Callable[[], Any]
) -> dict[str, dict[str, float]]:
    from proxystore.connectors.redis import RedisConnector
    from proxystore.store import Store

    table: dict[str, dict[str, float]] = {}
    tls_connector = RedisConnector(
        "127.0.0.1", tls, ssl=True, ssl_ca_certs=str(ca), password_env=PASSWORD_VAR
    )
    with (
        Store(f"p-{uuid.uuid4().hex}", make_plain(), cache_size=0) as bare,
        Store(f"t-{uuid.uuid4().hex}", tls_connector, cache_size=0) as secured,
    ):
        for label, size in SIZES.items():
            obj = os.urandom(size)
            got = _median_interleaved(
                {"without": _put_get(bare, obj), "with": _put_get(secured, obj)},
                _reps(size),
                rounds,
            )
            table[f"TLS redis {label}"] = {
                "without_s": got["without"],
                "with_s": got["with"],
                "raw_ratio": _raw_tls_ratio(plain, tls, ca, obj, rounds),
            }
    # The reference (no AUTH support): its own plain server, for scale.
    from scripts.bench.redis import redis_server

    with redis_server() as port:
        for label, size in SIZES.items():
            theirs = _refvenv.run_json(
                REFERENCE, str(port), str(size), str(_reps(size)), str(rounds)
            )
            table[f"TLS redis {label}"]["theirs_plain_s"] = float(theirs)
    return table


def measure(rounds: int, parts: tuple[str, ...] = PARTS) -> dict[str, dict[str, float]]:
    """Return rows ``case -> {without_s, with_s, ratio, ...}`` for the chosen parts."""
    from proxystore.connectors.file import FileConnector
    from proxystore.connectors.local import LocalConnector
    from proxystore.connectors.redis import RedisConnector

    os.environ[KEY_VAR] = secrets.token_hex(32)
    table: dict[str, dict[str, float]] = {}
    if "restricted" in parts:
        table |= _restricted_rows(rounds)
    if "signing" in parts or "tls" in parts:
        with (
            secure_redis() as (plain, tls, ca),
            tempfile.TemporaryDirectory(prefix="ps-bench-sec-") as tmp,
        ):
            makers: dict[str, Callable[[], Any]] = {
                "local": LocalConnector,
                "file": lambda: FileConnector(os.path.join(tmp, uuid.uuid4().hex)),
                "redis": lambda: RedisConnector(
                    "127.0.0.1", plain, password_env=PASSWORD_VAR
                ),
            }
            if "signing" in parts:
                table |= _signing_rows(rounds, makers)
            if "tls" in parts:
                table |= _tls_rows(rounds, plain, tls, ca, makers["redis"])
    for row in table.values():
        row["ratio"] = row["with_s"] / row["without_s"]
        if "floor" in row:
            row["vs_floor"] = row["ratio"] / (1 + row["floor"])
    return table


def main(argv: list[str] | None = None) -> None:
    """Print the table (or JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--only",
        default=",".join(PARTS),
        help=f"comma-separated parts to run, of {', '.join(PARTS)} (default: all)",
    )
    args = parser.parse_args(argv)
    parts = tuple(part for part in args.only.split(",") if part)
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {PARTS}")
    table = measure(args.rounds, parts)
    if args.json:
        print(json.dumps(table, indent=2))
        return
    header = (
        f"{'case':<28}{'without':>12}{'with':>12}{'with/without':>14}"
        f"{'floor':>8}{'vs floor':>10}{'theirs plain':>14}"
    )
    print(header)
    print("-" * len(header))
    for case, row in table.items():
        theirs = row.get("theirs_plain_s")
        floor = row.get("floor", row.get("raw_ratio", 0.0) - 1)
        floor_text = "" if floor == -1 else f"{1 + floor:.3f}"
        vs_floor = row.get("vs_floor")
        print(
            f"{case:<28}{_fmt(row['without_s']):>12}{_fmt(row['with_s']):>12}"
            f"{row['ratio']:>14.3f}{floor_text:>8}"
            f"{'' if vs_floor is None else f'{vs_floor:.3f}':>10}"
            f"{'' if theirs is None else _fmt(theirs):>14}"
        )
    print(
        "(signing: with = Store(auth_key_id=...), floor = 1 + two bare MAC passes"
        " / without,\n vs floor = with/without / floor; restricted: without ="
        " pickle.loads of the same stream, floor column unused;\n TLS: with = the"
        " TLS port, floor = raw redis-py TLS/plain)"
    )


if __name__ == "__main__":
    main()
