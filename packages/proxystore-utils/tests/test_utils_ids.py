"""Unit tests of proxystore.utils._ids."""

from __future__ import annotations

import os
import random
import re
import uuid

from proxystore.utils._ids import random_hex, uuid4_hex, uuid4_str


def test_ids_are_version_4_uuids() -> None:
    for _ in range(200):
        h = uuid4_hex()
        assert re.fullmatch("[0-9a-f]{32}", h)
        assert uuid.UUID(h).version == 4
        s = uuid4_str()
        parsed = uuid.UUID(s)
        assert str(parsed) == s
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    assert re.fullmatch("[0-9a-f]{12}", random_hex(12))
    assert len({uuid4_hex() for _ in range(10_000)}) == 10_000


def test_reseeding_the_global_random_does_not_repeat_ids() -> None:
    random.seed(0)
    first = uuid4_hex()
    random.seed(0)
    assert uuid4_hex() != first


def test_forked_children_draw_other_ids() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.write(write, uuid4_hex().encode())
        os._exit(0)
    os.close(write)
    mine = uuid4_hex()
    theirs = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert len(theirs) == 32
    assert theirs != mine
