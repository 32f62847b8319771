"""Cheap random identifiers for object keys and temporary names.

`uuid.uuid4` reads the kernel's random source on every call (several
microseconds here, more than the rest of a small put). Keys only need to be
unique, not secret, so these helpers draw from a private Mersenne Twister seeded
from the kernel's source once per process and reseeded in forked children.

The generator is private on purpose: a program that calls ``random.seed(0)`` in
every worker (common in scientific code) must not make two workers, or two puts
of one worker, produce the same key.
"""

from __future__ import annotations

import os
import random

__all__ = ["random_hex", "uuid4_hex", "uuid4_str"]

_rng = random.Random()  # seeded from os.urandom
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_rng.seed)

_getrandbits = _rng.getrandbits
# Version 4 and the RFC 4122 variant, as `uuid.uuid4` sets them.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def uuid4_hex() -> str:
    """Return a random version-4 UUID as 32 hex digits (like ``uuid4().hex``)."""
    return f"{_getrandbits(128) & _UUID4_CLEAR | _UUID4_SET:032x}"


def uuid4_str() -> str:
    """Return a random version-4 UUID in its dashed form (like ``str(uuid4())``)."""
    h = f"{_getrandbits(128) & _UUID4_CLEAR | _UUID4_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def random_hex(digits: int) -> str:
    """Return ``digits`` random hex digits."""
    return f"{_getrandbits(4 * digits):0{digits}x}"
