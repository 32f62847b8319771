"""Futures: a proxy to an object that does not exist yet.

``Store.future()`` reserves a key on a deferrable connector and wraps a
`PollingStoreFactory` for it in a [`Future`][proxystore.store.future.Future].
Any process holding the future (it pickles) can `set_result`; any
process holding it, or a `proxy` of it, blocks on first use until the
result is there. When the connector implements
[`WaitableConnector`][proxystore.connectors.protocols.WaitableConnector] the wait is a
notification, otherwise the factory polls with backoff.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from proxystore.proxy import Proxy

if TYPE_CHECKING:
    from proxystore.store.factory import PollingStoreFactory
    from proxystore.store.types import ConnectorKeyT, SerializerT

__all__ = ["Future"]

T = TypeVar("T")


class Future(Generic[T]):
    """The eventual result of a computation, stored in a store under a reserved key.

    Args:
        factory: The polling factory that resolves the reserved key.
        serializer: Serializer used by `set_result` (the store's when ``None``).
    """

    __slots__ = ("factory", "serializer")

    def __init__(
        self,
        factory: PollingStoreFactory[Any, T],
        *,
        serializer: SerializerT | None = None,
    ) -> None:
        self.factory = factory
        self.serializer = serializer

    @property
    def key(self) -> ConnectorKeyT:
        """The connector key the result is (or will be) stored at."""
        return self.factory.key

    def done(self) -> bool:
        """Return whether the result has been set (does not block)."""
        return self.factory.get_store().exists(self.factory.key)

    def result(self, timeout: float | None = None) -> T:
        """Block until the result is set and return it.

        Args:
            timeout: Seconds to wait at most; ``None`` uses the factory's
                ``polling_timeout`` (which itself may be ``None``: wait forever).

        Raises:
            ProxyResolveMissingKeyError: if the result was not set in time; the error
                names the store and the key.
        """
        factory = self.factory
        if timeout is not None:
            # A shallow copy keeps the caller's future (and its defaults) untouched.
            factory = copy.copy(factory)
            factory.polling_timeout = timeout
        return factory.resolve()

    def set_result(self, obj: T) -> None:
        """Store ``obj`` as the result, waking every waiter.

        Raises:
            NotImplementedError: if the store's connector cannot set deferred keys.
        """
        self.factory.get_store()._set(self.factory.key, obj, serializer=self.serializer)

    def proxy(self) -> Proxy[T]:
        """Return a new proxy of the result; using it blocks until the result is set."""
        return Proxy(self.factory)

    def __repr__(self) -> str:
        # No store round trip: repr must work even when the store is unreachable.
        name = self.factory.store_config.name
        return f"Future(key={self.factory.key!r}, store={name!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {"factory": self.factory, "serializer": self.serializer}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.factory = state["factory"]
        self.serializer = state["serializer"]
