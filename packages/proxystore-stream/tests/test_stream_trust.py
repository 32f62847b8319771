"""The consumer's trust policy, attacked with forged events (in-process queue)."""

from __future__ import annotations

import fractions
import os
import pathlib
import queue
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from proxystore.connectors.file import FileConnector, FileKey
from proxystore.connectors.local import LocalConnector
from proxystore.proxy import ProxyResolveError
from proxystore.serialize import (
    DisallowedTypeError,
    PayloadAuthenticationError,
    RestrictedDeserializer,
    deserialize,
    serialize,
)
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
from proxystore.stream.exceptions import EventDecodeError, UntrustedEventError
from proxystore.stream.shims.queue import QueuePublisher, QueueSubscriber
from proxystore.stream.trust import _ConsumerTrust
from proxystore.utils.credentials import CredentialError

pytestmark = pytest.mark.timeout(30)

KEY_VAR = "PS_T_STREAM_TRUST_KEY"
FILE = "proxystore.connectors.file.FileConnector"


class RunsCode:
    """Unpickling this calls ``os.mkdir(marker)``: the marker proves code ran."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.mkdir, (self.marker,))


@pytest.fixture
def q() -> queue.Queue[bytes]:
    return queue.Queue()


@pytest.fixture
def signing_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_VAR, "stream-trust-key")
    return f"env:{KEY_VAR}"


def _name() -> str:
    return f"trust-{uuid.uuid4().hex[:12]}"


def _push(q: queue.Queue[bytes], *events: Any) -> None:
    """What a writer to the broker can do: put any event on the topic."""
    q.put(event_to_bytes(EventBatch("t", list(events))))


def _consumer(
    q: queue.Queue[bytes], policy: TrustPolicy | None = None
) -> StreamConsumer[Any]:
    return StreamConsumer(QueueSubscriber(q), policy=policy)


def _key_event(config: StoreConfig, key: tuple[Any, ...] | None = None) -> Any:
    return NewObjectKeyEvent.from_key(
        FileKey("0" * 32) if key is None else key,
        evict=False,
        metadata={},
        store_config=config,
        topic="t",
    )


def _file_config(name: str, path: pathlib.Path, **options: Any) -> StoreConfig:
    return StoreConfig(
        name=name,
        connector=ConnectorConfig(FILE, {"store_dir": str(path), **options}),
    )


@pytest.fixture
def file_store(tmp_path: pathlib.Path) -> Iterator[Store[FileConnector]]:
    """A producer's store in a directory both sides can read (not registered)."""
    with Store(_name(), FileConnector(str(tmp_path / "shared"), clear=True)) as s:
        yield s


# ------------------------------------------------------------------ the policy
def test_policy_arguments() -> None:
    with pytest.raises(ValueError, match="either allow or deserializer"):
        TrustPolicy(allow=["numpy"], deserializer=deserialize)
    with pytest.raises(ValueError, match="auth_key_id"):
        TrustPolicy(auth_key_id="")
    with pytest.raises(ValueError, match="dotted names"):
        TrustPolicy(allow=["not a name"])
    policy = TrustPolicy(allow="fractions")
    assert policy.allow == ("fractions",)
    assert policy.object_deserializer == RestrictedDeserializer(["fractions"])
    assert TrustPolicy().object_deserializer == RestrictedDeserializer(())
    assert TrustPolicy(deserializer=deserialize).object_deserializer is deserialize
    assert "_loader" not in repr(policy)
    assert TrustPolicy(allow=["a.b"]) == TrustPolicy(allow=("a.b",))


