"""The ``proxystore-store`` console script, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from proxystore.connectors.file import FileConnector
from proxystore.connectors.local import LocalConnector
from proxystore.store import Store


def _script() -> str:
    found = shutil.which(
        "proxystore-store", path=os.path.dirname(sys.executable)
    ) or shutil.which("proxystore-store")
    assert found, "the proxystore-store console script is not installed"
    return found


def _run(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_script(), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PROXYSTORE_HOME": str(home)},
    )


@pytest.fixture
def file_store(tmp_path: Path) -> Any:
    objects = tmp_path / "objects"
    # No background sweep in this process: the commands under test sweep.
    connector = FileConnector(str(objects), clear=True, sweep_interval=3600)
    store = Store("files", connector)
    config = tmp_path / "files.toml"
    store.config().write_toml(config)
    yield store, config, objects
    store.close()


def test_list_shows_keys_sizes_ttls_and_totals(file_store: Any, tmp_path: Path) -> None:
    store, config, objects = file_store
    plain = store.put(b"x" * 100)
    leased = store.put(b"y" * 10, ttl=300)
    done = _run("list", str(config), home=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "store files (FileConnector)"
    assert lines[1].split() == ["KEY", "SIZE", "AGE", "TTL", "HOLDERS"]
    rows = {line.split()[0]: line.split() for line in lines[2:4]}
    assert rows[plain.filename][3] == "-"
    assert rows[leased.filename][3].endswith("m")  # about 5.0m left
    assert lines[4].startswith("  total: 2 objects,")
    assert "1 with a time-to-live" in lines[4]
    # Listing never clears, although the config says clear=True.
    names = {n for n in os.listdir(objects) if not n.startswith(".")}
    assert names == {plain.filename, leased.filename}


def test_list_json(file_store: Any, tmp_path: Path) -> None:
    store, config, _ = file_store
    key = store.put(b"abc", ttl=60)
    done = _run("list", "--json", str(config), home=tmp_path)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    (listed,) = answer["stores"]
    assert listed["name"] == "files"
    assert listed["connector"] == "FileConnector"
    (obj,) = listed["objects"]
    assert obj["key"] == [key.filename]
    assert obj["size"] > 3  # the serialized payload
    assert 0 < obj["ttl"] <= 60
    assert obj["age"] >= 0
    assert obj["holders"] is None
    assert listed["total"] == {"objects": 1, "bytes": obj["size"], "expiring": 1}


def test_register_then_list_and_sweep_by_name(file_store: Any, tmp_path: Path) -> None:
    store, config, objects = file_store
    key = store.put(b"short", ttl=60)
    home = tmp_path / "home"
    done = _run("register", "mine", str(config), home=home)
    assert done.returncode == 0, done.stderr
    assert (home / "stores" / "mine.toml").is_file()
    listed = json.loads(_run("list", "--json", "mine", home=home).stdout)
    assert [o["key"] for o in listed["stores"][0]["objects"]] == [[key.filename]]
    assert store.connector.expire(key, 0.01)
    time.sleep(0.02)
    done = _run("sweep", "mine", home=home)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "store files: removed 1 expired objects"
    assert not (objects / key.filename).exists()
    listed = json.loads(_run("list", "--json", "mine", home=home).stdout)
    assert listed["stores"][0]["objects"] == []


def test_json_config_is_accepted(tmp_path: Path) -> None:
    with Store("f2", FileConnector(str(tmp_path / "o"), clear=True)) as store:
        store.put(b"1")
        path = tmp_path / "f2.json"
        path.write_text(json.dumps(store.config().as_dict()))
        done = _run("list", "--json", str(path), home=tmp_path)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["stores"][0]["total"]["objects"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["list", "no-such-store"], "neither a store config file nor a registered"),
        (["list", "{bad}"], "neither a store config file"),
    ],
)
def test_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    done = _run(*args, home=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("proxystore-store: error: ")
    assert message in line


def test_invalid_config_and_unlistable_connector_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [")
    done = _run("list", str(bad), home=tmp_path)
    assert done.returncode == 1
    assert len(done.stderr.splitlines()) == 1
    assert "not a valid store config" in done.stderr
    local = tmp_path / "local.toml"
    with Store("local", LocalConnector()) as store:
        store.config().write_toml(local)
    done = _run("list", str(local), home=tmp_path)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "proxystore-store: error: store 'local': LocalConnector cannot list "
        "what it stores."
    ]
