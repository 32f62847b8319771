"""Attacks by another local user on the node-local connectors, with real processes.

Each test runs the attacker (and, where it matters, the victim) as a separate
process of another uid: the process starts as root, imports what it needs (the
interpreter may live where only root can read), then drops to its uid with
``setgroups``/``setgid``/``setuid`` before doing anything else. The uids need no
account: ``65534`` (``nobody``) is the squatter, ``65533`` a non-root victim.

The attacks are those of the security review: another user pre-creates the
shared-memory arena (mode 0666, and 0600) or a segment at a name the victim will
use, to read the victim's objects and have the victim unpickle a payload of
theirs; a proxy of one user is resolved by another; and another user reads the
files of a ``FileConnector``. When the victim is not refused, each test goes on
with the attack and fails saying what the attacker achieved.

Running processes as other uids needs root: elsewhere these tests skip, except
under ``CI=true`` (CI runs as root), where that is a failure.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from proxystore.connectors import _arena
from proxystore.connectors import exceptions as errors
from proxystore.connectors.file import FileConnector
from proxystore.connectors.shm import SHM_DIR, SharedMemoryConnector
from proxystore.store import Store
from tests.integration.harness.mode import in_ci

SQUATTER = 65534
VICTIM = 65533
ROOT = 0
ARENA_OPTIONS: dict[str, Any] = {"arena_size": 4 << 20, "arena_slots": 16}
#: What the victim stores; the attacker looks for it.
SECRET = b"victim-secret-" + secrets.token_hex(8).encode()

# Run first in every child: imports while still root, then the drop to the uid.
_PRELUDE = """
import json, os, pickle, struct, sys
from proxystore.connectors import _arena
from proxystore.connectors.exceptions import ConnectorError
from proxystore.connectors.shm import SHM_DIR, SharedMemoryConnector, SharedMemoryKey
from proxystore.proxy import extract
from proxystore.serialize import serialize
from proxystore.store import Store
import proxystore.store.factory

uid = int(sys.argv[1])
args = sys.argv[2:]
if uid != 0:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
if {os.getuid(), os.geteuid(), os.getgid(), os.getegid()} != {uid}:
    raise SystemExit(f"could not become uid {uid}")

def report(**fields):
    print(json.dumps(fields), flush=True)

def chain(exc):
    out = []
    while exc is not None and len(out) < 8:
        out.append([type(exc).__name__, str(exc)])
        exc = exc.__cause__ or exc.__context__
    return out

class Payload:
    # What the squatter plants: unpickling it makes the directory `marker`.
    def __init__(self, marker):
        self.marker = marker
    def __reduce__(self):
        return (os.mkdir, (self.marker,))
"""


def _run_as(uid: int, code: str, *args: str, pure: bool = False) -> dict[str, Any]:
    """Run ``code`` (after the prelude) as ``uid``; return its JSON report."""
    env = {**os.environ, "PROXYSTORE_ARENA_PURE_PYTHON": "1" if pure else "0"}
    done = subprocess.run(
        [sys.executable, "-c", _PRELUDE + textwrap.dedent(code), str(uid), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, f"uid {uid} child failed:\n{done.stderr}"
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


@pytest.fixture(autouse=True)
def _need_root() -> None:
    if os.geteuid() != 0:
        message = "needs root, to run the attacker and victims as other uids"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def namespace() -> Iterator[str]:
    """A fresh namespace; every /dev/shm file of it (any uid) goes at the end."""
    name = f"mu_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        yield name
    finally:
        for entry in os.listdir(SHM_DIR):
            if f"-{name}-" in entry:
                os.unlink(os.path.join(SHM_DIR, entry))


@pytest.fixture
def shared_tmp() -> Iterator[str]:
    """A temporary directory every uid may traverse and write (sticky, 1777)."""
    path = tempfile.mkdtemp(prefix="ps-multiuser-")
    try:
        os.chmod(path, 0o1777)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _files_of(namespace: str) -> dict[str, tuple[int, int]]:
    """Map each /dev/shm file of ``namespace`` to its (owner uid, mtime)."""
    out = {}
    for entry in os.listdir(SHM_DIR):
        if f"-{namespace}-" in entry:
            st = os.lstat(os.path.join(SHM_DIR, entry))
            out[entry] = (st.st_uid, st.st_mtime_ns)
    return out


def _assert_refused(report: dict[str, Any], path: str, problem: str) -> None:
    assert report["refused"][0][0] == "ForeignFileError", report
    message = report["refused"][0][1]
    assert path in message
    assert problem in message
    assert "nothing was read from or written to it" in message


# ------------------------------------------------------------------ arena squat

_ARENA_PATH = """
connector = SharedMemoryConnector(args[0], arena=True)
report(path=connector._arena_path, stem=connector._stem)
"""

_SQUAT_ARENA = """
path, mode = args[0], int(args[1], 8)
fd = _arena._create(path, 4 << 20, 16)  # a valid arena, as the library makes one
if fd is not None:
    os.close(fd)
