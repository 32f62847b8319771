"""A signing store copies a payload no more often than an unsigned one."""

from __future__ import annotations

import pathlib
import tracemalloc
import uuid
from collections.abc import Callable

import pytest

from proxystore.connectors.file import FileConnector
from proxystore.connectors.local import LocalConnector
from proxystore.serialize import ALGORITHMS
from proxystore.store import Store

KEY_VAR = "PS_TEST_SIGNING_COPIES_KEY"
SIZE = 16 << 20


def _peak(func: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        func()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
@pytest.mark.parametrize("kind", ["file", "local"])
def test_signed_put_allocates_what_an_unsigned_put_does(
    algorithm: str, kind: str, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_VAR, "k" * 32)
    obj = bytes(SIZE)

    def connector(name: str) -> FileConnector | LocalConnector:
        if kind == "file":
            return FileConnector(str(tmp_path / name))
        return LocalConnector()

    with (
        Store(
            f"signing-copies-{uuid.uuid4().hex[:12]}", connector("plain"), cache_size=0
        ) as plain,
        Store(
            f"signing-copies-{uuid.uuid4().hex[:12]}",
            connector("signed"),
            cache_size=0,
            auth_key_id=f"env:{KEY_VAR}",
            auth_algorithm=algorithm,
        ) as signed,
    ):
        unsigned_peak = _peak(lambda: plain.put(obj))
        signed_peak = _peak(lambda: signed.put(obj))
        # Before: the serialized payload, then a second copy with the MAC header.
        assert signed_peak < unsigned_peak + (1 << 20)
        key = signed.put(obj)
        assert signed.get(key) == obj
