"""``ttl=`` on the store's puts and proxies, and leases recorded in the backend."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pytest

from proxystore.connectors.local import LocalConnector, LocalKey
from proxystore.connectors.protocols import BytesLike, ExpiringConnector
from proxystore.store.base import Store
from proxystore.store.lifetimes import ContextLifetime, LeaseLifetime
from proxystore.store.ref import OwnedProxy
from proxystore.store.utils import get_key


class ExpiringLocal(LocalConnector):
    """A dict connector that records each object's deadline (a test double)."""

    def __init__(self) -> None:
        super().__init__()
        self.deadlines: dict[LocalKey, float] = {}
        self.expire_calls = 0

    def _live(self, key: LocalKey) -> bool:
        deadline = self.deadlines.get(key)
        if deadline is not None and time.time() >= deadline:
            self.evict(key)
            self.deadlines.pop(key, None)
        return key in self._store

    def put(self, obj: BytesLike, *, ttl: float | None = None) -> LocalKey:
        key = super().put(obj)
        if ttl is not None:
            self.deadlines[key] = time.time() + ttl
        return key

    def put_batch(
        self, objs: Sequence[BytesLike], *, ttl: float | None = None
    ) -> list[LocalKey]:
        return [self.put(obj, ttl=ttl) for obj in objs]

    def get(self, key: LocalKey) -> bytes | None:
        return super().get(key) if self._live(key) else None

    def exists(self, key: LocalKey) -> bool:
        return self._live(key)

    def expire(self, key: LocalKey, ttl: float | None) -> bool:
        self.expire_calls += 1
        if not self._live(key):
            return False
        if ttl is None:
            self.deadlines.pop(key, None)
        else:
            self.deadlines[key] = time.time() + ttl
        return True

    def ttl(self, key: LocalKey) -> float | None:
        if not self._live(key) or key not in self.deadlines:
            return None
        return max(0.0, self.deadlines[key] - time.time())


@pytest.fixture
def store() -> Any:
    with Store("ttl-store", ExpiringLocal(), cache_size=0, register=True) as s:
        yield s


def test_double_is_an_expiring_connector() -> None:
    assert isinstance(ExpiringLocal(), ExpiringConnector)
    assert not isinstance(LocalConnector(), ExpiringConnector)


def test_put_with_ttl_expires(store: Store[ExpiringLocal]) -> None:
    key = store.put("x", ttl=0.3)
    kept = store.put("y")
    left = store.ttl(key)
    assert left is not None
    assert 0 < left <= 0.3
    assert store.ttl(kept) is None
    time.sleep(0.35)
    assert store.get(key) is None
    assert not store.exists(key)
    assert store.get(kept) == "y"


def test_put_batch_and_proxies_carry_ttl(store: Store[ExpiringLocal]) -> None:
    keys = store.put_batch([1, 2], ttl=30)
    proxy = store.proxy([3], ttl=30, populate_target=False)
    batch = store.proxy_batch([4, 5], ttl=30)
    owned = store.owned_proxy([6], ttl=30)
    locked = store.locked_proxy([7], ttl=30)
    deadlines = store.connector.deadlines
    assert len(deadlines) == 7
    assert all(k in deadlines for k in keys)
    assert proxy == [3]
    assert isinstance(owned, OwnedProxy)
    assert len(batch) == 2
    assert locked.unlock() == [7]


def test_expire_and_persist(store: Store[ExpiringLocal]) -> None:
    key = store.put("x", ttl=0.3)
    assert store.expire(key, 30)
    left = store.ttl(key)
    assert left is not None
    assert left > 10
    assert store.expire(key, None)
    assert store.ttl(key) is None
    time.sleep(0.35)
    assert store.get(key) == "x"
    store.evict(key)
    assert not store.expire(key, 5)


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan")])
def test_bad_ttl_is_refused_before_storing(
    store: Store[ExpiringLocal], bad: float
) -> None:
    with pytest.raises(ValueError, match="ttl"):
        store.put("x", ttl=bad)
    with pytest.raises(ValueError, match="ttl"):
        store.proxy("x", ttl=bad)
    assert not store.connector._store


def test_ttl_needs_an_expiring_connector() -> None:
    with Store("plain-ttl", LocalConnector()) as plain:
        with pytest.raises(TypeError, match="ExpiringConnector"):
            plain.put("x", ttl=1)
        with pytest.raises(TypeError, match="ExpiringConnector"):
            plain.proxy_batch(["x"], ttl=1)
        with pytest.raises(TypeError, match="ExpiringConnector"):
            plain.expire(LocalKey("nope"), 1)
        assert not plain.connector._store


