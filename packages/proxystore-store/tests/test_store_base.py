"""Unit tests of proxystore.store.base.Store (Local and File connectors)."""

from __future__ import annotations

import pickle
import uuid
from typing import Any

import pytest

from proxystore.connectors.exceptions import (
    ConnectorConnectionError,
    ConnectorTimeoutError,
)
from proxystore.connectors.local import LocalConnector, LocalKey
from proxystore.connectors.multi import MultiConnector, Policy
from proxystore.proxy import (
    Proxy,
    ProxyLocker,
    ProxyResolveError,
    extract,
    is_resolved,
)
from proxystore.serialize import SerializationError, serialize
from proxystore.store import Store, StoreConfig, get_store
from proxystore.store.exceptions import (
    NonProxiableTypeError,
    ProxyResolveMissingKeyError,
    StoreExistsError,
)
from proxystore.store.factory import StoreFactory
from proxystore.store.utils import get_key


def _name() -> str:
    return f"base-{uuid.uuid4().hex[:12]}"


def _roundtrip(proxy: Proxy[Any]) -> Proxy[Any]:
    """A fresh, unresolved copy of ``proxy`` (as another process would get it)."""
    copy: Proxy[Any] = pickle.loads(pickle.dumps(proxy))
    return copy


# ------------------------------------------------------------------ construction
def test_init_validates_arguments() -> None:
    with pytest.raises(ValueError, match="cache_size"):
        Store(_name(), LocalConnector(), cache_size=-1)
    with pytest.raises(ValueError, match="name"):
        Store("", LocalConnector())


def test_properties_and_repr() -> None:
    connector = LocalConnector()
    with Store("repr-store", connector, cache_size=3, metrics=True) as store:
        assert store.name == "repr-store"
        assert store.connector is connector
        assert store.cache.maxsize == 3
        assert store.metrics is not None
        assert store.serializer is serialize
        assert repr(store) == (
            "Store(name=repr-store, connector=LocalConnector(), "
            "serializer=default, deserializer=default, cache_size=3, metrics=True, "
            "populate_target=True, auto_register=False)"
        )
    with Store(_name(), LocalConnector(), serializer=bytes) as custom:
        assert "serializer=custom" in repr(custom)
        assert custom.metrics is None


def test_register_and_close_unregisters() -> None:
    name = _name()
    store = Store(name, LocalConnector(), register=True)
    assert get_store(name) is store
    with pytest.raises(StoreExistsError, match=name) as info:
        Store(name, LocalConnector(), register=True)
    assert any("get_store" in note for note in info.value.__notes__)
    store.close()
    assert get_store(name) is None
    store.close()  # closing twice is harmless


def test_unregistered_store_is_not_in_registry() -> None:
    with Store(_name(), LocalConnector()) as store:
        assert get_store(store.name) is None


# ----------------------------------------------------------------- put / get
@pytest.mark.parametrize("obj", ["text", b"raw", 42, [1, {"a": (2, 3)}], 1.5])
def test_put_get_roundtrip(any_store: Store[Any], obj: Any) -> None:
    key = any_store.put(obj)
    assert not any_store.is_cached(key)  # put does not fill the cache
    assert any_store.get(key) == obj
    assert any_store.is_cached(key)
    assert any_store.exists(key)


def test_get_missing_returns_default_and_does_not_cache(any_store: Store[Any]) -> None:
    key = any_store.put("x")
    any_store.evict(key)
    assert any_store.get(key) is None
    sentinel = object()
    assert any_store.get(key, default=sentinel) is sentinel
    assert not any_store.is_cached(key)
    assert not any_store.exists(key)


def test_get_uses_cache_not_connector(local_store: Store[LocalConnector]) -> None:
    key = local_store.put([1, 2])
    first = local_store.get(key)
    # The cache answers even after the connector lost the bytes.
    local_store.connector.evict(LocalKey(*key))
    assert local_store.get(key) is first
    assert local_store.exists(key)
    local_store.evict(key)
    assert not local_store.exists(key)


