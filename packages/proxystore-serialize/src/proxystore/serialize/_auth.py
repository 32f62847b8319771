"""Payload authentication: an HMAC-SHA256 prefix that rejects tampered payloads.

Signed layout::

    byte 0      format version (1)
    bytes 1-2   tag b"SG"
    bytes 3-34  HMAC-SHA256(key, payload)
    bytes 35-   payload (any bytes, normally the output of ``serialize``)

A store that shares ``key`` among its processes signs on put and verifies on get,
so a payload altered in the backend (or written by someone without the key) is
refused *before* it reaches pickle.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Final

from proxystore.serialize._core import FORMAT_VERSION, _as_payload, _join
from proxystore.serialize._core import deserialize as _deserialize
from proxystore.serialize._core import serialize as _serialize
from proxystore.serialize.exceptions import SerializationError
from proxystore.serialize.protocols import BytesLike, Deserializer, Serializer

__all__ = ["sign", "signed_deserializer", "signed_serializer", "verify"]

_SIGNED: Final = bytes((FORMAT_VERSION,)) + b"SG"
_DIGEST: Final = hashlib.sha256().digest_size
_HEADER_LEN: Final = len(_SIGNED) + _DIGEST


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes | bytearray):
        raise TypeError(f"HMAC key must be bytes, got {type(key).__name__}.")
    if not key:
        raise ValueError("HMAC key must not be empty.")


def sign(data: BytesLike, key: bytes) -> bytes:
    """Return ``data`` prefixed with its HMAC-SHA256 under ``key``.

    Raises:
        TypeError: If ``key`` is not bytes.
        ValueError: If ``key`` is empty.
        SerializationError: If ``data`` is not a contiguous bytes-like buffer.
    """
    _check_key(key)
    payload = _as_payload(data)
    mac = hmac.digest(key, payload, "sha256")
    return _join([_SIGNED, mac, payload], _HEADER_LEN + len(payload))


def verify(data: BytesLike, key: bytes) -> memoryview:
    """Check the signature added by `sign`; return the payload without a copy.

    The returned view shares memory (and writability) with ``data``.

    Raises:
        TypeError: If ``key`` is not bytes.
        ValueError: If ``key`` is empty.
        SerializationError: If ``data`` is not signed, is truncated, or its HMAC
            does not match (tampered payload or wrong key).
    """
    _check_key(key)
    view = memoryview(_as_payload(data))
    if len(view) < _HEADER_LEN or view[: len(_SIGNED)] != _SIGNED:
        raise SerializationError(
            "payload is not signed: expected a signature header of "
            f"{_HEADER_LEN} bytes starting with {_SIGNED!r}"
        )
    payload = view[_HEADER_LEN:]
    expected = hmac.digest(key, payload, "sha256")
    if not hmac.compare_digest(expected, view[len(_SIGNED) : _HEADER_LEN]):
        raise SerializationError(
            "payload authentication failed: HMAC mismatch (tampered data or wrong key)"
        )
    return payload


def signed_serializer(key: bytes, serializer: Serializer = _serialize) -> Serializer:
    """Return a serializer that signs ``serializer``'s output with ``key``.

    Raises:
        TypeError, ValueError: If ``key`` is not non-empty bytes.
    """
    _check_key(key)

    def serialize_signed(obj: Any, /) -> bytes:
        return sign(serializer(obj), key)

    return serialize_signed


def signed_deserializer(
    key: bytes, deserializer: Deserializer = _deserialize
) -> Deserializer:
    """Return a deserializer that verifies ``key``'s signature before decoding.

    Raises:
        TypeError, ValueError: If ``key`` is not non-empty bytes.
    """
    _check_key(key)

    def deserialize_verified(data: BytesLike, /) -> Any:
        return deserializer(verify(data, key))

    return deserialize_verified
