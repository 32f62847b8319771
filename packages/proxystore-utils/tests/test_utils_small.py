"""counter, data, environment, imports and timer."""

from __future__ import annotations

import collections
import os
import socket
import threading

import pytest

from proxystore.utils import counter, data, environment, imports, timer


def test_counter_returns_pre_increment_values() -> None:
    c = counter.AtomicCounter()
    assert [c.increment() for _ in range(3)] == [0, 1, 2]
    assert c.value == 3
    assert "value=3" in repr(c)


def test_counter_size_limit() -> None:
    c = counter.AtomicCounter(size=2)
    c.increment()
    c.increment()
    with pytest.raises(ValueError, match=r"Max counter size exceeded \(2\)"):
        c.increment()
    with pytest.raises(ValueError, match="non-negative"):
        counter.AtomicCounter(size=-1)


def test_counter_is_thread_safe() -> None:
    c = counter.AtomicCounter()
    seen: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        values = [c.increment() for _ in range(1000)]
        with lock:
            seen.extend(values)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(4000))


def test_chunk_bytes() -> None:
    assert list(data.chunk_bytes(b"abcdefg", 3)) == [b"abc", b"def", b"g"]
    assert list(data.chunk_bytes(b"", 3)) == []
    view = memoryview(bytearray(b"abcd"))
    chunks = list(data.chunk_bytes(view, 2))
    assert all(isinstance(chunk, memoryview) for chunk in chunks)
    chunks[0][0] = ord("z")  # slices share memory: no copy
    assert view[0] == ord("z")
    with pytest.raises(ValueError, match="positive"):
        list(data.chunk_bytes(b"abc", 0))


@pytest.mark.parametrize(
    ("size", "precision", "expected"),
    [
        (0, 3, "0 B"),
        (999, 3, "999 B"),
        (1000, 3, "1 KB"),
        (1500, 3, "1.5 KB"),
        (1234567, 3, "1.235 MB"),
        (1234567, 1, "1.2 MB"),
        (1234567, 0, "1 MB"),
        (10**9, 3, "1 GB"),
        (2 * 10**12, 3, "2 TB"),
        (10**16, 3, "10000 TB"),
    ],
)
def test_bytes_to_readable(size: int, precision: int, expected: str) -> None:
    assert data.bytes_to_readable(size, precision) == expected


def test_bytes_to_readable_rejects_negatives() -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        data.bytes_to_readable(-1)
    with pytest.raises(ValueError, match="Precision"):
        data.bytes_to_readable(1, -1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("512", 512),
        ("1.5", 1),
        ("1.2 KB", 1200),
        ("1.2KB", 1200),
        (" 3 mb ", 3_000_000),
        ("0.6 MiB", 629145),
        ("1 GiB", 2**30),
        ("2 tib", 2 * 2**40),
        ("7 B", 7),
    ],
)
def test_readable_to_bytes(text: str, expected: int) -> None:
    assert data.readable_to_bytes(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 2 KB", "only a value and a unit"),
        ("KB", "only a value and a unit"),
        ("1.2.3 KB", "Unable to interpret"),
        ("1 XB", "Unknown unit 'XB'"),
        ("inf", "not finite"),
    ],
)
def test_readable_to_bytes_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        data.readable_to_bytes(text)


def test_bytes_roundtrip_through_readable() -> None:
    for size in (0, 1, 999, 1000, 123_456, 10**9):
        assert data.readable_to_bytes(data.bytes_to_readable(size, 6)) == size


def test_home_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: os.PathLike[str]) -> None:
    monkeypatch.setenv("PROXYSTORE_HOME", "relative/dir")
    assert environment.home_dir() == os.path.abspath("relative/dir")
    monkeypatch.delenv("PROXYSTORE_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", os.fspath(tmp_path))
    assert environment.home_dir() == os.path.join(os.fspath(tmp_path), "proxystore")
    monkeypatch.delenv("XDG_DATA_HOME")
    expected = os.path.expanduser("~/.local/share/proxystore")
    assert environment.home_dir() == expected


def test_hostname() -> None:
    assert environment.hostname() == socket.gethostname()


class Outer:
    class Inner:
        pass


def test_object_paths_roundtrip() -> None:
    assert imports.get_object_path(collections.OrderedDict) == (
        "collections.OrderedDict"
    )
    assert imports.import_from_path("collections.OrderedDict") is (
        collections.OrderedDict
    )
    assert imports.import_from_path("os.path.join") is os.path.join
    path = imports.get_object_path(Outer.Inner)
    assert path.endswith("Outer.Inner")
    assert imports.import_from_path(path) is Outer.Inner


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("OrderedDict", "at least one module"),
        ("collections.", "at least one module"),
        ("collections.NoSuchThing", "has no attribute path 'NoSuchThing'"),
        ("no_such_module_xyz.thing", "no module found"),
    ],
)
def test_import_from_path_errors(path: str, message: str) -> None:
    with pytest.raises(ImportError, match=message):
        imports.import_from_path(path)


def test_timer() -> None:
    with timer.Timer() as t:
        sum(range(1000))
    assert t.elapsed_ns > 0
    assert t.elapsed_ms == t.elapsed_ns / 1e6
    assert t.elapsed_s == t.elapsed_ns / 1e9
    running = timer.Timer().start()
    with pytest.raises(RuntimeError, match="still running"):
        _ = running.elapsed_ns
    assert running.stop().elapsed_ns >= 0
