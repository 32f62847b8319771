"""A Dask ``distributed.Client`` that sends large task data through a store.

Install with the ``dask`` extra. Arguments and results whose serialized size reaches
``ps_threshold`` bytes travel as small proxies; the scheduler and the comms between
client and workers never carry the payload. Argument keys are evicted once their task
is done; result proxies evict their key when they are first resolved, so resolve a
large result once (e.g. ``future.result()``) rather than in several tasks.

Only this module imports ``dask``: the rest of `proxystore.store` works without
it.
"""

from __future__ import annotations

import pickle
import threading
import warnings
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from distributed import Client as _DaskClient
from distributed.protocol.serialize import dask_deserialize, dask_serialize

from proxystore.proxy import Proxy, get_factory
from proxystore.store.utils import get_key

if TYPE_CHECKING:
    from proxystore.store.base import Store
    from proxystore.store.config import StoreConfig

__all__ = ["Client"]

T = TypeVar("T")


def _is_proxy(item: object) -> bool:
    # type() not isinstance(): isinstance() would resolve a proxy through __class__.
    return issubclass(type(item), Proxy)


def _dask_dumps_proxy(proxy: Proxy[Any]) -> tuple[dict[str, Any], list[bytes]]:
    # Dask's generic pickle path calls inspect.getmodule(x), i.e. x.__module__, which
    # a proxy forwards to its target: it would fetch (and, with evict, delete) the
    # object in the worker. A proxy pickles as its factory: say so to Dask directly.
    return {}, [pickle.dumps(proxy, protocol=pickle.HIGHEST_PROTOCOL)]


def _dask_loads_proxy(header: dict[str, Any], frames: list[bytes]) -> Proxy[Any]:
    proxy: Proxy[Any] = pickle.loads(frames[0])
    return proxy


dask_serialize.register(Proxy)(_dask_dumps_proxy)  # type: ignore[no-untyped-call]
dask_deserialize.register(Proxy)(_dask_loads_proxy)  # type: ignore[no-untyped-call]


class _FixedBytes:
    """A serializer that returns bytes already computed (so we serialize once)."""

    def __init__(self, data: Any) -> None:
        self.data = data

    def __call__(self, obj: object) -> Any:
        return self.data


def _proxy_if_large(
    store: Store[Any], obj: object, threshold: int, *, evict: bool, populate: bool
) -> Any:
    """Return a proxy of ``obj`` if it serializes to ``threshold`` bytes or more."""
    if obj is None or isinstance(obj, bool) or _is_proxy(obj):
        return obj
    data = store.serializer(obj)
    if len(data) < threshold:
        return obj
    key = store.put(obj, serializer=_FixedBytes(data))
    factory = get_factory(store.proxy_from_key(key, evict=evict))
    # Cached class/hash let Dask's isinstance() checks (e.g. while serializing a
    # task result) run without resolving, which would fetch -- and, with evict,
    # delete -- the object before its consumer gets it.
    proxy: Proxy[Any] = Proxy(factory, cache_defaults=True, target=obj)
    if not populate:
        # A worker keeps only the small proxy in its memory, not the target.
        del proxy.__proxy_wrapped__
    return proxy


class _ResultProxyTask(Generic[T]):
    """The function Dask runs: calls ``fn`` and proxies a large result.

    Pickles as (function, store config, threshold); the worker finds or creates the
    store from the config.
    """

    def __init__(
        self, fn: Callable[..., T], config: StoreConfig, threshold: int
    ) -> None:
        self.fn = fn
        self.config = config
        self.threshold = threshold
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)

    def __call__(self, *args: Any, **kwargs: Any) -> T | Proxy[T]:
        result = self.fn(*args, **kwargs)
        from proxystore.store import get_or_create_store

        store = get_or_create_store(self.config, register=True)
        out: T | Proxy[T] = _proxy_if_large(
            store, result, self.threshold, evict=True, populate=False
        )
        return out

    def __dask_tokenize__(self) -> tuple[Any, ...]:
        from dask.base import tokenize

        return ("proxystore-result-task", tokenize(self.fn), self.threshold)


