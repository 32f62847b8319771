"""Errors raised by `proxystore.serialize`.

Exception tree::

    ValueError
     └── SerializationError   an object cannot be encoded or a payload decoded
          ├── PayloadAuthenticationError   a signed payload fails verification
          └── DisallowedTypeError          a restricted load meets a global
                                           outside its allow-list
"""

from __future__ import annotations

__all__ = ["DisallowedTypeError", "PayloadAuthenticationError", "SerializationError"]


class SerializationError(ValueError):
    """Raised when an object cannot be serialized or a payload cannot be deserialized.

    It subclasses `ValueError` so code written against the reference
    release, which raises ``ValueError`` for non bytes-like input, keeps working.
    """


class PayloadAuthenticationError(SerializationError):
    """Raised when a payload is unsigned, truncated, or its HMAC does not match.

    Raised before any byte of the payload is decoded, so nothing of a tampered
    payload (no pickle opcode) has run.
    """


class DisallowedTypeError(SerializationError):
    """Raised when a restricted deserializer meets a global outside its allow-list.

    The global's module is not imported.
    """

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path
        """Dotted path (``module.qualname``) of the refused global."""
