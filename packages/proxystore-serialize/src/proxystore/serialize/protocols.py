"""Contracts for pluggable (de)serializers.

A :class:`~proxystore.store.Store` accepts any callable matching :class:`Serializer`
and :class:`Deserializer`; :func:`proxystore.serialize.serialize` and
:func:`proxystore.serialize.deserialize` are the defaults and satisfy both.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["BytesLike", "Deserializer", "Serializer"]

#: A contiguous buffer of bytes: what serializers produce and deserializers accept.
#: The same alias as :data:`proxystore.connectors.protocols.BytesLike`.
BytesLike = bytes | bytearray | memoryview


class Serializer(Protocol):
    """Turns an object into bytes: ``(obj) -> BytesLike``."""

    def __call__(self, obj: Any, /) -> BytesLike:
        """Encode ``obj``; raise (ideally ``SerializationError``) if it cannot."""
        ...


class Deserializer(Protocol):
    """Turns bytes back into an object: ``(data) -> Any``.

    It must accept every :data:`BytesLike` type, because connectors may hand back a
    ``memoryview`` over memory they own instead of a ``bytes`` copy.
    """

    def __call__(self, data: BytesLike, /) -> Any:
        """Decode ``data``; raise (ideally ``SerializationError``) if it cannot."""
        ...
