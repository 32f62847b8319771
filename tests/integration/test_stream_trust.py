"""A writer to a stream's broker attacks a StreamConsumer (real redis-server).

Each test is one proof of the security review (issue 23, finding 2), written as
the attack: the attacker pushes raw events onto the Redis list the consumer
reads (the queue shim), with nothing but write access to the broker. The secret,
clear and hijack attacks fail whether or not the consumer has a trust policy;
code execution through inline or stored objects fails with a policy.
"""

from __future__ import annotations

import os
import pathlib
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from proxystore.connectors.exceptions import ConnectorError
from proxystore.connectors.file import FileConnector
from proxystore.connectors.redis import RedisConnector
from proxystore.serialize import DisallowedTypeError, serialize
from proxystore.store import Store, get_store
from proxystore.store.config import ConnectorConfig, StoreConfig
from proxystore.stream import StreamConsumer, StreamProducer, TrustPolicy
from proxystore.stream.events import (
    EventBatch,
    NewObjectEvent,
    NewObjectKeyEvent,
    SerializedObject,
    event_to_bytes,
)
from proxystore.stream.exceptions import UntrustedEventError
from proxystore.stream.shims.redis import RedisQueuePublisher, RedisQueueSubscriber
from tests.integration.harness import ServerAddress

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SECRET_VAR = "PS_IT_VICTIM_SECRET"
SECRET = "victim-secret-7f3a9c"


class RunsCode:
    """Unpickling this calls ``os.mkdir(marker)``: the marker proves code ran."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.mkdir, (self.marker,))


class Listener:
    """A TCP server that records every byte sent to it and answers errors.

    Stands in for the attacker's "Redis server": whatever a consumer sends there
    (AUTH with a password, GET with a key) ends up in `received`.
    """

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.received = bytearray()
        self.connections = 0
        self._stop = threading.Event()
        self._sock.settimeout(0.05)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with conn:
                conn.settimeout(2)
                try:
                    data = conn.recv(65536)
                    self.received += data
                    conn.sendall(b"-ERR not a redis server\r\n")
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def topic() -> str:
    return f"trust-{uuid.uuid4().hex[:10]}"


def _attack(broker: ServerAddress, topic: str, *events: Any) -> None:
    """Push raw events onto the topic's list: all the attacker can do."""
    client = redis.Redis(*broker)
    try:
        client.rpush(topic, event_to_bytes(EventBatch(topic, list(events))))
    finally:
        client.close()


def _consumer(
    broker: ServerAddress, topic: str, policy: TrustPolicy | None = None
) -> StreamConsumer[Any]:
    subscriber = RedisQueueSubscriber(*broker, topic, timeout=10)
    if policy is None:  # exactly what a reference user writes
        return StreamConsumer(subscriber)
    return StreamConsumer(subscriber, policy=policy)


def _key_event(topic: str, key: tuple[Any, ...], config: StoreConfig) -> Any:
    return NewObjectKeyEvent.from_key(
        key, evict=False, metadata={}, store_config=config, topic=topic
    )


# --------------------------------------------------------------- running code
def test_inline_pickle_runs_no_code_under_a_policy(
    redis_server: ServerAddress, topic: str, tmp_path: pathlib.Path
) -> None:
    marker = tmp_path / "inline-ran"
    _attack(
        redis_server,
        topic,
        NewObjectEvent(topic, SerializedObject(serialize(RunsCode(marker))), {}),
    )
    with (
        _consumer(redis_server, topic, TrustPolicy()) as consumer,
        pytest.raises(DisallowedTypeError),
    ):
        consumer.next_object()
    assert not marker.exists()


def test_key_event_naming_a_new_file_store_runs_no_code_under_a_policy(
    redis_server: ServerAddress, topic: str, tmp_path: pathlib.Path
) -> None:
    marker = tmp_path / "stored-ran"
    attacker_dir = tmp_path / "attacker"
    with Store(f"evil-{topic}", FileConnector(str(attacker_dir), clear=False)) as evil:
        key = evil.put(RunsCode(marker))
        config = evil.config()
    _attack(redis_server, topic, _key_event(topic, key, config))
    with _consumer(redis_server, topic, TrustPolicy()) as consumer:
        with pytest.raises(DisallowedTypeError):
            consumer.next_object()
        consumer.close(stores=True)
    assert not marker.exists()


def test_key_event_is_refused_when_stores_from_events_are(
    redis_server: ServerAddress, topic: str, tmp_path: pathlib.Path
) -> None:
    marker = tmp_path / "stored-ran"
    with Store(
        f"evil-{topic}", FileConnector(str(tmp_path / "attacker"), clear=False)
    ) as evil:
        key = evil.put(RunsCode(marker))
        config = evil.config()
    _attack(redis_server, topic, _key_event(topic, key, config))
    with (
        _consumer(redis_server, topic, TrustPolicy(create_stores=False)) as consumer,
        pytest.raises(UntrustedEventError, match="create_stores=False"),
    ):
        consumer.next_object()
    assert not marker.exists()
    assert get_store(config.name) is None


# ----------------------------------------------------------- stealing secrets
@pytest.mark.parametrize("policy", [None, TrustPolicy()], ids=["default", "policy"])
def test_event_config_cannot_send_a_local_secret_to_the_writer(
    redis_server: ServerAddress,
    topic: str,
    listener: Listener,
    monkeypatch: pytest.MonkeyPatch,
    policy: TrustPolicy | None,
) -> None:
    monkeypatch.setenv(SECRET_VAR, SECRET)
    config = StoreConfig(
        name=f"steal-{topic}",
        connector=ConnectorConfig(
            "proxystore.connectors.redis.RedisConnector",
            {
                "hostname": "127.0.0.1",
                "port": listener.port,
                "password_env": SECRET_VAR,
            },
        ),
    )
    from proxystore.connectors.redis import RedisKey

    _attack(redis_server, topic, _key_event(topic, RedisKey("k" * 32), config))
    with (
        _consumer(redis_server, topic, policy) as consumer,
        pytest.raises((UntrustedEventError, ConnectorError)) as caught,
    ):
        consumer.next_object()  # the old code sent AUTH <secret> to the listener
    assert SECRET.encode() not in listener.received
    assert listener.connections == 0
    assert caught.type is UntrustedEventError
    assert "password_env" in str(caught.value)
    assert get_store(config.name) is None


