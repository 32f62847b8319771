"""Unit tests of proxystore.connectors.file."""

from __future__ import annotations

import os
import pathlib
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from proxystore.connectors.exceptions import ConnectorConnectionError, ConnectorError
from proxystore.connectors.file import FileConnector, FileKey
from proxystore.connectors.protocols import (
    Connector,
    DeferrableConnector,
    WaitableConnector,
)
from tests.conformance.connector_suite import ConnectorSuite


def _static_contracts(path: str) -> None:
    # Never called: mypy proves FileConnector satisfies every contract.
    _c: Connector[FileKey] = FileConnector(path)
    _d: DeferrableConnector[FileKey] = FileConnector(path)
    _w: WaitableConnector[FileKey] = FileConnector(path)


class TestFileConformance(ConnectorSuite):
    @pytest.fixture
    def connector(self, tmp_path: pathlib.Path) -> Iterator[FileConnector]:
        with FileConnector(str(tmp_path / "store")) as connector:
            yield connector


class TestFileUnbufferedConformance(ConnectorSuite):
    @pytest.fixture
    def connector(self, tmp_path: pathlib.Path) -> Iterator[FileConnector]:
        with FileConnector(str(tmp_path / "store"), buffering=0) as connector:
            yield connector


@pytest.fixture
def store_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "store"