os.chmod(path, mode)
report(mode=oct(os.stat(path).st_mode & 0o777))
"""

_VICTIM_PUT = """
namespace, secret = args[0], args[1].encode()
options = {"arena": True, "arena_size": 4 << 20, "arena_slots": 16}
if len(args) > 2:
    options = {}
connector = SharedMemoryConnector(namespace, clear=False, **options)
store = Store("victim", connector, cache_size=0)
try:
    key = store.put(secret)
except ConnectorError as exc:
    attached = _arena.arena_of(connector._arena_path) is not None
    report(refused=chain(exc), attached=attached)
else:
    report(key=list(key))
"""

_SQUATTER_REWRITES_ARENA = """
path, name, marker, secret = args[0], args[1], args[2], args[3].encode()
fd = os.open(path, os.O_RDWR)
data = os.pread(fd, os.fstat(fd).st_size, 0)
slot, gen = (int(x) for x in name.rsplit("~", 1)[1].split("."))
table = struct.unpack_from("<q", data, 3 * 8)[0]
entry = table + slot * 16 * 8
offset = struct.unpack_from("<q", data, entry + 2 * 8)[0]
evil = bytes(serialize(Payload(marker)))
os.pwrite(fd, evil, offset)
os.pwrite(fd, struct.pack("<q", len(evil)), entry + 4 * 8)
os.close(fd)
report(read_secret=secret in data)
"""

_VICTIM_GET = """
namespace, name, size, marker = args[0], args[1], int(args[2]), args[3]
options = {"arena": True, "arena_size": 4 << 20, "arena_slots": 16}
if len(args) > 4:
    options = {}
connector = SharedMemoryConnector(namespace, clear=False, **options)
store = Store("victim", connector, cache_size=0)
key = SharedMemoryKey(name, size)
result = {}
for op, call in (("get", store.get), ("exists", connector.exists)):
    try:
        call(key)
    except ConnectorError as exc:
        result[op] = chain(exc)
report(refused=result.get("get"), exists=result.get("exists"),
       ran=os.path.exists(marker))
"""


def _finish_arena_attack(
    victim: int, namespace: str, path: str, key: list[Any], marker: str, pure: bool
) -> str:
    """The victim was not refused: read and rewrite its object, have it unpickled."""
    squat = _run_as(
        SQUATTER, _SQUATTER_REWRITES_ARENA, path, key[0], marker, SECRET.decode()
    )
    got = _run_as(
        victim, _VICTIM_GET, namespace, key[0], str(key[1]), marker, pure=pure
    )
    return (
        f"the victim (uid {victim}) attached the squatted arena {path}: the "
        f"squatter read its object: {squat['read_secret']}; the victim ran the "
        f"squatter's payload: {got['ran']}"
    )


@pytest.mark.parametrize("mode", ["666", "600"])
@pytest.mark.parametrize(
    ("victim", "pure"),
    [(ROOT, False), (VICTIM, False), (VICTIM, True)],
    ids=["root", "uid-c", "uid-pure-python"],
)
def test_squatted_arena_is_refused_never_attached(
    namespace: str, shared_tmp: str, victim: int, pure: bool, mode: str
) -> None:
    where = _run_as(victim, _ARENA_PATH, namespace)
    path = where["path"]
    _run_as(SQUATTER, _SQUAT_ARENA, path, mode)
    before = _files_of(namespace)
    assert before[os.path.basename(path)][0] == SQUATTER
    with open(path, "rb") as f:
        content = f.read()

    put = _run_as(victim, _VICTIM_PUT, namespace, SECRET.decode(), pure=pure)
    marker = os.path.join(shared_tmp, "payload-ran")
    if "key" in put:
        pytest.fail(
            _finish_arena_attack(victim, namespace, path, put["key"], marker, pure)
        )
    _assert_refused(put, path, f"belongs to uid {SQUATTER}")
    assert put["attached"] is False
    # Not a byte written into the squatter's file, nothing else created.
    with open(path, "rb") as f:
        assert f.read() == content
    assert _files_of(namespace) == before
    assert not os.path.exists(marker)


def test_squatted_arena_is_refused_in_this_process(namespace: str) -> None:
    # The same attack on a root victim in the test process, for the error object.
    connector = SharedMemoryConnector(namespace, arena=True, **ARENA_OPTIONS)
    path = connector._arena_path
    _run_as(SQUATTER, _SQUAT_ARENA, path, "666")
    with (
        pytest.raises(errors.ConnectorError) as info,
        Store("victim", connector, cache_size=0) as store,
    ):
        store.put(SECRET)
    assert isinstance(info.value, errors.ForeignFileError), info.value
    assert isinstance(info.value, PermissionError)
    assert info.value.path == path
    assert _arena.arena_of(path) is None
    with open(path, "rb") as f:
        assert SECRET not in f.read()
    assert os.lstat(path).st_uid == SQUATTER  # the clearing close left it alone


# ------------------------------------------------------------------ segment squat

_VICTIM_EVICTS = """
namespace = args[0]
connector = SharedMemoryConnector(namespace, clear=False)
key = connector.put(b"a first version")
connector.evict(key)  # a proxy of it may still travel: its name is known
report(key=list(key))
"""

_SQUAT_SEGMENT = """
name, marker = args[0], args[1]
evil = bytes(serialize(Payload(marker)))
path = os.path.join(SHM_DIR, name)
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.write(fd, b"PSSHM\\x00\\x00\\x01" + struct.pack("<Q", len(evil)) + bytes(48) + evil)
os.close(fd)
os.chmod(path, 0o644)
report(path=path)
"""


@pytest.mark.parametrize("victim", [ROOT, VICTIM], ids=["root", "uid"])
def test_squatted_segment_name_is_refused(
    namespace: str, shared_tmp: str, victim: int
) -> None:
    key = _run_as(victim, _VICTIM_EVICTS, namespace)["key"]
    marker = os.path.join(shared_tmp, "payload-ran")
    path = _run_as(SQUATTER, _SQUAT_SEGMENT, key[0], marker)["path"]
    got = _run_as(
        victim, _VICTIM_GET, namespace, key[0], str(key[1]), marker, "segments"
    )
    assert not got["ran"], f"the victim (uid {victim}) ran the squatter's payload"
    for op in ("refused", "exists"):
        _assert_refused({"refused": got[op]}, path, f"belongs to uid {SQUATTER}")


# ------------------------------------------------------------------ other uid


_WRITE_PROXIES = """
namespace = args[0]
arena = SharedMemoryConnector(namespace, arena=True, arena_size=4 << 20,
                              arena_slots=16, clear=False)
