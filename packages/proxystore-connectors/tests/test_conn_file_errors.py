"""A store directory that cannot be created is blamed on the directory at fault."""

from __future__ import annotations

import os
import pathlib
import sys
import tempfile
import warnings

import pytest

from proxystore.connectors.exceptions import ConnectorConnectionError
from proxystore.connectors.file import FileConnector

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="needs Linux's /proc"
)


def _creation_error(path: str) -> ConnectorConnectionError:
    with pytest.raises(ConnectorConnectionError) as info:
        FileConnector(path)
    assert info.value.address == path
    return info.value


@linux_only
@pytest.mark.parametrize("path", ["/proc/psx", "/proc/psx/a/b"])
def test_parent_that_refuses_entries_is_named(path: str) -> None:
    # /proc exists; the kernel refuses new entries in it (ENOENT, or EACCES as a
    # user): the message must not claim that /proc is missing.
    error = _creation_error(path)
    message = str(error)
    assert message.startswith(f"Cannot create the store directory {path!r}: ")
    assert "'/proc' exists, but 'psx' cannot be created in it (" in message
    assert "does not exist" not in message
    assert isinstance(error.__cause__, OSError)


def test_a_file_in_the_way_is_named(tmp_path: pathlib.Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    for path in (blocker, blocker / "store" / "deeper"):
        message = str(_creation_error(str(path)))
        assert f"{str(blocker)!r} exists and is not a directory." in message


def test_missing_parents_are_still_created(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "x" / "y" / "store"
    with FileConnector(str(target)) as connector:
        assert connector.get(connector.put(b"ok")) == b"ok"
    assert (tmp_path / "x" / "y").is_dir()


def _message_as_other_user(path: str) -> str:
    """Try to create ``path`` as an unprivileged user; return the error message."""
    if os.geteuid() != 0:
        return str(_creation_error(path))
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads
        pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        status = 1
        try:
            os.setgid(65534)
            os.setuid(65534)
            try:
                FileConnector(path)
            except ConnectorConnectionError as exc:
                os.write(write, str(exc).encode())
                status = 0
        finally:
            os._exit(status)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        output = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, output
    return output


def test_unwritable_parent_is_named(tmp_path: pathlib.Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    # Another user must be able to reach ``locked``: pytest's base temporary
    # directory (``pytest-of-<user>``) and those below it are private.
    for part in (tmp_path, *tmp_path.parents):
        if part == pathlib.Path(tempfile.gettempdir()) or part == part.parent:
            break
        part.chmod(part.stat().st_mode & 0o7777 | 0o001)
        if part.name.startswith("pytest-of-"):
            break
    target = str(locked / "store")
    message = _message_as_other_user(target)
    assert f"{str(locked)!r} exists, but 'store' cannot be created in it" in message
    assert f"Permission denied; {str(locked)!r} is not writable by this user" in message