# ---------------------------------------------------------- deleting directories
@pytest.mark.parametrize("policy", [None, TrustPolicy()], ids=["default", "policy"])
@pytest.mark.parametrize("clear", [True, None], ids=["clear", "connector-default"])
def test_event_config_cannot_clear_a_directory(
    redis_server: ServerAddress,
    topic: str,
    tmp_path: pathlib.Path,
    policy: TrustPolicy | None,
    clear: bool | None,
) -> None:
    victim = tmp_path / "victim-data"
    victim.mkdir()
    (victim / "results.csv").write_text("precious\n")
    options: dict[str, Any] = {"store_dir": str(victim)}
    if clear is not None:
        options["clear"] = clear  # FileConnector clears by default otherwise
    config = StoreConfig(
        name=f"wipe-{topic}",
        connector=ConnectorConfig("proxystore.connectors.file.FileConnector", options),
    )
    from proxystore.connectors.file import FileKey

    _attack(redis_server, topic, _key_event(topic, FileKey("0" * 32), config))
    with _consumer(redis_server, topic, policy) as consumer:
        consumer.next()  # a proxy: the store is made, nothing is fetched
        assert get_store(config.name) is not None
        consumer.close(stores=True)
    assert (victim / "results.csv").read_text() == "precious\n"


# --------------------------------------------------------------- hijacking a name
@pytest.mark.parametrize("policy", [None, TrustPolicy()], ids=["default", "policy"])
def test_event_cannot_take_over_a_store_name(
    redis_server: ServerAddress,
    topic: str,
    listener: Listener,
    policy: TrustPolicy | None,
) -> None:
    # The attacker names the producer's store first, pointing it at its own
    # "Redis"; the producer's events for that name must never be resolved
    # there (on the old code, the consumer sent GET <the producer's key> to it).
    name = f"legit-{topic}"
    hijack = StoreConfig(
        name=name,
        connector=ConnectorConfig(
            "proxystore.connectors.redis.RedisConnector",
            {"hostname": "127.0.0.1", "port": listener.port},
        ),
    )
    from proxystore.connectors.redis import RedisKey

    _attack(redis_server, topic, _key_event(topic, RedisKey("a" * 32), hijack))
    producer_store = Store(name, RedisConnector(*redis_server))
    with StreamProducer[Any](
        RedisQueuePublisher(*redis_server), default_store=producer_store
    ) as producer:
        producer.send(topic, {"payload": 1}, evict=False)
        producer.flush()
    with _consumer(redis_server, topic, policy) as consumer:
        consumer.next()  # the attacker's event: a proxy, never resolved
        with pytest.raises((UntrustedEventError, ConnectorError)) as caught:
            consumer.next_object()  # the old code sent GET <key> to the listener
        consumer.close(stores=True)
    assert listener.connections == 0
    assert listener.received == b""
    assert caught.type is UntrustedEventError
    assert "unlike the one" in str(caught.value)
    producer_store.close()


def test_registered_store_wins_over_event_configs(
    redis_server: ServerAddress, topic: str, tmp_path: pathlib.Path
) -> None:
    # The consumer registered the store itself: an event naming it with the
    # attacker's file store reads through the registered store (where the
    # producer's object is), and nothing is made from the event's config.
    name = f"mine-{topic}"
    attacker_dir = tmp_path / "attacker"
    with Store(name, RedisConnector(*redis_server), register=True) as mine:
        key = mine.put({"payload": 2})
        forged = StoreConfig(
            name=name,
            connector=ConnectorConfig("file", {"store_dir": str(attacker_dir)}),
        )
        _attack(redis_server, topic, _key_event(topic, key, forged))
        with _consumer(redis_server, topic, TrustPolicy()) as consumer:
            assert consumer.next_object() == {"payload": 2}
        assert get_store(name) is mine
    assert not attacker_dir.exists()


# ------------------------------------------------------------------ signatures
def test_signed_stream_refuses_forged_and_unsigned_inline_objects(
    redis_server: ServerAddress,
    topic: str,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from proxystore.serialize import PayloadAuthenticationError, deserialize

    monkeypatch.setenv("PS_IT_STREAM_KEY", "stream-signing-key")
    policy = TrustPolicy(deserializer=deserialize, auth_key_id="env:PS_IT_STREAM_KEY")
    marker = tmp_path / "signed-ran"
    with StreamProducer[Any](
        RedisQueuePublisher(*redis_server), auth_key_id="env:PS_IT_STREAM_KEY"
    ) as producer:
        producer.send(topic, {"ok": True})
        producer.flush()
        forged = SerializedObject(b"\x01SG" + bytes(32) + serialize(RunsCode(marker)))
        _attack(redis_server, topic, NewObjectEvent(topic, forged, {}))
        _attack(redis_server, topic, NewObjectEvent(topic, b"plain bytes", {}))
        with _consumer(redis_server, topic, policy) as consumer:
            assert consumer.next_object() == {"ok": True}
            with pytest.raises(PayloadAuthenticationError):
                consumer.next_object()
            with pytest.raises(UntrustedEventError, match="Unsigned"):
                next(consumer)
    assert not marker.exists()