segments = SharedMemoryConnector(namespace, clear=False)
proxies = []
for i, connector in enumerate((arena, segments)):
    store = Store(f"writer-{i}", connector, cache_size=0, register=True)
    proxies.append(pickle.dumps(store.proxy(b"p" * 300_000)).hex())
report(proxies=proxies)
"""

_RESOLVE = """
results = []
for hexed in args:
    try:
        results.append(["ok", len(extract(pickle.loads(bytes.fromhex(hexed))))])
    except Exception as exc:
        results.append(chain(exc))
report(results=results)
"""


@pytest.mark.parametrize("pure", [False, True], ids=["c", "pure-python"])
def test_proxy_of_another_uid_fails_clearly(namespace: str, pure: bool) -> None:
    proxies = _run_as(ROOT, _WRITE_PROXIES, namespace)["proxies"]
    before = _files_of(namespace)
    results = _run_as(SQUATTER, _RESOLVE, *proxies, pure=pure)["results"]
    for result in results:
        names = [name for name, _ in result]
        assert "ForeignFileError" in names, result
        message = result[names.index("ForeignFileError")][1]
        assert "names shared memory of uid 0" in message
        assert f"runs as uid {SQUATTER}" in message
    assert _files_of(namespace) == before  # nothing attached, nothing created


def test_proxy_resolves_in_another_process_of_the_same_uid(namespace: str) -> None:
    proxies = _run_as(VICTIM, _WRITE_PROXIES, namespace)["proxies"]
    assert _run_as(VICTIM, _RESOLVE, *proxies)["results"] == [["ok", 300_000]] * 2
    assert {uid for uid, _ in _files_of(namespace).values()} == {VICTIM}


# ------------------------------------------------------------------ reading

_TRY_READ = """
results = {}
for path in args:
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            with open(path, "rb") as f:
                f.read()
        results[path] = "read"
    except PermissionError:
        results[path] = "denied"
report(results=results)
"""


def test_another_uid_cannot_read_private_objects(namespace: str) -> None:
    parent = tempfile.mkdtemp(prefix="ps-multiuser-")  # a directory others traverse
    os.chmod(parent, 0o755)
    arena = SharedMemoryConnector(namespace, arena=True, **ARENA_OPTIONS)
    segments = SharedMemoryConnector(namespace)
    try:
        with FileConnector(os.path.join(parent, "store")) as files:
            file_key = files.put(SECRET)
            segment_key = segments.put(SECRET)
            arena.put(SECRET)
            targets = [
                files.store_dir,
                os.path.join(files.store_dir, file_key.filename),
                os.path.join(SHM_DIR, segment_key.name),
                arena._arena_path,
            ]
            results = _run_as(SQUATTER, _TRY_READ, *targets)["results"]
            assert results == dict.fromkeys(targets, "denied")
    finally:
        arena.close()
        segments.close()
        shutil.rmtree(parent, ignore_errors=True)


def test_file_permissions_option_shares_objects_with_other_uids() -> None:
    parent = tempfile.mkdtemp(prefix="ps-multiuser-")
    os.chmod(parent, 0o755)
    old = os.umask(0o077)  # the option holds whatever the umask
    try:
        with FileConnector(os.path.join(parent, "store"), permissions=0o644) as files:
            key = files.put(SECRET)
            targets = [files.store_dir, os.path.join(files.store_dir, key.filename)]
            results = _run_as(SQUATTER, _TRY_READ, *targets)["results"]
            assert results == dict.fromkeys(targets, "read")
    finally:
        os.umask(old)
        shutil.rmtree(parent, ignore_errors=True)