def test_lease_writes_its_end_with_the_object(store: Store[ExpiringLocal]) -> None:
    lease = LeaseLifetime(store, expiry=30)
    try:
        key = store.put("x", lifetime=lease)
        proxy = store.proxy("y", lifetime=lease)
        keys = store.put_batch([1, 2], lifetime=lease)
        proxies = store.proxy_batch([3, 4], lifetime=lease)
        conn = store.connector
        # Written with the TTL: no expire() round trip per key.
        assert conn.expire_calls == 0
        assert len(conn.deadlines) == 6
        assert all(abs(d - lease.expiry) < 1 for d in conn.deadlines.values())
        assert key in conn.deadlines
        assert len(keys) == 2
        assert proxy == "y"
        assert len(proxies) == 2
        # A key attached afterwards is armed with the lease's remaining time.
        late = LocalKey(*store.put("z"))
        lease.add_key(late)
        assert abs(conn.deadlines[late] - lease.expiry) < 1
        # Extending the lease extends it in the backend.
        lease.extend(60)
        assert all(abs(d - lease.expiry) < 1 for d in conn.deadlines.values())
        assert lease.expiry - time.time() > 80
    finally:
        lease.close()
    assert not store.connector._store


def test_lease_objects_expire_in_the_backend_without_the_timer(
    store: Store[ExpiringLocal],
) -> None:
    lease = LeaseLifetime(store, expiry=0.3)
    key = store.put("x", lifetime=lease)
    # As if this process had died: the in-process timer never fires.
    assert lease._timer is not None
    lease._timer.cancel()
    time.sleep(0.35)
    assert store.get(key) is None


def test_context_lifetime_keys_get_no_ttl(store: Store[ExpiringLocal]) -> None:
    with ContextLifetime(store) as life:
        store.put("x", lifetime=life)
        store.proxy("y", lifetime=life)
        assert not store.connector.deadlines


def test_lease_on_a_plain_connector_keeps_the_timer_only() -> None:
    with Store("plain-lease", LocalConnector()) as plain:
        lease = LeaseLifetime(plain, expiry=30)
        assert lease.backend_ttl(plain) is None
        key = plain.put("x", lifetime=lease)
        lease.extend(5)
        lease.close()
        assert not plain.exists(key)


_REVEAL = """
from proxystore.connectors.file import FileConnector
from proxystore.store import Store

store = Store("s", FileConnector("/tmp/x"))
reveal_type(store.proxy([1, 2, 3], ttl=5))
reveal_type(store.proxy_batch([1.5], ttl=5))
reveal_type(store.owned_proxy("a", ttl=5))
reveal_type(store.proxy([1], ttl=None, skip_nonproxiable=True))
"""


@pytest.mark.slow
def test_ttl_keeps_the_revealed_proxy_types(tmp_path: Any) -> None:
    mypy_api = pytest.importorskip("mypy.api")
    (tmp_path / "reveal.py").write_text(_REVEAL)
    stdout, stderr, status = mypy_api.run(
        [
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--config-file",
            "",
            str(tmp_path / "reveal.py"),
        ]
    )
    assert status == 0, stdout + stderr
    revealed = [
        line.split("Revealed type is ", 1)[1]
        for line in stdout.splitlines()
        if "Revealed type is" in line
    ]
    assert revealed == [
        '"proxystore.proxy.Proxy[list[int]]"',
        '"list[proxystore.proxy.Proxy[float]]"',
        '"proxystore.store.ref.OwnedProxy[str]"',
        '"proxystore.proxy.Proxy[list[int]] | list[int]"',
    ]


# --------------------------------------------------------------- the cache
@pytest.fixture
def cached() -> Any:
    with Store("ttl-cached", ExpiringLocal(), cache_size=16) as s:
        yield s


def test_cache_never_returns_an_object_past_the_ttl_it_was_put_with(
    cached: Store[ExpiringLocal],
) -> None:
    key = cached.put("x", ttl=0.3)
    (batched,) = cached.put_batch(["y"], ttl=0.3)
    proxied = get_key(cached.proxy("z", ttl=0.3, populate_target=False))
    plain = cached.put("kept")
    for k in (key, batched, plain, proxied):
        assert cached.get(k) is not None
        assert cached.is_cached(k)
    assert cached.get(plain) == "kept"
    time.sleep(0.35)
    assert cached.get(key) is None
    assert not cached.exists(batched)
    assert not cached.is_cached(proxied)
    assert cached.get(proxied, default="gone") == "gone"
    assert cached.get(plain) == "kept"  # no deadline: served from the cache
    assert cached.is_cached(plain)


def test_cache_follows_expire(cached: Store[ExpiringLocal]) -> None:
    key = cached.put("x")
    assert cached.get(key) == "x"
    assert cached.expire(key, 0.2)
    time.sleep(0.25)
    assert cached.get(key) is None
    longer = cached.put("y", ttl=0.2)
    assert cached.get(longer) == "y"
    assert cached.expire(longer, None)  # no deadline any more: cached for good
    time.sleep(0.25)
    assert cached.get(longer) == "y"


def test_cache_with_metrics_honours_deadlines() -> None:
    with Store("ttl-metrics", ExpiringLocal(), cache_size=4, metrics=True) as s:
        key = s.put("x", ttl=0.2)
        assert s.get(key) == "x"
        time.sleep(0.25)
        assert s.get(key) is None


def test_deadlines_of_expired_keys_are_forgotten(cached: Store[ExpiringLocal]) -> None:
    keys = cached.put_batch(list(range(100)), ttl=0.05)
    time.sleep(0.1)
    cached.put_batch(list(range(200)), ttl=30)  # past the pruning threshold
    assert not any(k in cached._deadlines for k in keys)