def test_cache_size_zero_disables_cache() -> None:
    with Store(_name(), LocalConnector(), cache_size=0) as store:
        key = store.put("v")
        assert store.get(key) == "v"
        assert not store.is_cached(key)


def test_put_batch_and_get(any_store: Store[Any]) -> None:
    objs = ["a", [1], {"k": 2}]
    keys = any_store.put_batch(objs)
    assert len(set(keys)) == 3
    assert [any_store.get(k) for k in keys] == objs


def test_evict_missing_key_is_not_an_error(any_store: Store[Any]) -> None:
    key = any_store.put(1)
    any_store.evict(key)
    any_store.evict(key)
    assert not any_store.exists(key)


def test_custom_serializer_per_call_and_per_store() -> None:
    def ser(obj: str) -> bytes:
        return obj.encode()

    def des(data: Any) -> str:
        return bytes(data).decode()

    with Store(_name(), LocalConnector(), serializer=ser, deserializer=des) as store:
        key = store.put("hello")
        assert store.connector.get(LocalKey(*key)) == b"hello"
        assert store.get(key) == "hello"
    with Store(_name(), LocalConnector()) as store:
        key = store.put("hi", serializer=ser)
        assert store.get(key, deserializer=des) == "hi"


def test_serializer_must_return_bytes(local_store: Store[Any]) -> None:
    with pytest.raises(TypeError, match="bytes-like"):
        local_store.put("x", serializer=lambda obj: 123)  # type: ignore[arg-type,return-value]


def test_deserialize_failure_names_key_and_deserializer(
    local_store: Store[Any],
) -> None:
    key = local_store.connector.put(b"not a serialized object")
    with pytest.raises(SerializationError) as info:
        local_store.get(key)
    message = str(info.value)
    assert repr(key) in message
    assert "deserialize" in message
    assert info.value.__cause__ is not None


