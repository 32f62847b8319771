"""An executor wrapper that moves task data through a store instead of the executor.

`StoreExecutor` wraps any `concurrent.futures.Executor` (threads,
processes, Dask, Parsl, Globus Compute, ...). Task arguments chosen by a policy are
replaced with proxies before submission, so only small proxies travel through the
executor; task results chosen by the same policy come back as proxies (owned ones by
default, so dropping the result evicts it). The keys made for a task's arguments are
evicted as soon as the task completes.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from proxystore.proxy import Proxy
from proxystore.store.utils import get_key

if TYPE_CHECKING:
    from proxystore.store.base import Store
    from proxystore.store.config import StoreConfig

__all__ = ["ProxyAlways", "ProxyNever", "ProxyType", "StoreExecutor"]

P = ParamSpec("P")
T = TypeVar("T")


class ProxyAlways:
    """Policy: proxy every object."""

    def __call__(self, item: object) -> bool:
        return True

    def __repr__(self) -> str:
        return "ProxyAlways()"


class ProxyNever:
    """Policy: proxy nothing (the default)."""

    def __call__(self, item: object) -> bool:
        return False

    def __repr__(self) -> str:
        return "ProxyNever()"


class ProxyType:
    """Policy: proxy instances of any of ``types``."""

    def __init__(self, *types: type[Any]) -> None:
        self.types = types

    def __call__(self, item: object) -> bool:
        return isinstance(item, self.types)

    def __repr__(self) -> str:
        names = ", ".join(t.__name__ for t in self.types)
        return f"ProxyType({names})"


def _is_proxy(item: object) -> bool:
    # type() not isinstance(): isinstance() would resolve a proxy through __class__.
    return issubclass(type(item), Proxy)


class _ProxyResultTask(Generic[P, T]):
    """The task actually submitted: runs ``fn`` and proxies its result by policy.

    It pickles (for process pools and remote executors) as the function, the store
    config and the policy; the local store object is kept only in this process.
    """

    def __init__(
        self,
        fn: Callable[P, T],
        store: Store[Any],
        should_proxy: Callable[[Any], bool],
        ownership: bool,
    ) -> None:
        self.fn = fn
        self.config: StoreConfig = store.config()
        self.should_proxy = should_proxy
        self.ownership = ownership
        self._store: Store[Any] | None = store

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_store"] = None
        return state

    def _get_store(self) -> Store[Any]:
        if self._store is not None:
            return self._store
        from proxystore.store import get_or_create_store

        # Registering lets every later task in this worker reuse the connection.
        self._store = get_or_create_store(self.config, register=True)
        return self._store

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> T | Proxy[T]:
        result = self.fn(*args, **kwargs)
        if _is_proxy(result) or not self.should_proxy(result):
            return result
        store = self._get_store()
        if self.ownership:
            return store.owned_proxy(result)
        return store.proxy(result, skip_nonproxiable=True)


class StoreExecutor(Executor):
    """Wrap ``executor`` so task arguments and results pass through ``store``.

    Args:
        executor: The executor that runs the tasks.
        store: The store the proxied arguments and results are put in.
        should_proxy: Policy deciding which arguments and results are proxied
            ([`ProxyNever`][proxystore.store.executor.ProxyNever] when ``None``).
        ownership: Return proxied results as
            `OwnedProxy` (evicted when dropped) rather
            than plain proxies (which the caller must evict).
        close_store: Close ``store`` in `shutdown`.
    """

    def __init__(
        self,
        executor: Executor,
        store: Store[Any],
        should_proxy: Callable[[Any], bool] | None = None,
        *,
        ownership: bool = True,
        close_store: bool = True,
    ) -> None:
        self.executor = executor
        self.store = store
        self.should_proxy: Callable[[Any], bool] = (
            should_proxy if should_proxy is not None else ProxyNever()
        )
        self.ownership = ownership
        self.close_store = close_store

    def __repr__(self) -> str:
        return (
            f"StoreExecutor(executor={self.executor!r}, store={self.store!r}, "
            f"should_proxy={self.should_proxy!r})"
        )

    def _proxy_arg(self, item: Any, keys: list[Any]) -> Any:
        if _is_proxy(item) or not self.should_proxy(item):
            return item
        proxy = self.store.proxy(item, skip_nonproxiable=True)
        if _is_proxy(proxy):
            keys.append(get_key(proxy))
        return proxy

    def _evict_keys(self, keys: list[Any]) -> Callable[[object], None]:
        def _evict(_: object) -> None:
            for key in keys:
                self.store.evict(key)

        return _evict

    def submit(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[T]:
        """Schedule ``fn(*args, **kwargs)``, proxying arguments chosen by the policy.

        The returned future's result is the task's result, or a proxy of it when the
        policy says so. The arguments' keys are evicted when the task completes
        (successfully or not).

        Raises:
            RuntimeError: if the wrapped executor was shut down.
        """
        keys: list[Any] = []
        new_args = [self._proxy_arg(arg, keys) for arg in args]
        new_kwargs = {name: self._proxy_arg(v, keys) for name, v in kwargs.items()}
        task = _ProxyResultTask(fn, self.store, self.should_proxy, self.ownership)
        try:
            future = self.executor.submit(task, *new_args, **new_kwargs)
        except BaseException:
            self._evict_keys(keys)(None)
            raise
        if keys:
            future.add_done_callback(self._evict_keys(keys))
        return future  # type: ignore[return-value]

    # The reference names the callable `function`, so `fn=` is not accepted.
    def map(  # type: ignore[override]
        self,
        function: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
        **kwargs: Any,
    ) -> Iterator[T]:
        """Run ``function`` on the items of ``iterables``, like `map`.

        Without extra keywords each call goes through `submit`: its arguments
        are proxied and its result returned according to the policy, and each
        task's argument keys are evicted when that task completes.

        Extra ``kwargs`` are options of the wrapped executor's own ``map()`` (e.g.
        of an executor-like client), so the call is handed to it: arguments are
        proxied by the policy first, and their keys evicted once every result has
        been consumed. Results come in input order either way.

        Raises:
            TimeoutError: if a result is not ready ``timeout`` seconds after this
                call.
            TypeError: if the wrapped executor's ``map()`` rejects ``kwargs``.
            Exception: whatever a task raised, when its result is reached.
        """
        if not kwargs:
            return super().map(
                function, *iterables, timeout=timeout, chunksize=chunksize
            )
        keys: list[Any] = []
        columns = [[self._proxy_arg(item, keys) for item in it] for it in iterables]
        task = _ProxyResultTask(function, self.store, self.should_proxy, self.ownership)
        # Only pass the standard options the caller changed: executor-like
        # objects need not accept them.
        if timeout is not None:
            kwargs["timeout"] = timeout
        if chunksize != 1:
            kwargs["chunksize"] = chunksize
        try:
            results = self.executor.map(task, *columns, **kwargs)
        except BaseException:
            self._evict_keys(keys)(None)
            raise
        return self._collect(results, keys, timeout)

    def _collect(
        self, results: Iterable[Any], keys: list[Any], timeout: float | None
    ) -> Iterator[T]:
        try:
            for result in results:
                # Executor-like clients may hand back futures from map().
                if isinstance(result, Future) or callable(
                    getattr(result, "add_done_callback", None)
                ):
                    yield result.result(timeout)
                else:
                    yield result
        finally:
            self._evict_keys(keys)(None)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Shut down the wrapped executor, then close the store if ``close_store``.

        An executor that is not a `concurrent.futures.Executor` is closed with
        its ``close()`` method; one with neither gets a `RuntimeWarning`.
        """
        if isinstance(self.executor, Executor):
            self.executor.shutdown(wait=wait, cancel_futures=cancel_futures)
        elif callable(getattr(self.executor, "close", None)):
            self.executor.close()
        else:
            warnings.warn(
                f"Cannot shut down {type(self.executor).__name__}: it has neither "
                "shutdown() nor close().",
                RuntimeWarning,
                stacklevel=2,
            )
        if self.close_store:
            self.store.close()