class Client(_DaskClient):
    """A `distributed.Client` that proxies large arguments and results.

    Args:
        args: Positional arguments of `distributed.Client`.
        ps_store: The store used for large data; ``None`` disables proxying. It
            should be registered (see `proxystore.store.register_store`) so
            resolving proxies in this process reuses it.
        ps_threshold: Serialized size in bytes from which an object is proxied.
        kwargs: Keyword arguments of `distributed.Client`.
    """

    def __init__(
        self,
        *args: Any,
        ps_store: Store[Any] | None = None,
        ps_threshold: int = 100_000,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        if ps_store is not None:
            from proxystore.store import get_store

            if get_store(ps_store.name) is None:
                warnings.warn(
                    f"The store {ps_store.name!r} given to the Dask client is not "
                    "registered: proxies resolved in this process will create a "
                    "second store from its config. Register it with "
                    "proxystore.store.register_store().",
                    UserWarning,
                    stacklevel=2,
                )
        self._ps_store = ps_store
        self._ps_threshold = ps_threshold

    def _proxy_value(self, value: Any, keys: list[Any]) -> Any:
        assert self._ps_store is not None
        out = _proxy_if_large(
            self._ps_store, value, self._ps_threshold, evict=False, populate=True
        )
        if out is not value:
            keys.append(get_key(out))
        return out

    def _evict_callback(self, keys: list[Any]) -> Callable[[object], None]:
        store = self._ps_store
        assert store is not None

        def _evict(_: object) -> None:
            for key in keys:
                store.evict(key)

        return _evict

    def _wrap(self, func: Callable[..., T], proxy_result: bool) -> Callable[..., Any]:
        if not proxy_result or self._ps_store is None:
            return func
        return _ResultProxyTask(func, self._ps_store.config(), self._ps_threshold)

    def submit(
        self,
        func: Callable[..., T],
        *args: Any,
        key: Any = None,
        pure: bool = True,
        actor: bool = False,
        actors: bool = False,
        proxy_args: bool = True,
        proxy_result: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Submit ``func(*args, **kwargs)``; large arguments/results travel as proxies.

        Accepts every keyword of `distributed.Client.submit`, plus:

        Args:
            proxy_args: Proxy arguments at or above the threshold.
            proxy_result: Return a result at or above the threshold as a proxy.

        Returns:
            A `distributed.Future`. Actors are never proxied.
        """
        if self._ps_store is None or actor or actors:
            return super().submit(
                func, *args, key=key, pure=pure, actor=actor, actors=actors, **kwargs
            )
        options, task_kwargs = _split_options(kwargs)
        keys: list[Any] = []
        if proxy_args:
            args = tuple(self._proxy_value(a, keys) for a in args)
            task_kwargs = {
                n: self._proxy_value(v, keys) for n, v in task_kwargs.items()
            }
        future = super().submit(
            self._wrap(func, proxy_result),
            *args,
            key=key,
            # Fresh keys make each proxied call distinct anyway; tokenizing a proxy
            # would touch its target.
            pure=pure and not keys,
            **options,
            **task_kwargs,
        )
        if keys:
            future.add_done_callback(  # type: ignore[no-untyped-call]
                self._evict_callback(keys)
            )
        return future

    def map(
        self,
        func: Callable[..., T],
        *iterables: Collection[Any],
        key: Any = None,
        pure: bool = True,
        actor: bool = False,
        actors: bool = False,
        proxy_args: bool = True,
        proxy_result: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Map ``func`` over ``iterables``; large items/results travel as proxies.

        Accepts every keyword of `distributed.Client.map`, plus
        ``proxy_args`` and ``proxy_result`` (see `submit`). Each item's keys
        are evicted when its task is done; keys of shared keyword arguments when
        all tasks are done.

        Returns:
            A list of `distributed.Future`.
        """
        if self._ps_store is None or actor or actors:
            return super().map(
                func,
                *iterables,
                key=key,
                pure=pure,
                actor=actor,
                actors=actors,
                **kwargs,
            )
        options, task_kwargs = _split_options(kwargs, extra=("batch_size",))
        columns = [list(it) for it in iterables]
        rows = list(zip(*columns, strict=False))
        row_keys: list[list[Any]] = [[] for _ in rows]
        shared_keys: list[Any] = []
        if proxy_args:
            rows = [
                tuple(self._proxy_value(v, row_keys[i]) for v in row)
                for i, row in enumerate(rows)
            ]
            task_kwargs = {
                n: self._proxy_value(v, shared_keys) for n, v in task_kwargs.items()
            }
        proxied = shared_keys or any(row_keys)
        new_columns = (
            [list(col) for col in zip(*rows, strict=True)] if rows else columns
        )
        futures = super().map(
            self._wrap(func, proxy_result),
            *new_columns,
            key=key,
            pure=pure and not proxied,
            **options,
            **task_kwargs,
        )
        for future, keys in zip(futures, row_keys, strict=True):
            if keys:
                future.add_done_callback(  # type: ignore[no-untyped-call]
                    self._evict_callback(keys)
                )
        if shared_keys:
            _evict_after_all(futures, self._evict_callback(shared_keys))
            # The reference warns here too: code written for it may rely on it.
            warnings.warn(
                "A keyword argument to map() was proxied: one object shared by "
                "every task, kept in the store until all the tasks are done.",
                stacklevel=2,
            )
        return futures


# Keywords that configure the Dask submission itself (not the task function).
_SUBMIT_OPTIONS = (
    "workers",
    "resources",
    "retries",
    "priority",
    "fifo_timeout",
    "allow_other_workers",
)


def _split_options(
    kwargs: Mapping[str, Any], extra: tuple[str, ...] = ()
) -> tuple[dict[str, Any], dict[str, Any]]:
    names = (*_SUBMIT_OPTIONS, *extra)
    options = {k: v for k, v in kwargs.items() if k in names}
    task_kwargs = {k: v for k, v in kwargs.items() if k not in names}
    return options, task_kwargs


def _evict_after_all(futures: list[Any], callback: Callable[[object], None]) -> None:
    remaining = len(futures)
    lock = threading.Lock()

    def _one_done(_: object) -> None:
        nonlocal remaining
        with lock:
            remaining -= 1
            last = remaining == 0
        if last:
            callback(None)

    if not futures:
        callback(None)
    for future in futures:
        future.add_done_callback(_one_done)
