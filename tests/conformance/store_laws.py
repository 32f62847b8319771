"""Laws every store obeys, whatever its connector, as a reusable test class.

How a connector joins (one small class in its own test module)::

    import pytest
    from tests.conformance.store_laws import StoreLaws

    class TestRedisStoreLaws(StoreLaws):
        @pytest.fixture(scope="class")
        @classmethod  # pytest deprecates class-scoped instance-method fixtures
        def store_connector(cls, redis_server):
            with RedisConnector(redis_server.host, redis_server.port) as c:
                yield c

The fixture yields one open connector and closes it afterwards. Hypothesis reruns
each law many times on the same connector (keys are unique, so examples do not
interfere), hence a class or module scope is best. ``StoreLaws`` has no ``Test``
prefix so pytest collects only its subclasses.

The laws: ``get(put(x)) == x``; a proxy pickled (as it travels to another process)
resolves to an equal object; batch operations equal their single counterparts;
``exists`` and ``evict`` agree; and a rule-based state machine of
put/get/evict/exists/proxy matches a plain dict model.
"""

from __future__ import annotations

import pickle
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)

from proxystore.proxy import Proxy, ProxyResolveError, extract, is_resolved
from proxystore.store import Store
from proxystore.store.exceptions import ProxyResolveMissingKeyError
from proxystore.store.utils import get_key

__all__ = ["StoreLaws", "store_objects"]

_scalars = st.one_of(
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.binary(max_size=200),
    st.complex_numbers(allow_nan=False),
)

#: Objects a store must round-trip: nested containers of plain values. ``None`` and
#: bools appear only *inside* containers (alone they are not proxiable).
store_objects: st.SearchStrategy[Any] = st.one_of(
    _scalars,
    st.recursive(
        st.one_of(_scalars, st.none(), st.booleans()),
        lambda inner: st.one_of(
            st.lists(inner, max_size=5),
            st.tuples(inner, inner),
            st.dictionaries(st.text(max_size=8), inner, max_size=5),
        ),
        max_leaves=12,
    ).filter(lambda obj: isinstance(obj, list | tuple | dict)),
)

# The store fixture is reused across Hypothesis examples on purpose (see above), and
# the same law runs in several subclasses (one per connector): both are intended.
_SUPPRESSED = [HealthCheck.function_scoped_fixture, HealthCheck.differing_executors]
_laws = settings(suppress_health_check=_SUPPRESSED)


def _travel(proxy: Proxy[Any]) -> Proxy[Any]:
    """What another process receives: a fresh, unresolved copy."""
    copy: Proxy[Any] = pickle.loads(pickle.dumps(proxy))
    return copy


class StoreLaws:
    """Hypothesis laws of :class:`~proxystore.store.Store` over one connector.

    Subclasses provide a ``store_connector`` fixture; see the module docstring.
    """

    @pytest.fixture
    def law_store(self, store_connector: Any) -> Iterator[Store[Any]]:
        # Registered, so pickled proxies find this very store (and its data) by name;
        # not closed here: the connector belongs to the store_connector fixture.
        store = Store(f"laws-{uuid.uuid4().hex}", store_connector, register=True)
        try:
            yield store
        finally:
            store.cache.clear()
            from proxystore.store import unregister_store

            unregister_store(store)

    @_laws
    @given(obj=store_objects)
    def test_get_of_put_is_equal(self, law_store: Store[Any], obj: Any) -> None:
        key = law_store.put(obj)
        assert law_store.get(key) == obj
        law_store.evict(key)

    @_laws
    @given(obj=store_objects, populate=st.booleans())
    def test_travelled_proxy_resolves_equal(
        self, law_store: Store[Any], obj: Any, populate: bool
    ) -> None:
        proxy = law_store.proxy(obj, populate_target=populate)
        assert is_resolved(proxy) is populate
        law_store.cache.clear()  # the copy must really fetch
        copy = _travel(proxy)
        assert not is_resolved(copy)
        assert extract(copy) == obj
        assert get_key(copy) == get_key(proxy)
        law_store.evict(get_key(proxy))

    @_laws
    @given(objs=st.lists(store_objects, max_size=5))
    def test_batch_equals_single(self, law_store: Store[Any], objs: list[Any]) -> None:
        keys = law_store.put_batch(objs)
        assert len(set(keys)) == len(objs)
        assert [law_store.get(k) for k in keys] == objs
        proxies = law_store.proxy_batch(objs, populate_target=False)
        assert [extract(_travel(p)) for p in proxies] == objs
        for key in [*keys, *(get_key(p) for p in proxies)]:
            law_store.evict(key)

    @_laws
    @given(obj=store_objects)
    def test_exists_and_evict_agree(self, law_store: Store[Any], obj: Any) -> None:
        key = law_store.put(obj)
        assert law_store.exists(key)
        law_store.get(key)  # fill the cache: evict must clear it too
        law_store.evict(key)
        assert not law_store.exists(key)
        assert not law_store.is_cached(key)
        assert law_store.get(key, default=law_store) is law_store
        with pytest.raises(ProxyResolveError) as info:
            extract(law_store.proxy_from_key(key))
        assert isinstance(info.value.__cause__, ProxyResolveMissingKeyError)

    @_laws
    @given(obj=store_objects)
    def test_evict_on_resolve(self, law_store: Store[Any], obj: Any) -> None:
        proxy = _travel(law_store.proxy(obj, evict=True))
        key = get_key(proxy)
        assert law_store.exists(key)
        assert extract(proxy) == obj
        assert not law_store.exists(key)

    def test_store_matches_dict_model(self, law_store: Store[Any]) -> None:
        store = law_store

        class StoreVsDict(RuleBasedStateMachine):
            keys = Bundle("keys")

            def __init__(self) -> None:
                super().__init__()
                self.model: dict[Any, Any] = {}
                self.gone: list[Any] = []

            @rule(target=keys, obj=store_objects)
            def put(self, obj: Any) -> Any:
                key = store.put(obj)
                self.model[key] = obj
                return key

            @rule(target=keys, obj=store_objects)
            def proxy(self, obj: Any) -> Any:
                key = get_key(store.proxy(obj))
                self.model[key] = obj
                return key

            @rule(key=keys)
            def get(self, key: Any) -> None:
                assert store.get(key) == self.model.get(key)

            @rule(key=keys)
            def resolve(self, key: Any) -> None:
                if key in self.model:
                    assert extract(store.proxy_from_key(key)) == self.model[key]

            @rule(key=consumes(keys))
            def evict(self, key: Any) -> None:
                store.evict(key)
                self.model.pop(key, None)
                self.gone.append(key)

            @rule(key=keys)
            def exists(self, key: Any) -> None:
                assert store.exists(key) == (key in self.model)

            @invariant()
            def evicted_stay_gone(self) -> None:
                for key in self.gone[-3:]:
                    assert not store.exists(key)

            def teardown(self) -> None:
                for key in self.model:
                    store.evict(key)

        run_state_machine_as_test(
            StoreVsDict,
            settings=settings(
                max_examples=25,
                stateful_step_count=20,
                deadline=None,
                suppress_health_check=_SUPPRESSED,
            ),
        )
