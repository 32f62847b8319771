"""A signing store copies a payload no more often than an unsigned one."""

from __future__ import annotations

import pathlib
import tracemalloc
import uuid
from collections.abc import Callable
from typing import cast

import pytest

from proxystore.connectors.file import FileConnector
from proxystore.connectors.local import LocalConnector, LocalKey
from proxystore.serialize import ALGORITHMS, PayloadAuthenticationError
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


def test_signed_local_get_checks_parts_in_place(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(KEY_VAR, "k" * 32)
    obj = bytes(SIZE)
    with Store(
        f"signing-copies-{uuid.uuid4().hex[:12]}",
        LocalConnector(),
        cache_size=0,
        auth_key_id=f"env:{KEY_VAR}",
    ) as store:
        key = cast("LocalKey", store.put(obj))
        assert store.get(key) is obj  # verified over its parts, never joined
        # A changed part is refused before anything is decoded.
        stored = store.connector._store[key]
        forged = type(stored)((*stored[:-1], b"\x01" + stored[-1][1:]))
        store.connector._store[key] = forged
        with pytest.raises(PayloadAuthenticationError, match="MAC mismatch"):
            store.get(key)
