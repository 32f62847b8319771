"""`pip install "proxystore[redis]"` from a built wheel set, in a fresh venv.

Builds every workspace member's wheel (`uv build --all-packages`), then installs the
`proxystore` install-name distribution with its `redis` extra into a new venv: our
wheels from the build directory, third-party ones (`redis`, `cloudpickle`, ...) from
the package index. Slow (a C extension is compiled), so it runs with the
integration tests (`make test-integration`), not in the unit run.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

CHECK = """
import importlib.metadata as metadata
import proxystore
from proxystore.connectors.local import LocalConnector
from proxystore.connectors.redis import RedisConnector
from proxystore.store import Store

assert metadata.version("proxystore") == "0.1.0"
assert getattr(proxystore, "__file__", None) is None  # still a PEP 420 namespace
assert RedisConnector.__name__ == "RedisConnector"
with Store("installed", LocalConnector()) as store:
    assert sum(store.proxy([1, 2, 3])) == 6
print("ok")
"""


def _uv() -> list[str]:
    found = shutil.which("uv")
    if found is not None:
        return [found]
    for python in ("python3", sys.executable):
        probe = subprocess.run(
            [python, "-m", "uv", "--version"], capture_output=True, check=False
        )
        if probe.returncode == 0:
            return [python, "-m", "uv"]
    pytest.fail("uv is needed to build the wheels (make install installs it)")


def _run(*args: str | pathlib.Path, cwd: pathlib.Path = ROOT) -> str:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_wheel_set_installs_proxystore_redis(tmp_path: pathlib.Path) -> None:
    uv = _uv()
    dist = tmp_path / "dist"
    _run(*uv, "build", "--all-packages", "--wheel", "-o", dist)
    wheels = {p.name.split("-")[0] for p in dist.glob("*.whl")}
    assert {"proxystore", "proxystore_proxy", "proxystore_store"} <= wheels
    meta = next(dist.glob("proxystore-*.whl"))

    venv = tmp_path / "venv"
    _run(*uv, "venv", "-q", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    _run(
        *uv,
        "pip",
        "install",
        "--python",
        python,
        "--find-links",
        dist,
        f"proxystore[redis] @ {meta.as_uri()}",
    )
    listed = _run(*uv, "pip", "list", "--python", python)
    installed = dict(line.split()[:2] for line in listed.splitlines()[2:])
    assert installed["proxystore"] == "0.1.0"
    assert installed["proxystore-connectors"] == "0.1.0"
    assert "redis" in installed
    assert "proxystore-endpoint" not in installed  # only what the extra asks for
    assert _run(python, "-c", CHECK, cwd=tmp_path).strip() == "ok"
