"""Signed stores (auth_key_id), restricted deserializers, no secret in a proxy."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import pathlib
import pickle
import random
import uuid
from typing import Any, cast

import pytest

from proxystore.connectors.file import FileConnector
from proxystore.connectors.local import LocalConnector, LocalKey
from proxystore.proxy import ProxyResolveError
from proxystore.serialize import (
    DisallowedTypeError,
    PayloadAuthenticationError,
    RestrictedDeserializer,
    serialize,
    sign,
)
from proxystore.store import Store
from proxystore.store.config import StoreConfig
from proxystore.store.utils import get_key
from proxystore.utils.credentials import CredentialNotFoundError


def unique_name() -> str:
    return f"sec-{uuid.uuid4().hex[:12]}"


KEY_VAR = "PS_TEST_STORE_HMAC"
KEY = "k3y-material-never-in-a-proxy-0123456789"

# Side effects of unpickling the payloads below: proof that pickle ran.
UNPICKLED: list[str] = []


def _record(tag: str) -> str:
    UNPICKLED.append(tag)
    return tag


class Tripwire:
    """Unpickling any copy of this object appends to UNPICKLED."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (_record, (self.tag,))


@pytest.fixture
def hmac_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_VAR, KEY)
    return f"env:{KEY_VAR}"


def test_signed_store_round_trip_and_config(hmac_env: str) -> None:
    store: Store[LocalConnector]
    with Store(unique_name(), LocalConnector(), auth_key_id=hmac_env) as store:
        key = cast("LocalKey", store.put({"a": 1}))
        raw = store.connector.get(key)
        assert raw is not None
        assert bytes(raw[1:3]) == b"SG"  # stored signed
        assert store.get(key) == {"a": 1}
        config = store.config()
        assert config.auth_key_id == hmac_env
        assert Store.from_config(config).config() == config
        assert StoreConfig.from_dict(config.as_dict()) == config
        proxy = store.proxy([1, 2])
        blob = pickle.dumps(proxy)
        assert KEY.encode() not in blob
        assert KEY_VAR.encode() in blob  # the reference travels
        assert pickle.loads(pickle.dumps(config)) == config


def test_unsigned_and_tampered_payloads_never_reach_pickle(hmac_env: str) -> None:
    UNPICKLED.clear()
    with Store(unique_name(), LocalConnector(), auth_key_id=hmac_env) as store:
        key = store.put(Tripwire("signed"))
        assert store.get(key) == "signed"  # the tripwire works when trusted
        assert UNPICKLED == ["signed"]
        UNPICKLED.clear()
        # Written straight to the backend, without the key.
        forged = store.connector.put(serialize(Tripwire("unsigned")))
        with pytest.raises(PayloadAuthenticationError, match="not signed"):
            store.get(forged)
        wrong = store.connector.put(sign(serialize(Tripwire("wrong")), b"other key"))
        with pytest.raises(PayloadAuthenticationError, match="MAC mismatch"):
            store.get(wrong)
        with pytest.raises(PayloadAuthenticationError):
            store.get_evict(wrong)
    assert UNPICKLED == []


@pytest.mark.parametrize("algorithm", ["hmac-sha256", "blake3"])
def test_fuzz_mutated_signed_payloads_are_all_rejected(
    hmac_env: str, algorithm: str
) -> None:
    """10 000 mutations of a signed payload: every one refused before pickle."""
    if algorithm == "blake3":
        pytest.importorskip("blake3")
    UNPICKLED.clear()
    rng = random.Random(1234)
    connector = LocalConnector()
    with Store(
        unique_name(),
        connector,
        auth_key_id=hmac_env,
        auth_algorithm=algorithm,
        cache_size=0,
    ) as store:
        stored = connector.get(
            cast("LocalKey", store.put([Tripwire("t"), list(range(50))]))
        )
        assert stored is not None
        good = bytes(stored)
        assert store.get(connector.put(good))[0] == "t"
        assert UNPICKLED == ["t"]
        UNPICKLED.clear()
        rejected = 0
        for _ in range(10_000):
            data = bytearray(good)
            action = rng.randrange(5)
            if action == 0:  # flip 1-4 bits anywhere
                for _ in range(rng.randint(1, 4)):
                    data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            elif action == 1:  # truncate
                del data[rng.randrange(len(data)) :]
            elif action == 2:  # append junk
                data += rng.randbytes(rng.randint(1, 16))
            elif action == 3:  # splice random bytes over a random range
                start = rng.randrange(len(data))
                end = min(len(data), start + rng.randint(1, 8))
                data[start:end] = bytes(b ^ 0xFF for b in data[start:end])
            else:  # replace the whole signature
                data[3:35] = rng.randbytes(32)
            assert bytes(data) != good
            key = connector.put(bytes(data))
            try:
                store.get(key)
            except PayloadAuthenticationError:
                rejected += 1
            connector.evict(key)
    assert rejected == 10_000
    assert UNPICKLED == []