# -------------------------------------------------------------------- proxies
def test_proxy_is_resolved_locally_with_defaults(
    any_store: Store[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_fetch(key: Any) -> None:
        raise AssertionError("a populated proxy must not fetch its own object")

    monkeypatch.setattr(any_store.connector, "get", no_fetch)
    proxy = any_store.proxy([1, 2, 3])
    assert is_resolved(proxy)
    assert isinstance(proxy, list)
    assert proxy == [1, 2, 3]
    assert isinstance(get_key(proxy), tuple)
    hashable = any_store.proxy("h")
    assert hash(hashable) == hash("h")


def test_proxy_roundtrip_resolves_from_store(any_store: Store[Any]) -> None:
    proxy = any_store.proxy({"a": 1})
    copy = _roundtrip(proxy)
    assert not is_resolved(copy)
    assert isinstance(copy, dict)  # default class survives pickling
    assert not is_resolved(copy)
    assert copy == {"a": 1}
    assert is_resolved(copy)


def test_proxy_without_populate_target_is_unresolved(any_store: Store[Any]) -> None:
    proxy = any_store.proxy("abc", populate_target=False)
    assert not is_resolved(proxy)
    assert proxy == "abc"
    with Store(_name(), LocalConnector(), populate_target=False) as store:
        assert not is_resolved(store.proxy("x"))
        assert is_resolved(store.proxy("x", populate_target=True))


def test_proxy_evict_removes_after_first_resolve(any_store: Store[Any]) -> None:
    proxy = any_store.proxy("once", evict=True, populate_target=False)
    key = get_key(proxy)
    assert any_store.exists(key)
    assert proxy == "once"
    assert not any_store.exists(key)


def test_proxy_evict_and_lifetime_are_exclusive(local_store: Store[Any]) -> None:
    from proxystore.store.lifetimes import ContextLifetime

    with ContextLifetime(local_store) as lifetime:
        with pytest.raises(ValueError, match="exclusive"):
            local_store.proxy("x", evict=True, lifetime=lifetime)
        with pytest.raises(ValueError, match="exclusive"):
            local_store.proxy_batch(["x"], evict=True, lifetime=lifetime)
        with pytest.raises(ValueError, match="exclusive"):
            local_store.proxy_from_key(("k",), evict=True, lifetime=lifetime)


def test_proxy_with_lifetime_is_evicted_at_its_end(local_store: Store[Any]) -> None:
    from proxystore.store.lifetimes import ContextLifetime

    with ContextLifetime(local_store) as lifetime:
        proxy = local_store.proxy("scoped", lifetime=lifetime)
        key = local_store.put("also", lifetime=lifetime)
        batch = local_store.proxy_batch(["b1", "b2"], lifetime=lifetime)
        keys = [get_key(proxy), key, *(get_key(p) for p in batch)]
        assert all(local_store.exists(k) for k in keys)
    assert not any(local_store.exists(k) for k in keys)


@pytest.mark.parametrize("obj", [None, True, False])
def test_nonproxiable(local_store: Store[Any], obj: Any) -> None:
    with pytest.raises(NonProxiableTypeError, match="skip_nonproxiable"):
        local_store.proxy(obj)
    assert local_store.proxy(obj, skip_nonproxiable=True) is obj
    assert local_store.locked_proxy(obj) is obj
    with pytest.raises(NonProxiableTypeError):
        local_store.locked_proxy(obj, skip_nonproxiable=False)


def test_proxy_batch(any_store: Store[Any]) -> None:
    proxies = any_store.proxy_batch(["a", "b"], populate_target=False)
    assert [_roundtrip(p) for p in proxies] == ["a", "b"]
    assert len({get_key(p) for p in proxies}) == 2


def test_proxy_batch_nonproxiable(local_store: Store[Any]) -> None:
    with pytest.raises(NonProxiableTypeError):
        local_store.proxy_batch([1, None])
    mixed = local_store.proxy_batch([None, 1, True, "s"], skip_nonproxiable=True)
    assert mixed[0] is None
    assert mixed[2] is True
    assert isinstance(mixed[1], Proxy)
    assert mixed[1] == 1
    assert mixed[3] == "s"


def test_proxy_from_key(any_store: Store[Any]) -> None:
    key = any_store.put("from key")
    proxy = any_store.proxy_from_key(key, evict=True)
    assert not is_resolved(proxy)
    assert proxy == "from key"
    assert not any_store.exists(key)


def test_resolving_missing_key_names_store_and_key(any_store: Store[Any]) -> None:
    key = any_store.put("gone")
    any_store.evict(key)
    proxy = any_store.proxy_from_key(key)
    with pytest.raises(ProxyResolveError) as info:
        len(proxy)
    cause = info.value.__cause__
    assert isinstance(cause, ProxyResolveMissingKeyError)
    assert isinstance(cause, KeyError)
    assert cause.key == key
    assert cause.store_name == any_store.name
    assert cause.store_type is Store
    assert any_store.name in str(cause)
    assert repr(key) in str(cause)
    again = pickle.loads(pickle.dumps(cause))
    assert (again.key, again.store_name) == (key, any_store.name)


def test_locked_proxy(local_store: Store[Any]) -> None:
    locker = local_store.locked_proxy([5])
    assert isinstance(locker, ProxyLocker)
    proxy = locker.unlock()
    assert proxy == [5]
    unlocked = pickle.loads(pickle.dumps(locker)).unlock()
    assert unlocked == [5]


def test_owned_proxy(local_store: Store[Any]) -> None:
    from proxystore.store.ref import OwnedProxy

    owned = local_store.owned_proxy([7])
    assert isinstance(owned, OwnedProxy)
    key = get_key(owned)
    assert local_store.exists(key)
    assert owned == [7]
    del owned
    assert not local_store.exists(key)
    assert local_store.owned_proxy(None) is None


# -------------------------------------------------------------------- futures
def test_future_and_set(local_store: Store[Any]) -> None:
    future = local_store.future(polling_interval=0.001)
    assert not future.done()
    future.set_result({"x": 1})
    assert future.done()
    assert future.result() == {"x": 1}
    local_store.evict(future.key)


def test_set_overwrites_and_drops_cache(local_store: Store[Any]) -> None:
    key = local_store.put("old")
    assert local_store.get(key) == "old"
    local_store._set(key, "new")
    assert not local_store.is_cached(key)
    assert local_store.get(key) == "new"


def test_future_needs_deferrable_connector() -> None:
    multi = MultiConnector({"local": (LocalConnector(), Policy())})
    with Store(_name(), multi) as store:
        with pytest.raises(NotImplementedError, match="DeferrableConnector"):
            store.future()
        with pytest.raises(NotImplementedError, match="MultiConnector"):
            store._set(("k",), 1)
        # Everything else works through any connector.
        assert store.proxy("m") == "m"


# --------------------------------------------------------------------- config
def test_config_and_from_config(any_store: Store[Any]) -> None:
    config = any_store.config()
    assert isinstance(config, StoreConfig)
    assert config is any_store.config()  # computed once
    assert config.name == any_store.name
    assert config.auto_register is True
    cls = type(any_store.connector)
    assert config.connector.kind == f"{cls.__module__}.{cls.__qualname__}"
    assert config.connector.options == any_store.connector.config()
    assert pickle.loads(pickle.dumps(config)) == config
    any_store.close()  # frees the name for the rebuilt (self-registering) store
    with Store.from_config(config) as rebuilt:
        assert type(rebuilt.connector) is cls
        assert rebuilt.config() == config
        assert get_store(config.name) is rebuilt


def test_store_factory_in_proxy(local_store: Store[Any]) -> None:
    from proxystore.proxy import get_factory

    proxy = local_store.proxy("f")
    factory = get_factory(proxy)
    assert isinstance(factory, StoreFactory)
    assert factory.store_config == local_store.config()
    assert factory.get_store() is local_store


class _BrokenConnector(LocalConnector):
    """Fails like an unreachable server would."""

    def put(self, obj: Any) -> LocalKey:
        raise ConnectorConnectionError(
            "cannot reach 127.0.0.1:1", address="127.0.0.1:1"
        )

    def get(self, key: LocalKey) -> bytes | None:
        raise ConnectorTimeoutError("get timed out")


def test_connector_errors_propagate_typed() -> None:
    with Store(_name(), _BrokenConnector(), register=True) as store:
        with pytest.raises(ConnectorConnectionError, match=r"127\.0\.0\.1:1"):
            store.proxy("x")
        with pytest.raises(ConnectorTimeoutError):
            store.get(("k",))
        with pytest.raises(ProxyResolveError) as info:
            extract(store.proxy_from_key(("k",)))
        assert isinstance(info.value.__cause__, ConnectorTimeoutError)


# ------------------------------------------------------------ parts shortcut
def test_local_bytes_are_stored_and_returned_without_copy() -> None:
    data = bytes(range(256)) * 4000
    with Store(_name(), LocalConnector(), cache_size=0, register=True) as store:
        key = store.put(data)
        assert store.get(key) is data
        # The connector's own reader still returns the serialized payload.
        assert store.connector.get(LocalKey(*key)) == serialize(data)
        proxy = _roundtrip(store.proxy(data, evict=True))
        assert extract(proxy) is data
        assert not store.exists(get_key(proxy))
        # Mutable input is copied: later changes do not reach the stored object.
        mutable = bytearray(b"abc")
        key = store.put(mutable)
        mutable[0] = ord("X")
        assert store.get(key) == bytearray(b"abc")


class _CountingGets(LocalConnector):
    gets = 0

    def get(self, key: LocalKey) -> bytes | None:
        type(self).gets += 1
        return super().get(key)


def test_overridden_or_patched_plain_methods_are_called() -> None:
    with Store(_name(), _CountingGets(), cache_size=0) as store:
        key = store.put(b"x")
        assert store.get(key) == b"x"
        assert _CountingGets.gets == 1
    with Store(_name(), LocalConnector(), cache_size=0) as store:
        key = store.put(b"y")
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(store.connector, "get", lambda key: None)
            assert store.get(key) is None
            mp.setattr(LocalConnector, "get_evict", lambda self, key: serialize(b"z"))
            assert store.get_evict(key) == b"z"
        assert store.get(key) == b"y"
