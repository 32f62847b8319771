"""Contracts for pluggable (de)serializers.

A [`Store`][proxystore.store.Store] accepts any callable matching `Serializer`
and `Deserializer`; `proxystore.serialize.serialize` and
`proxystore.serialize.deserialize` are the defaults and satisfy both.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["BytesLike", "Deserializer", "Serializer"]

#: A contiguous buffer of bytes: what serializers produce and deserializers accept.
#: The same alias as `proxystore.connectors.protocols.BytesLike`.
BytesLike = bytes | bytearray | memoryview


class Serializer(Protocol):
    """Turns an object into bytes: ``(obj) -> BytesLike``."""

    def __call__(self, obj: Any, /) -> BytesLike:
        """Encode ``obj``; raise (ideally ``SerializationError``) if it cannot."""
        ...


class Deserializer(Protocol):
    """Turns bytes back into an object: ``(data) -> Any``.

    It must accept every `BytesLike` type, because connectors may hand back a
    ``memoryview`` over memory they own instead of a ``bytes`` copy.
    """

    def __call__(self, data: BytesLike, /) -> Any:
        """Decode ``data``; raise (ideally ``SerializationError``) if it cannot."""
        ...