def test_blake3_store_config_and_cross_verification(hmac_env: str) -> None:
    pytest.importorskip("blake3")
    connector = LocalConnector()
    with Store(
        unique_name(), connector, auth_key_id=hmac_env, auth_algorithm="blake3"
    ) as fast:
        key = cast("LocalKey", fast.put([1, 2]))
        raw = connector.get(key)
        assert raw is not None
        assert bytes(raw[1:3]) == b"SB"
        config = fast.config()
        assert config.auth_algorithm == "blake3"
        assert pickle.loads(pickle.dumps(config)) == config
        # A store of the same key reads either algorithm.
        with Store(unique_name(), connector, auth_key_id=hmac_env) as default:
            assert default.get(key) == [1, 2]
    with pytest.raises(ValueError, match="auth_algorithm"):
        Store(unique_name(), LocalConnector(), auth_algorithm="md5")


def test_missing_key_reference_is_a_typed_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(KEY_VAR, raising=False)
    with pytest.raises(CredentialNotFoundError, match=KEY_VAR):
        Store(unique_name(), LocalConnector(), auth_key_id=f"env:{KEY_VAR}")
    with pytest.raises(ValueError, match="auth_key_id"):
        StoreConfig(
            "s", Store("x", LocalConnector()).config().connector, auth_key_id=""
        )


# ----------------------------------------------------------- spawned processes
def _resolve_signed(proxy: Any) -> tuple[str, str]:
    """Runs in a spawned interpreter with (or without) the key in its env."""
    try:
        return "ok", repr(list(proxy))
    except ProxyResolveError as e:
        cause: BaseException | None = e.cause
        while (
            cause is not None
            and cause.__cause__ is not None
            and not isinstance(
                cause, PayloadAuthenticationError | CredentialNotFoundError
            )
        ):
            cause = cause.__cause__
        return "error", type(cause).__name__


def _in_spawned(proxy: Any) -> tuple[str, str]:
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(_resolve_signed, proxy).result()


def test_signed_proxy_in_spawned_processes(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, hmac_env: str
) -> None:
    connector = FileConnector(str(tmp_path / "signed"))
    with Store(unique_name(), connector, auth_key_id=hmac_env) as store:
        proxy = store.proxy([3, 4, 5])
        assert KEY.encode() not in pickle.dumps(proxy)
        assert _in_spawned(proxy) == ("ok", "[3, 4, 5]")
        monkeypatch.setenv(KEY_VAR, "a different key")
        assert _in_spawned(proxy) == ("error", "PayloadAuthenticationError")
        monkeypatch.delenv(KEY_VAR)
        assert _in_spawned(proxy) == ("error", "CredentialNotFoundError")
        assert store.exists(get_key(proxy))


# ------------------------------------------------------------ restricted loads
def test_restricted_deserializer_travels_and_refuses(tmp_path: pathlib.Path) -> None:
    UNPICKLED.clear()
    restricted = RestrictedDeserializer(["collections.Counter"])
    with Store(
        unique_name(), LocalConnector(), deserializer=restricted, cache_size=0
    ) as store:
        import collections

        ok = store.put(collections.Counter("aab"))
        assert store.get(ok) == collections.Counter("aab")
        bad = store.put(Tripwire("restricted"))
        with pytest.raises(DisallowedTypeError, match="_record") as info:
            store.get(bad)
        assert info.value.path.endswith("test_store_security._record")
        assert UNPICKLED == []
        # The allow-list is plain data inside the proxy's config.
        config = pickle.loads(pickle.dumps(store.config()))
        assert config.deserializer == restricted


def test_key_holding_serializers_refuse_to_travel() -> None:
    from proxystore.serialize import signed_deserializer, signed_serializer

    key = b"raw-key-bytes-123"
    with Store(
        unique_name(),
        LocalConnector(),
        serializer=signed_serializer(key),
        deserializer=signed_deserializer(key),
    ) as store:
        assert store.get(store.put([1])) == [1]  # works in this process
        proxy = store.proxy([2])
        with pytest.raises(TypeError, match="auth_key_id") as info:
            pickle.dumps(proxy)
        assert "raw-key-bytes" not in str(info.value)
        assert "raw-key-bytes" not in repr(store.serializer)


def test_futures_of_a_signed_store_are_signed(hmac_env: str) -> None:
    connector = LocalConnector()
    with Store(unique_name(), connector, auth_key_id=hmac_env, register=True) as store:
        future = store.future()
        future.set_result({"done": True})
        assert future.result(timeout=5) == {"done": True}
        raw = connector.get(cast("LocalKey", future.factory.key))
        assert raw is not None
        assert bytes(raw[1:3]) == b"SG"
