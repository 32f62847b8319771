"""Object serialization: tagged, versioned, zero-copy for large buffers.

``deserialize(serialize(obj))`` rebuilds ``obj``. See `proxystore.serialize._core`
for the wire format. `sign`/`verify` (or `signed_serializer`/
`signed_deserializer`) add HMAC authentication (`sign_parts` and
`serialize_signed` without copying the payload once more); `RestrictedDeserializer`
limits what the pickle path may load to an allow-list (`NUMPY_ARRAYS` lists what
numpy arrays need). Custom (de)serializers for a
store satisfy
[`Serializer`][proxystore.serialize.protocols.Serializer] /
[`Deserializer`][proxystore.serialize.protocols.Deserializer].
"""

from __future__ import annotations

from proxystore.serialize._auth import ALGORITHMS as ALGORITHMS
from proxystore.serialize._auth import serialize_signed as serialize_signed
from proxystore.serialize._auth import sign as sign
from proxystore.serialize._auth import sign_parts as sign_parts
from proxystore.serialize._auth import signed_deserializer as signed_deserializer
from proxystore.serialize._auth import signed_serializer as signed_serializer
from proxystore.serialize._auth import verify as verify
from proxystore.serialize._auth import verify_parts as verify_parts
from proxystore.serialize._core import FORMAT_VERSION as FORMAT_VERSION
from proxystore.serialize._core import deserialize as deserialize
from proxystore.serialize._core import deserialize_parts as deserialize_parts
from proxystore.serialize._core import is_bytes_like as is_bytes_like
from proxystore.serialize._core import serialize as serialize
from proxystore.serialize._core import serialize_parts as serialize_parts
from proxystore.serialize._restricted import NUMPY_ARRAYS as NUMPY_ARRAYS
from proxystore.serialize._restricted import (
    RestrictedDeserializer as RestrictedDeserializer,
)
from proxystore.serialize.exceptions import DisallowedTypeError as DisallowedTypeError
from proxystore.serialize.exceptions import (
    PayloadAuthenticationError as PayloadAuthenticationError,
)
from proxystore.serialize.exceptions import SerializationError as SerializationError
from proxystore.serialize.protocols import BytesLike as BytesLike

__all__ = [
    "ALGORITHMS",
    "FORMAT_VERSION",
    "NUMPY_ARRAYS",
    "BytesLike",
    "DisallowedTypeError",
    "PayloadAuthenticationError",
    "RestrictedDeserializer",
    "SerializationError",
    "deserialize",
    "deserialize_parts",
    "is_bytes_like",
    "serialize",
    "serialize_parts",
    "serialize_signed",
    "sign",
    "sign_parts",
    "signed_deserializer",
    "signed_serializer",
    "verify",
    "verify_parts",
]

# Public names report this module in reprs and tracebacks (pickles stay valid: each
# name is importable from here).
for _public in (
    RestrictedDeserializer,
    deserialize,
    deserialize_parts,
    is_bytes_like,
    serialize,
    serialize_parts,
    serialize_signed,
    sign,
    sign_parts,
    signed_deserializer,
    signed_serializer,
    verify,
    verify_parts,
):
    _public.__module__ = __name__
del _public
