"""Files planted at the shared-memory connector's names are refused, not used.

``/dev/shm`` is writable by every user and our names are predictable, so each test
here plants something at one of them (a symbolic link, a FIFO, a file other users
may open, a broken arena) and checks that the connector raises `ForeignFileError`
(or `CorruptPayloadError` for its own damaged arena) without reading, writing or
mapping it. The attacks that need a second uid are in
``tests/integration/test_multiuser.py``.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from collections.abc import Iterator

import pytest

from proxystore.connectors import _arena
from proxystore.connectors.exceptions import (
    ConnectorError,
    CorruptPayloadError,
    ForeignFileError,
)
from proxystore.connectors.shm import SHM_DIR, SharedMemoryConnector, SharedMemoryKey

UID = os.geteuid()
#: One namespace per test process (xdist worker), so parallel runs never meet.
NAMESPACE = f"owner_{os.getpid()}_{secrets.token_hex(4)}"
ARENA = 4 << 20
SLOTS = 16
_BIG = 300_000  # read through the arena's view path (C when built)


def _arena_connector() -> SharedMemoryConnector:
    return SharedMemoryConnector(
        NAMESPACE, arena=True, arena_size=ARENA, arena_slots=SLOTS
    )


# The connector's own names, where an attacker would plant things.
STEM = _arena_connector()._stem
ARENA_PATH = _arena_connector()._arena_path


@pytest.fixture(autouse=True)
def _clean_shm() -> Iterator[None]:
    yield
    # Whatever a test planted (links, FIFOs, open files) goes.
    _arena.forget_arena(ARENA_PATH)
    left = sorted(n for n in os.listdir(SHM_DIR) if n.startswith(STEM))
    for name in left:
        os.unlink(os.path.join(SHM_DIR, name))
    assert not [n for n in left if ".tmp-" in n], left


def _make_arena_file(path: str) -> None:
    """Make a valid arena at ``path`` (our own, private), as the connector would."""
    fd = _arena._create(path, ARENA, SLOTS)
    assert fd is not None
    os.close(fd)


def _attached() -> bool:
    return _arena.arena_of(ARENA_PATH) is not None


# ------------------------------------------------------------------ the arena


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o277], indirect=True)
def test_arena_is_created_private_whatever_the_umask(umask: int) -> None:
    with _arena_connector() as connector:
        key = connector.put(b"x")
        st = os.lstat(ARENA_PATH)
        assert stat.S_ISREG(st.st_mode)
        assert st.st_uid == UID
        assert stat.S_IMODE(st.st_mode) == 0o600
        assert connector.get(key) == b"x"
        connector.evict(key)


def test_arena_open_to_other_users_is_refused() -> None:
    _make_arena_file(ARENA_PATH)
    os.chmod(ARENA_PATH, 0o666)  # as a squatter's arena would be
    with pytest.raises(ForeignFileError) as info:
        _arena_connector().put(b"secret")
    message = str(info.value)
    assert ARENA_PATH in message
    assert "other users may open it (mode 0666" in message
    assert "remove it" in message
    assert info.value.path == ARENA_PATH
    assert isinstance(info.value, ConnectorError)
    assert isinstance(info.value, PermissionError)
    assert not _attached()
    with open(ARENA_PATH, "rb") as f:
        assert b"secret" not in f.read()


@pytest.mark.parametrize("target", ["arena elsewhere", "dangling"])
def test_symlink_at_the_arena_name_is_refused(target: str) -> None:
    elsewhere = os.path.join(SHM_DIR, STEM + "elsewhere")
    if target == "arena elsewhere":
        _make_arena_file(elsewhere)
        before = os.stat(elsewhere)
    os.symlink(elsewhere, ARENA_PATH)
    with pytest.raises(ForeignFileError, match="symbolic link"):
        _arena_connector().put(b"secret")
    assert not _attached()
    if target == "arena elsewhere":
        with open(elsewhere, "rb") as f:
            assert b"secret" not in f.read()
        assert os.stat(elsewhere).st_mtime_ns == before.st_mtime_ns
    else:
        assert not os.path.exists(elsewhere)  # nothing was created through it


def test_fifo_at_the_arena_name_is_refused_without_blocking() -> None:
    os.mkfifo(ARENA_PATH, 0o600)
    with pytest.raises(ForeignFileError, match="not a regular file"):
        _arena_connector().put(b"x")
    assert not _attached()


@pytest.mark.parametrize(
    ("word", "value", "match"),
    [
        (1, ARENA * 4, "inconsistent arena header"),  # larger than the file
        (2, 1 << 40, "inconsistent arena header"),  # table past the end
        (2, 0, "inconsistent arena header"),  # no slot
        (3, 8, "inconsistent arena header"),  # table inside the header
        (6, SLOTS + 1, "inconsistent arena header"),  # high-water past the table
        (0, 0, "not a proxystore shared-memory arena"),
    ],
)
def test_inconsistent_arena_header_is_refused_before_mapping(
    word: int, value: int, match: str
) -> None:
    _make_arena_file(ARENA_PATH)
    fd = os.open(ARENA_PATH, os.O_RDWR)
    try:
        os.pwrite(fd, value.to_bytes(8, "little", signed=True), 8 * word)
    finally:
        os.close(fd)
    with pytest.raises(CorruptPayloadError, match=match) as info:
        _arena_connector().put(b"x")
    assert ARENA_PATH in str(info.value)
    assert not _attached()


@pytest.mark.parametrize("pure", [False, True])
def test_key_of_another_uid_is_refused_by_name(
    pure: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if pure:
        monkeypatch.setattr(_arena, "_hold_view", None)
    with _arena_connector() as connector:
        mine = connector.put(b"y" * _BIG)
        other = UID + 1
        keys = [
            SharedMemoryKey(f"psshm-{other}-{NAMESPACE}-~0.1", _BIG),  # arena, view
            SharedMemoryKey(f"psshm-{other}-{NAMESPACE}-~0.1", 10),  # arena, copy
            SharedMemoryKey(f"psshm-{other}-{NAMESPACE}-{'0' * 32}", 10),  # segment
        ]
        for key in keys:
            for op in (connector.get, connector.exists, connector.evict):
                with pytest.raises(ForeignFileError) as info:
                    op(key)
                message = str(info.value)
                assert f"uid {other}" in message
                assert f"uid {UID}" in message
            with pytest.raises(ForeignFileError):
                connector.set(key, b"z")
        assert connector.get(mine) == b"y" * _BIG
        connector.evict(mine)
    assert not any(n.startswith(f"psshm-{UID + 1}-") for n in os.listdir(SHM_DIR))


@pytest.mark.parametrize(
    "name", ["psshm-x-ns-0", "psshm-12", "psshm--ns-0", "psshm-1/2-ns-0", "psshm-"]
)
def test_malformed_names_stay_invalid_not_foreign(name: str) -> None:
    with pytest.raises(ValueError, match="Invalid shared-memory segment name") as info:
        SharedMemoryConnector(NAMESPACE).get(SharedMemoryKey(name, 1))
    assert not isinstance(info.value, ForeignFileError)


# ------------------------------------------------------------------ segments


@pytest.fixture
def connector() -> Iterator[SharedMemoryConnector]:
    with SharedMemoryConnector(NAMESPACE) as connector:
        yield connector


def test_symlink_at_a_segment_name_is_refused(
    connector: SharedMemoryConnector,
) -> None:
    # The link leads to an object of ours: following it would hand out that one.
    planted = connector.put(b"planted payload")
    key = connector.new_key()
    path = os.path.join(SHM_DIR, key.name)
    os.symlink(os.path.join(SHM_DIR, planted.name), path)
    with pytest.raises(ForeignFileError, match="symbolic link") as info:
        connector.get(key)
    assert info.value.path == path
    with pytest.raises(ForeignFileError, match="symbolic link"):
        connector.exists(key)


@pytest.mark.timeout(20)
def test_fifo_at_a_segment_name_is_refused_without_blocking(
    connector: SharedMemoryConnector,
) -> None:
    key = connector.new_key()
    os.mkfifo(os.path.join(SHM_DIR, key.name), 0o600)
    with pytest.raises(ForeignFileError, match="not a regular file"):
        connector.get(key)
    with pytest.raises(ForeignFileError, match="not a regular file"):
        connector.exists(key)


@pytest.mark.parametrize("size", [10, 1 << 20])
def test_segment_open_to_other_users_is_refused(
    connector: SharedMemoryConnector, size: int
) -> None:
    key = connector.put(b"s" * size)
    os.chmod(os.path.join(SHM_DIR, key.name), 0o644)
    with pytest.raises(ForeignFileError, match=r"mode 0644"):
        connector.get(key)
    with pytest.raises(ForeignFileError, match=r"mode 0644"):
        connector.exists(key)


def test_close_leaves_files_it_cannot_trust(
    connector: SharedMemoryConnector, caplog: pytest.LogCaptureFixture
) -> None:
    kept = connector.put(b"open to all")
    path = os.path.join(SHM_DIR, kept.name)
    os.chmod(path, 0o666)
    gone = connector.put(b"private")
    with caplog.at_level(logging.WARNING, logger="proxystore.connectors.shm"):
        connector.close(clear=True)
    assert os.path.exists(path)
    assert not os.path.exists(os.path.join(SHM_DIR, gone.name))
    assert any(path in r.getMessage() for r in caplog.records)