def test_policy_key_is_resolved_here_when_the_consumer_starts(
    q: queue.Queue[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_VAR, raising=False)
    with pytest.raises(CredentialError, match=KEY_VAR):
        _consumer(q, TrustPolicy(auth_key_id=f"env:{KEY_VAR}"))


def test_consumer_reports_its_policy(q: queue.Queue[bytes]) -> None:
    policy = TrustPolicy()
    assert _consumer(q, policy).policy is policy
    assert _consumer(q).policy is None


# -------------------------------------------------------------- inline objects
def test_inline_objects_go_through_the_policy_deserializer(
    q: queue.Queue[bytes], tmp_path: pathlib.Path
) -> None:
    marker = tmp_path / "ran"
    third = fractions.Fraction(1, 3)
    _push(q, NewObjectEvent("t", third, {}))
    _push(q, NewObjectEvent("t", SerializedObject(serialize(RunsCode(marker))), {}))
    _push(q, NewObjectEvent("t", b"plain", {"m": 1}))
    consumer = _consumer(q, TrustPolicy(allow=["fractions.Fraction"]))
    assert consumer.next_object() == third
    with pytest.raises(DisallowedTypeError):
        consumer.next_object()
    assert not marker.exists()
    assert consumer.next_with_metadata() == ({"m": 1}, b"plain")


def test_plain_inline_bytes_keep_the_fast_path_under_a_policy(
    q: queue.Queue[bytes],
) -> None:
    producer = StreamProducer[bytes](QueuePublisher({"t": q}))
    consumer = _consumer(q, TrustPolicy())
    for i in range(3):
        producer.send("t", b"%d" % i)
    assert [next(consumer) for _ in range(3)] == [b"0", b"1", b"2"]


def test_without_a_policy_inline_objects_are_unpickled(
    q: queue.Queue[bytes], tmp_path: pathlib.Path
) -> None:
    # The reference behaviour, stated as a test: a writer to the broker runs
    # code in a consumer without a policy. (The docs say so.)
    marker = tmp_path / "ran"
    _push(q, NewObjectEvent("t", SerializedObject(serialize(RunsCode(marker))), {}))
    assert _consumer(q).next_object() is None
    assert marker.is_dir()


# ----------------------------------------------------------------- signatures
def test_signed_inline_objects(q: queue.Queue[bytes], signing_key: str) -> None:
    producer = StreamProducer[Any](
        QueuePublisher({"t": q}), auth_key_id=signing_key, auth_algorithm="hmac-sha256"
    )
    policy = TrustPolicy(deserializer=deserialize, auth_key_id=signing_key)
    consumer = _consumer(q, policy)
    producer.send("t", {"ok": 1})
    producer.send("t", b"bytes are signed too")
    assert consumer.next_object() == {"ok": 1}
    assert next(consumer) == b"bytes are signed too"
    # Forged (no valid MAC) and unsigned objects are refused, also on the
    # per-item path of plain bytes.
    _push(q, NewObjectEvent("t", SerializedObject(serialize({"forged": 1})), {}))
    with pytest.raises(PayloadAuthenticationError):
        consumer.next_object()
    for _ in range(2):
        q.put(event_to_bytes(EventBatch("t", [NewObjectEvent("t", b"x", {})])))
        with pytest.raises(UntrustedEventError, match="Unsigned inline object"):
            next(consumer)


def test_producer_signing_arguments(q: queue.Queue[bytes], signing_key: str) -> None:
    with pytest.raises(ValueError, match="auth_algorithm"):
        StreamProducer(
            QueuePublisher({"t": q}), auth_key_id=signing_key, auth_algorithm="md5"
        )
    with pytest.raises(CredentialError):
        StreamProducer(QueuePublisher({"t": q}), auth_key_id="env:PS_T_UNSET_VAR_X")


def test_stored_objects_are_verified_with_the_policy_key(
    q: queue.Queue[bytes], tmp_path: pathlib.Path, signing_key: str
) -> None:
    policy = TrustPolicy(allow=["fractions"], auth_key_id=signing_key)
    with (
        Store(
            _name(), FileConnector(str(tmp_path / "signed")), auth_key_id=signing_key
        ) as signed,
        Store(_name(), FileConnector(str(tmp_path / "unsigned"))) as plain,
    ):
        producer = StreamProducer[Any](QueuePublisher({"t": q}), default_store=signed)
        producer.send("t", fractions.Fraction(2, 3), evict=False)
        _push(q, _key_event(plain.config(), plain.put(fractions.Fraction(1, 2))))
        consumer = _consumer(q, policy)
        assert consumer.next_object() == fractions.Fraction(2, 3)
        with pytest.raises(PayloadAuthenticationError):
            consumer.next_object()
        made = get_store(signed.name)
        assert made is not None
        assert made.config().auth_key_id == signing_key
        consumer.close(stores=True)


# --------------------------------------------------- store configs of events
@pytest.mark.parametrize(
    "options",
    [
        {"password_env": "HOME"},
        {"password_credential": "redis-prod"},
        {"username_env": "USER"},
        {"password": "given-directly"},
        {"ssl_keyfile": "/home/victim/.ssh/id_rsa"},
        {"curve_secret_key_env": "CURVE"},
        {"nested": {"deeper": [{"token_env": "X"}]}},
    ],
)
@pytest.mark.parametrize("policy", [None, TrustPolicy()], ids=["default", "policy"])
def test_credential_options_are_refused(
    options: dict[str, Any], policy: TrustPolicy | None
) -> None:
    config = StoreConfig(
        name=_name(),
        connector=ConnectorConfig(
            "redis", {"hostname": "127.0.0.1", "port": 1, **options}
        ),
    )
    with pytest.raises(UntrustedEventError, match="never name credentials"):
        _ConsumerTrust(policy).sanitised(config)


def test_unset_reference_options_pass() -> None:
    # A connector's config may list its reference options with None values.
    config = StoreConfig(
        name=_name(),
        connector=ConnectorConfig(
            "redis",
            {"hostname": "h", "port": 1, "password_env": None, "token": ""},
        ),
    )
    assert _ConsumerTrust(None).sanitised(config).connector.options["clear"] is False


@pytest.mark.parametrize("clear", [True, False, None])
def test_clear_is_forced_off(tmp_path: pathlib.Path, clear: bool | None) -> None:
    options = {} if clear is None else {"clear": clear}
    config = _file_config(_name(), tmp_path, **options)
    safe = _ConsumerTrust(None).sanitised(config)
    assert safe.connector.options == {"store_dir": str(tmp_path), "clear": False}


def test_event_cannot_widen_file_modes(tmp_path: pathlib.Path) -> None:
    # A writer asking for world-writable files gets the connector's private default.
    config = _file_config(_name(), tmp_path, permissions=0o666)
    safe = _ConsumerTrust(None).sanitised(config)
    assert "permissions" not in safe.connector.options
    connector = FileConnector(**safe.connector.options)
    try:
        key = connector.put(b"x")
        mode = (tmp_path / key.filename).stat().st_mode & 0o777
        assert mode == 0o600
    finally:
        connector.close()


def test_multi_connector_children_are_checked_and_never_clear(
    tmp_path: pathlib.Path,
) -> None:
    def multi(path: str, **options: Any) -> StoreConfig:
        child = {"store_dir": str(tmp_path), **options}
        return StoreConfig(
            name=_name(),
            connector=ConnectorConfig("multi", {"a": [path, child, {"priority": 0}]}),
        )

    trust = _ConsumerTrust(None)
    safe = trust.sanitised(multi(FILE, clear=True))
    assert safe.connector.options["a"][1]["clear"] is False
    with pytest.raises(UntrustedEventError, match="password_env"):
        trust.sanitised(multi(FILE, password_env="HOME"))
    with pytest.raises(EventDecodeError, match="outside the trusted modules"):
        trust.sanitised(multi("antigravity.Connector"))
    bad = StoreConfig(
        name=_name(), connector=ConnectorConfig("multi", {"a": ["x", "y"]})
    )
    with pytest.raises(EventDecodeError, match="MultiConnector entry"):
        trust.sanitised(bad)


def test_signing_key_is_never_taken_from_an_event(
    tmp_path: pathlib.Path, signing_key: str
) -> None:
    config = StoreConfig(
        name=_name(),
        connector=ConnectorConfig(FILE, {"store_dir": str(tmp_path)}),
        auth_key_id="env:SOME_OTHER_VAR",
    )
    with pytest.raises(UntrustedEventError, match="never taken from an event"):
        _ConsumerTrust(None).sanitised(config)
    policy = TrustPolicy(auth_key_id=signing_key)
    safe = _ConsumerTrust(policy).sanitised(config)
    assert safe.auth_key_id == signing_key


def test_policy_replaces_the_event_deserializer(tmp_path: pathlib.Path) -> None:
    config = StoreConfig(
        name=_name(),
        connector=ConnectorConfig(FILE, {"store_dir": str(tmp_path)}),
        serializer=serialize,
        deserializer=deserialize,
    )
    policy = TrustPolicy(allow=["fractions"])
    safe = _ConsumerTrust(policy).sanitised(config)
    assert safe.deserializer is policy.object_deserializer
    assert safe.serializer is None
    assert _ConsumerTrust(None).sanitised(config).deserializer is deserialize


# ----------------------------------------------------------------- store names
def test_close_never_removes_what_an_event_names(
    q: queue.Queue[bytes], tmp_path: pathlib.Path
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "data").write_text("keep")
    _push(q, _key_event(_file_config(_name(), victim, clear=True)))
    consumer = _consumer(q)
    consumer.next()
    consumer.close(stores=True)
    assert (victim / "data").read_text() == "keep"


def test_registered_store_wins(q: queue.Queue[bytes], tmp_path: pathlib.Path) -> None:
    name = _name()
    with Store(name, LocalConnector(), register=True) as mine:
        key = mine.put([1, 2])
        _push(q, _key_event(_file_config(name, tmp_path / "attacker"), key))
        consumer = _consumer(q, TrustPolicy(create_stores=False))
        assert consumer.next_object() == [1, 2]
        assert get_store(name) is mine
        assert consumer._stores == {name: mine}
    assert not (tmp_path / "attacker").exists()


def test_a_name_made_from_an_event_is_never_rebound(
    q: queue.Queue[bytes], tmp_path: pathlib.Path, file_store: Store[FileConnector]
) -> None:
    # An attacker names the producer's store first; the producer's events are
    # then refused rather than resolved through the attacker's store, by this
    # consumer and by any other in the process.
    name = file_store.name
    _push(q, _key_event(_file_config(name, tmp_path / "attacker")))
    key = file_store.put("legit")
    _push(q, _key_event(file_store.config(), key))
    _push(q, _key_event(file_store.config(), key))
    first = _consumer(q)
    first.next()
    with pytest.raises(UntrustedEventError, match="unlike the one"):
        first.next_object()
    with pytest.raises(UntrustedEventError, match="unlike the one"):
        _consumer(q).next_object()
    first.close(stores=True)


def test_one_store_per_name_for_equal_configs(
    q: queue.Queue[bytes], file_store: Store[FileConnector]
) -> None:
    config = file_store.config()
    keys = [file_store.put(i) for i in range(3)]
    for key in keys:
        # A fresh (equal, not identical) config object per message.
        _push(q, _key_event(StoreConfig.from_dict(config.as_dict()), key))
    consumer = _consumer(q, TrustPolicy())
    assert [consumer.next_object() for _ in keys] == [0, 1, 2]
    assert list(consumer._stores) == [file_store.name]
    made = consumer._stores[file_store.name]
    assert made is not file_store
    assert made.connector.clear is False
    consumer.close(stores=True)
    assert get_store(file_store.name) is None


def test_create_stores_false_refuses_unknown_stores(
    q: queue.Queue[bytes], file_store: Store[FileConnector]
) -> None:
    _push(q, _key_event(file_store.config(), file_store.put(1)))
    consumer = _consumer(q, TrustPolicy(create_stores=False))
    with pytest.raises(UntrustedEventError, match="create_stores=False"):
        consumer.next()
    assert get_store(file_store.name) is None


def test_filtered_events_under_a_refusing_policy(
    q: queue.Queue[bytes], file_store: Store[FileConnector]
) -> None:
    # Evicting a filtered-out object asks for its store too: same refusal.
    event = NewObjectKeyEvent.from_key(
        file_store.put(1),
        evict=True,
        metadata={"skip": True},
        store_config=file_store.config(),
        topic="t",
    )
    _push(q, event)
    consumer = StreamConsumer[Any](
        QueueSubscriber(q),
        filter_=lambda m: bool(m.get("skip")),
        policy=TrustPolicy(create_stores=False),
    )
    with pytest.raises(UntrustedEventError):
        consumer.next()


def test_policy_connector_allow_list(tmp_path: pathlib.Path) -> None:
    policy = TrustPolicy(
        connectors=["file", "proxystore.connectors.multi.MultiConnector"]
    )
    assert policy.connectors == ("file", "proxystore.connectors.multi.MultiConnector")
    trust = _ConsumerTrust(policy)
    assert trust.sanitised(_file_config(_name(), tmp_path)).connector.kind == FILE
    redis_config = StoreConfig(
        name=_name(),
        connector=ConnectorConfig("redis", {"hostname": "h", "port": 1}),
    )
    with pytest.raises(UntrustedEventError, match="does not list"):
        trust.sanitised(redis_config)
    child = ["proxystore.connectors.redis.RedisConnector", {"hostname": "h", "port": 1}]
    multi = StoreConfig(
        name=_name(),
        connector=ConnectorConfig("multi", {"a": [*child, {"priority": 0}]}),
    )
    with pytest.raises(UntrustedEventError, match="RedisConnector"):
        trust.sanitised(multi)
    with pytest.raises(ValueError, match=r"TrustPolicy\.connectors"):
        _ConsumerTrust(TrustPolicy(connectors=["no_such_connector_kind"]))


def test_a_store_rebuilt_by_a_proxy_is_still_one_made_from_an_event(
    q: queue.Queue[bytes], tmp_path: pathlib.Path, file_store: Store[FileConnector]
) -> None:
    # A proxy resolved after close(stores=True) rebuilds and registers its
    # store; a later consumer must not take that store for the process's own.
    name = file_store.name
    _push(q, _key_event(_file_config(name, tmp_path / "attacker")))
    first = _consumer(q)
    proxy = first.next()
    first.close(stores=True)
    assert get_store(name) is None
    with pytest.raises(ProxyResolveError, match="No object at key"):
        _ = proxy.__proxy_wrapped__  # rebuilds the store from its config
    rebuilt = get_store(name)
    assert rebuilt is not None
    _push(q, _key_event(file_store.config(), file_store.put("legit")))
    with pytest.raises(UntrustedEventError, match="unlike the one"):
        _consumer(q).next_object()
    rebuilt.close()
    # A store the process registers itself under that name then wins.
    with Store(name, LocalConnector(), register=True) as mine:
        key = mine.put("mine")
        _push(q, _key_event(file_store.config(), key))
        assert _consumer(q).next_object() == "mine"


# ------------------------------------------------------------------ eviction
@pytest.mark.parametrize("how", ["filtered", "next_object", "proxy"])
def test_an_event_cannot_make_a_policy_consumer_delete_files(
    q: queue.Queue[bytes], tmp_path: pathlib.Path, how: str
) -> None:
    # The writer names a directory of the consumer's and a file in it (here one
    # of the consumer's own objects), and asks for the object to be evicted:
    # the consumer would unlink that file.
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "important").write_bytes(bytes(serialize("keep")))
    event = NewObjectKeyEvent.from_key(
        FileKey("important"),
        evict=True,
        metadata={"skip": how == "filtered"},
        store_config=_file_config(_name(), victim),
        topic="t",
    )
    _push(q, event)
    _push(q, NewObjectEvent("t", b"after", {}))
    consumer = StreamConsumer[Any](
        QueueSubscriber(q),
        filter_=lambda m: bool(m.get("skip")),
        policy=TrustPolicy(),
    )
    if how == "filtered":
        assert consumer.next() == b"after"
    elif how == "next_object":
        assert consumer.next_object() == "keep"
    else:
        assert consumer.next() == "keep"
    consumer.close(stores=True)
    assert deserialize((victim / "important").read_bytes()) == "keep"


def test_registered_stores_and_no_policy_still_evict(
    q: queue.Queue[bytes], file_store: Store[FileConnector]
) -> None:
    def evicting(key: Any, config: StoreConfig) -> Any:
        return NewObjectKeyEvent.from_key(
            key, evict=True, metadata={}, store_config=config, topic="t"
        )

    # No policy: the reference behaviour (the producer's evict applies).
    key = file_store.put("a")
    _push(q, evicting(key, file_store.config()))
    consumer = _consumer(q)
    assert consumer.next_object() == "a"
    assert not file_store.exists(key)
    consumer.close(stores=True)
    # A policy and a store registered here: the consumer vouches for it.
    name = _name()
    with Store(name, LocalConnector(), register=True) as mine:
        key = mine.put("b")
        _push(q, evicting(key, _file_config(name, pathlib.Path("/nonexistent"))))
        assert _consumer(q, TrustPolicy()).next_object() == "b"
        assert not mine.exists(key)
