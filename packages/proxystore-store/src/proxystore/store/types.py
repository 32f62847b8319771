"""Type aliases shared by the store modules.

Connector keys are ``NamedTuple`` instances (see
`proxystore.connectors.protocols`); a store does not know which connector it
wraps at the type level, so it treats every key as a plain ``tuple``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias, TypeVar

from proxystore.connectors.protocols import BytesLike, Connector

__all__ = [
    "ConnectorKeyT",
    "ConnectorT",
    "DeserializerT",
    "NonProxiableT",
    "SerializerT",
]

#: The connector type a [`Store`][proxystore.store.base.Store] is generic in.
ConnectorT = TypeVar("ConnectorT", bound=Connector[Any])

#: Any connector key: every key is a ``NamedTuple``, hence a tuple.
ConnectorKeyT: TypeAlias = tuple[Any, ...]

#: Turns an object into bytes (the default is `proxystore.serialize.serialize`).
SerializerT: TypeAlias = Callable[[Any], BytesLike]

#: Turns bytes back into an object (default `proxystore.serialize.deserialize`).
DeserializerT: TypeAlias = Callable[[BytesLike], Any]

#: Objects that a store refuses to proxy: a proxy of them cannot behave like them
#: (``is None`` and ``is True`` identity checks would silently be false).
NonProxiableT = TypeVar("NonProxiableT", bool, None)


class _Missing:
    """Type of `_MISSING`, the "no object" marker distinct from ``None``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<MISSING>"


#: Returned by ``Store.get(..., default=_MISSING)`` when nothing is stored: lets the
#: factories tell a missing key from a stored ``None`` without a second round trip.
_MISSING = _Missing()