def test_directory_is_created_absolute_and_reported(
    store_dir: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(store_dir.parent)
    with FileConnector("store/nested", clear=True) as connector:
        expected = str(store_dir / "nested")
        assert connector.store_dir == expected
        assert os.path.isdir(expected)
        assert repr(connector) == f"FileConnector(directory={expected})"
        assert connector.config() == {
            "store_dir": expected,
            "clear": True,
            "buffering": -1,
            "fsync": False,
            "permissions": 0o600,
            "sweep_interval": 5.0,
        }
    assert not os.path.exists(expected)


def test_close_clear_flags(store_dir: pathlib.Path) -> None:
    connector = FileConnector(str(store_dir), clear=False)
    key = connector.put(b"kept")
    connector.close()
    assert (store_dir / key.filename).read_bytes() == b"kept"
    connector.close(clear=True)
    assert not store_dir.exists()

    connector = FileConnector(str(store_dir), clear=True)
    connector.put(b"kept too")
    connector.close(clear=False)
    assert store_dir.exists()
    connector.close()
    assert not store_dir.exists()


def test_get_returns_bytes(store_dir: pathlib.Path) -> None:
    with FileConnector(str(store_dir)) as connector:
        value = connector.get(connector.put(memoryview(b"abc")))
        assert type(value) is bytes
        assert value == b"abc"


def test_large_get_is_a_private_writable_map(store_dir: pathlib.Path) -> None:
    data = bytes(range(256)) * (3 * 1024 * 1024 // 256)
    with FileConnector(str(store_dir)) as connector:
        key = connector.put(data)
        value = connector.get(key)
        assert isinstance(value, memoryview)
        assert not value.readonly
        assert value == data
        value[0] = 255  # copy-on-write: the stored object is unchanged
        assert connector.get(key) == data
        connector.set(key, b"replaced")
        connector.evict(key)
        assert value[1:] == data[1:]  # the map outlives replace and evict


def test_fsync_option_round_trips(store_dir: pathlib.Path) -> None:
    with FileConnector(str(store_dir), fsync=True) as connector:
        key = connector.put(b"durable")
        assert connector.get(key) == b"durable"
        assert connector.config()["fsync"] is True
        clone = FileConnector.from_config(connector.config())
        assert clone.fsync is True
        assert clone.get(key) == b"durable"


def _mode(path: pathlib.Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077], indirect=True)
def test_objects_and_directory_are_private_whatever_the_umask(
    store_dir: pathlib.Path, umask: int
) -> None:
    # The attack: a permissive umask (0o000) used to leave objects 0o666 and the
    # directory 0o777, readable and replaceable by every user of the machine.
    with FileConnector(str(store_dir / "nested")) as connector:
        key = connector.put(b"secret")
        connector.set(connector.new_key(), b"also secret")
        assert _mode(store_dir / "nested") == 0o700
        files = list((store_dir / "nested").iterdir())
        assert len(files) == 2
        assert {_mode(f) for f in files} == {0o600}
        assert connector.get(key) == b"secret"


@pytest.mark.parametrize(
    ("permissions", "directory"),
    [(0o640, 0o750), (0o644, 0o755), (0o660, 0o770), (0o604, 0o705)],
)
@pytest.mark.parametrize("umask", [0o022, 0o077], indirect=True)
def test_permissions_open_objects_exactly_whatever_the_umask(
    store_dir: pathlib.Path, permissions: int, directory: int, umask: int
) -> None:
    with FileConnector(str(store_dir), permissions=permissions) as connector:
        key = connector.put(b"shared")
        assert _mode(store_dir) == directory
        assert _mode(store_dir / key.filename) == permissions
        config = connector.config()
        assert config["permissions"] == permissions
        clone = FileConnector.from_config({**config, "clear": False})
        assert clone.permissions == permissions
        assert _mode(store_dir / clone.put(b"clone").filename) == permissions


def test_existing_directory_keeps_its_mode(store_dir: pathlib.Path) -> None:
    store_dir.mkdir(mode=0o755)
    os.chmod(store_dir, 0o755)
    with FileConnector(str(store_dir), clear=False) as connector:
        key = connector.put(b"x")
    assert _mode(store_dir) == 0o755  # not ours to change...
    assert _mode(store_dir / key.filename) == 0o600  # ...but the objects are private


@pytest.mark.parametrize("permissions", [0o400, 0o200, 0o1600, 0o4700, -1, 0o1000])
def test_invalid_permissions_are_refused(
    store_dir: pathlib.Path, permissions: int
) -> None:
    with pytest.raises(ValueError, match="Invalid permissions"):
        FileConnector(str(store_dir), permissions=permissions)
    assert not store_dir.exists()


def test_planted_symlink_at_a_temporary_name_is_not_followed(
    store_dir: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = store_dir.parent / "outside"
    outside.write_bytes(b"untouched")
    with FileConnector(str(store_dir)) as connector:
        key = connector.new_key()
        monkeypatch.setattr(
            "proxystore.connectors.file.random_hex", lambda n: "0" * (2 * n)
        )
        (store_dir / f".{key.filename}.{'0' * 24}.tmp").symlink_to(outside)
        with pytest.raises(ConnectorConnectionError):
            connector.set(key, b"payload")
    assert outside.read_bytes() == b"untouched"


def test_put_leaves_no_temporary_files(store_dir: pathlib.Path) -> None:
    with FileConnector(str(store_dir)) as connector:
        keys = connector.put_batch([b"a", b"b"])
        connector.set(keys[0], b"c")
        assert sorted(os.listdir(store_dir)) == sorted(k.filename for k in keys)


def test_temporary_files_are_not_objects(store_dir: pathlib.Path) -> None:
    with FileConnector(str(store_dir)) as connector:
        key = connector.new_key()
        (store_dir / f".{key.filename}.0123.tmp").write_bytes(b"partial")
        assert not connector.exists(key)
        assert connector.get(key) is None
        assert connector.wait(key, timeout=0.01) is False


@pytest.mark.parametrize("name", ["", ".hidden", "../escape", "a/b", "nul\0"])
def test_invalid_key_names_are_refused(store_dir: pathlib.Path, name: str) -> None:
    with FileConnector(str(store_dir)) as connector:
        with pytest.raises(ValueError, match="Invalid file name"):
            connector.get(FileKey(name))
        with pytest.raises(ValueError, match="Invalid file name"):
            connector.set(FileKey(name), b"x")


def test_missing_directory_error_names_the_path(store_dir: pathlib.Path) -> None:
    connector = FileConnector(str(store_dir))
    connector.close(clear=True)
    with pytest.raises(ConnectorConnectionError, match="does not exist") as info:
        connector.put(b"x")
    assert str(store_dir) in str(info.value)
    assert info.value.address is not None
    assert info.value.address.startswith(str(store_dir))
    assert isinstance(info.value.__cause__, FileNotFoundError)
    # Reads of a vanished store simply find nothing.
    assert connector.get(FileKey("abc")) is None
    connector.evict(FileKey("abc"))


def test_unusable_directory_error_names_the_path(tmp_path: pathlib.Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    target = blocker / "store"
    with pytest.raises(ConnectorError, match="a-file") as info:
        FileConnector(str(target))
    assert isinstance(info.value, ConnectorConnectionError)
    assert info.value.address == str(target)


def test_read_error_is_translated(store_dir: pathlib.Path) -> None:
    with FileConnector(str(store_dir)) as connector:
        key = connector.new_key()
        # A directory where the object's file should be: open() fails, not "missing".
        (store_dir / key.filename).mkdir()
        with pytest.raises(ConnectorConnectionError, match=key.filename):
            connector.get(key)
        with pytest.raises(ConnectorConnectionError, match=key.filename):
            connector.evict(key)


def test_failed_write_removes_its_temporary_file(store_dir: pathlib.Path) -> None:
    with FileConnector(str(store_dir)) as connector:
        key = connector.new_key()
        (store_dir / key.filename).mkdir()  # os.replace onto a directory fails
        with pytest.raises(ConnectorConnectionError):
            connector.set(key, b"x")
        assert os.listdir(store_dir) == [key.filename]


def test_wait_sees_object_from_other_connector(store_dir: pathlib.Path) -> None:
    with FileConnector(str(store_dir)) as waiter:
        writer = FileConnector(str(store_dir), clear=False)
        key = waiter.new_key()
        timer = threading.Timer(0.02, writer.set, args=(key, b"late"))
        timer.start()
        try:
            assert waiter.wait(key)
            assert waiter.get(key) == b"late"
        finally:
            timer.join()


_CHILD = """
import os, sys, time
from proxystore.connectors.file import FileConnector, FileKey

store_dir, filename, mode = sys.argv[1:4]
connector = FileConnector(store_dir, clear=False)
data = b"x" * 200_000_000
if mode == "block-before-rename":
    def replace(src, dst):
        print("written", flush=True)
        time.sleep(600)
    os.replace = replace
print("start", flush=True)
connector.set(FileKey(filename), data)
print("done", flush=True)
time.sleep(600)
"""


def _kill_writer(store_dir: pathlib.Path, mode: str) -> tuple[FileKey, list[str]]:
    key = FileKey("0123456789abcdef0123456789abcdef")
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(store_dir), key.filename, mode],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "start"
        if mode == "block-before-rename":
            assert child.stdout.readline().strip() == "written"
        else:
            # Kill as soon as the temporary file appears (mid-write, usually).
            deadline = time.monotonic() + 60
            while not os.listdir(store_dir) and time.monotonic() < deadline:
                time.sleep(0.0005)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    return key, os.listdir(store_dir)


@pytest.mark.parametrize("mode", ["mid-write", "block-before-rename"])
def test_writer_killed_mid_put_leaves_no_valid_object(
    store_dir: pathlib.Path, mode: str
) -> None:
    store_dir.mkdir()
    key, files = _kill_writer(store_dir, mode)
    with FileConnector(str(store_dir)) as connector:
        value = connector.get(key)
        if mode == "block-before-rename" or value is None:
            assert value is None
            assert not connector.exists(key)
            assert connector.wait(key, timeout=0) is False
            assert files
            assert all(f.startswith(f".{key.filename}.") for f in files)
        else:
            # The kill came too late to interrupt: then the object is complete.
            assert len(value) == 200_000_000
    assert not store_dir.exists()  # close(clear=True) removed leftovers too
