"""Errors raised by `proxystore.serialize`.

Exception tree::

    ValueError
     └── SerializationError   an object cannot be encoded or a payload decoded
"""

from __future__ import annotations

__all__ = ["SerializationError"]


class SerializationError(ValueError):
    """Raised when an object cannot be serialized or a payload cannot be deserialized.

    It subclasses `ValueError` so code written against the reference
    release, which raises ``ValueError`` for non bytes-like input, keeps working.
    """
