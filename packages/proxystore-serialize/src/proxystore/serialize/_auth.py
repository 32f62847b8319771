"""Payload authentication: a MAC prefix that rejects tampered payloads.

Signed layout::

    byte 0      format version (1)
    bytes 1-2   tag: b"SG" HMAC-SHA256, b"SB" keyed BLAKE3
    bytes 3-34  the 32-byte MAC of the payload under the key
    bytes 35-   payload (any bytes, normally the output of ``serialize``)

A store that shares ``key`` among its processes signs on put and verifies on get,
so a payload altered in the backend (or written by someone without the key) is
refused *before* it reaches pickle. `verify` accepts either algorithm.

Signing costs the MAC pass and nothing else: `sign_parts` signs a payload given as
parts (what `serialize_parts` returns) and puts the header in front as one more
part, copying nothing; `serialize_signed` lays the header and the serialized
payload out together, so the payload is copied once, exactly as by `serialize`.
`verify` returns a view of the payload and `verify_parts` the payload's own parts
(no copy either). Only `sign` of a finished payload copies it, to put the header
in front.

HMAC-SHA256 needs only the standard library. Keyed BLAKE3 (the optional ``blake3``
package, extra ``proxystore-serialize[blake3]``) is several times faster, which
matters for large objects; its 32-byte key is derived from ``key`` with
HMAC-SHA256 (domain-separated), so one key serves both algorithms.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
from collections.abc import Sequence
from typing import Any, Final

from proxystore.serialize._core import FORMAT_VERSION, _as_payload, _join
from proxystore.serialize._core import deserialize as _deserialize
from proxystore.serialize._core import serialize as _serialize
from proxystore.serialize._core import serialize_parts as _serialize_parts
from proxystore.serialize.exceptions import PayloadAuthenticationError
from proxystore.serialize.protocols import BytesLike, Deserializer, Serializer

__all__ = [
    "ALGORITHMS",
    "serialize_signed",
    "sign",
    "sign_parts",
    "signed_deserializer",
    "signed_serializer",
    "verify",
    "verify_parts",
]

_VERSION: Final = bytes((FORMAT_VERSION,))
#: Signature algorithms by name, and the tag that marks each in a payload.
ALGORITHMS: Final = {"hmac-sha256": b"SG", "blake3": b"SB"}
_BY_TAG: Final = {_VERSION + tag: name for name, tag in ALGORITHMS.items()}
_PREFIX_LEN: Final = 3
_DIGEST: Final = hashlib.sha256().digest_size
_HEADER_LEN: Final = _PREFIX_LEN + _DIGEST
_BLAKE3_CONTEXT: Final = b"proxystore payload signing: blake3 key\x00"
#: Payloads at least this large are hashed by BLAKE3 with all cores.
_BLAKE3_THREADS_FROM: Final = 16 << 20


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes | bytearray):
        raise TypeError(f"HMAC key must be bytes, got {type(key).__name__}.")
    if not key:
        raise ValueError("HMAC key must not be empty.")


def _blake3() -> Any:
    try:
        return importlib.import_module("blake3")
    except ImportError:
        raise PayloadAuthenticationError(
            "BLAKE3 payload signatures need the 'blake3' package: pip install "
            "'proxystore-serialize[blake3]'"
        ) from None


def _mac(algorithm: str, key: bytes, payload: BytesLike) -> bytes:
    return _mac_parts(algorithm, key, (payload,), len(payload))


def _mac_parts(
    algorithm: str, key: bytes, parts: Sequence[BytesLike], size: int
) -> bytes:
    """The MAC of the concatenation of ``parts`` (``size`` bytes), fed part by part."""
    if algorithm == "hmac-sha256":
        if len(parts) == 1:
            return hmac.digest(key, parts[0], "sha256")
        state = hmac.new(key, digestmod="sha256")
        for part in parts:
            state.update(part)
        return state.digest()
    blake3 = _blake3()
    derived = hmac.digest(key, _BLAKE3_CONTEXT, "sha256")
    threads = blake3.blake3.AUTO if size >= _BLAKE3_THREADS_FROM else 1
    hasher = blake3.blake3(key=derived, max_threads=threads)
    for part in parts:
        hasher.update(part)
    digest: bytes = hasher.digest()
    return digest


def _tag(algorithm: str) -> bytes:
    tag = ALGORITHMS.get(algorithm)
    if tag is None:
        raise ValueError(
            f"unknown signature algorithm {algorithm!r}: "
            f"use one of {sorted(ALGORITHMS)}"
        )
    return tag


def sign_parts(
    parts: Sequence[BytesLike], key: bytes, *, algorithm: str = "hmac-sha256"
) -> list[bytes | memoryview]:
    """Return ``[header, *parts]``: the parts signed as one payload, none copied.

    ``b"".join(sign_parts(parts, key))`` equals ``sign(b"".join(parts), key)``, so
    `verify` accepts the joined result. A connector that takes parts
    (``put_parts``) stores them without any copy; otherwise join them once.

    Args:
        parts: The payload, as parts to concatenate (e.g. from
            `serialize_parts`).
        key: The secret key.
        algorithm: ``"hmac-sha256"`` (default) or ``"blake3"``.

    Raises:
        TypeError, ValueError, PayloadAuthenticationError, SerializationError:
            As `sign`.
    """
    _check_key(key)
    tag = _tag(algorithm)
    payloads = [_as_payload(part) for part in parts]
    size = sum(len(part) for part in payloads)
    return [_VERSION + tag + _mac_parts(algorithm, key, payloads, size), *payloads]


def serialize_signed(obj: Any, key: bytes, *, algorithm: str = "hmac-sha256") -> bytes:
    """Return ``sign(serialize(obj), key)``, copying the payload once, not twice.

    The MAC is computed over `serialize_parts`'s parts (the object's own
    buffers), then header and parts are laid out together: the same one copy
    `serialize` makes.

    Raises:
        SerializationError: If ``obj`` cannot be serialized.
        TypeError, ValueError, PayloadAuthenticationError: As `sign`.
    """
    parts = sign_parts(_serialize_parts(obj), key, algorithm=algorithm)
    return _join(parts, sum(len(part) for part in parts))


def sign(data: BytesLike, key: bytes, *, algorithm: str = "hmac-sha256") -> bytes:
    """Return ``data`` prefixed with its MAC under ``key``.

    Args:
        data: The payload.
        key: The secret key (any length; BLAKE3 derives its own 32-byte key).
        algorithm: ``"hmac-sha256"`` (default) or ``"blake3"``.

    Raises:
        TypeError: If ``key`` is not bytes.
        ValueError: If ``key`` is empty or ``algorithm`` unknown.
        PayloadAuthenticationError: If ``algorithm`` is ``"blake3"`` and the
            ``blake3`` package is missing.
        SerializationError: If ``data`` is not a contiguous bytes-like buffer.
    """
    _check_key(key)
    tag = _tag(algorithm)
    payload = _as_payload(data)
    mac = _mac(algorithm, key, payload)
    # The one copy of a whole payload (use sign_parts or serialize_signed to avoid it).
    return _join([_VERSION + tag, mac, payload], _HEADER_LEN + len(payload))


def _authenticate(
    header: BytesLike, key: bytes, parts: Sequence[BytesLike], size: int
) -> None:
    """Check ``header`` (the first 35 bytes of a signed payload) against ``parts``."""
    algorithm = (
        _BY_TAG.get(bytes(header[:_PREFIX_LEN])) if len(header) == _HEADER_LEN else None
    )
    if algorithm is None:
        raise PayloadAuthenticationError(
            "payload is not signed: expected a signature header of "
            f"{_HEADER_LEN} bytes starting with one of {sorted(_BY_TAG)}"
        )
    expected = _mac_parts(algorithm, key, parts, size)
    if not hmac.compare_digest(expected, header[_PREFIX_LEN:]):
        raise PayloadAuthenticationError(
            "payload authentication failed: MAC mismatch (tampered data or wrong key)"
        )


def verify(data: BytesLike, key: bytes) -> memoryview:
    """Check the signature added by `sign`; return the payload without a copy.

    Either algorithm is accepted (the payload's tag says which). The returned view
    shares memory (and writability) with ``data``.

    Raises:
        TypeError: If ``key`` is not bytes.
        ValueError: If ``key`` is empty.
        PayloadAuthenticationError: If ``data`` is not signed, is truncated, or
            its MAC does not match (tampered payload or wrong key), or it is signed
            with BLAKE3 and the ``blake3`` package is missing.
        SerializationError: If ``data`` is not a contiguous bytes-like buffer.
    """
    _check_key(key)
    view = memoryview(_as_payload(data))
    payload = view[_HEADER_LEN:]
    _authenticate(view[:_HEADER_LEN], key, (payload,), len(payload))
    return payload


def verify_parts(parts: Sequence[BytesLike], key: bytes) -> list[bytes | memoryview]:
    """Check a signed payload given as parts; return the payload's parts, uncopied.

    Parts as `sign_parts` made them (the 35-byte header first) are checked in
    place and the remaining parts returned as they are. Any other split of a signed
    payload is joined once and checked like `verify`.

    Raises:
        TypeError, ValueError, PayloadAuthenticationError, SerializationError:
            As `verify`.
    """
    _check_key(key)
    views = [_as_payload(part) for part in parts]
    if not views or len(views[0]) != _HEADER_LEN:
        whole = views[0] if len(views) == 1 else b"".join(views)
        return [verify(whole, key)]
    payload = views[1:]
    _authenticate(views[0], key, payload, sum(len(part) for part in payload))
    return payload


class _KeyHolder:
    """A (de)serializer holding an HMAC key: usable here, never pickled."""

    __slots__ = ("_inner", "_key")

    def __init__(self, key: bytes, inner: Any) -> None:
        _check_key(key)
        self._key = bytes(key)
        self._inner = inner

    def __reduce__(self) -> Any:
        raise TypeError(
            f"{type(self).__name__} holds its HMAC key and is never pickled (it "
            "would carry the key inside every proxy); give the store a key "
            "reference instead: Store(..., auth_key_id='env:VAR')"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key=<hidden>)"


class _SignedSerializer(_KeyHolder):
    __slots__ = ()

    def __call__(self, obj: Any, /) -> bytes:
        if self._inner is _serialize:
            return serialize_signed(obj, self._key)
        return sign(self._inner(obj), self._key)


class _VerifiedDeserializer(_KeyHolder):
    __slots__ = ()

    def __call__(self, data: BytesLike, /) -> Any:
        return self._inner(verify(data, self._key))


def signed_serializer(key: bytes, serializer: Serializer = _serialize) -> Serializer:
    """Return a serializer that signs ``serializer``'s output with ``key``.

    The result holds ``key``, so it refuses to be pickled (a `TypeError` that
    points to ``Store(..., auth_key_id=...)``, which signs with a key *reference*
    and so works in proxies).

    Raises:
        TypeError, ValueError: If ``key`` is not non-empty bytes.
    """
    return _SignedSerializer(key, serializer)


def signed_deserializer(
    key: bytes, deserializer: Deserializer = _deserialize
) -> Deserializer:
    """Return a deserializer that verifies ``key``'s signature before decoding.

    Like `signed_serializer`, the result holds ``key`` and is never pickled.

    Raises:
        TypeError, ValueError: If ``key`` is not non-empty bytes.
    """
    return _VerifiedDeserializer(key, deserializer)
