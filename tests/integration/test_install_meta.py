"""`pip install "proxystore[redis]"` from a built wheel set, in a fresh venv.

Builds every workspace member's wheel (`uv build --all-packages`), then installs the
`proxystore` install-name distribution with its `redis` extra into a new venv: our
wheels from the build directory, third-party ones (`redis`, `cloudpickle`, ...) from
the package index. Slow (a C extension is compiled), so it runs with the
integration tests (`make test-integration`), not in the unit run.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

CHECK = """
import importlib
import importlib.metadata as metadata
import pkgutil
import sys
import warnings

import proxystore
from proxystore.connectors.local import LocalConnector
from proxystore.connectors.redis import RedisConnector
from proxystore.store import Store

version = sys.argv[1]
assert metadata.version("proxystore") == version
assert proxystore.__version__ == version
# The install name's __init__ sits in the one directory every member unpacked into.
assert proxystore.__file__.endswith("site-packages/proxystore/__init__.py")
assert RedisConnector.__name__ == "RedisConnector"
with Store("installed", LocalConnector()) as store:
    assert sum(store.proxy([1, 2, 3])) == 6
# Every module of every installed member imports, except those whose client
# library the redis extra does not bring (the proxystore.ex.* aliases of those
# modules included: they re-export them; ex.plugins.distributed is store.dask).
optional = ("proxystore.mypy_plugin", "proxystore.store.dask",
            "proxystore.connectors.dim", "proxystore.connectors.globus",
            "proxystore.stream.shims", "proxystore.plugins.distributed")
warnings.simplefilter("ignore")
count = 0
for info in pkgutil.walk_packages(proxystore.__path__, "proxystore."):
    try:
        importlib.import_module(info.name)
    except Exception:
        target = info.name.replace("proxystore.ex.", "proxystore.", 1)
        assert target.startswith(optional), info.name
    else:
        count += 1
assert count > 60, count
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


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """Every workspace member's wheel, built once for this module."""
    dist = tmp_path_factory.mktemp("dist")
    _run(*_uv(), "build", "--all-packages", "--wheel", "-o", dist)
    return dist


def test_wheel_set_installs_proxystore_redis(
    tmp_path: pathlib.Path, wheels: pathlib.Path
) -> None:
    uv = _uv()
    dist = wheels
    names = {p.name.split("-")[0] for p in dist.glob("*.whl")}
    assert {"proxystore", "proxystore_proxy", "proxystore_store"} <= names
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
    version = metadata.version("proxystore")
    installed = _installed(uv, python)
    assert installed["proxystore"] == version
    assert installed["proxystore-connectors"] == version
    assert "redis" in installed
    assert "proxystore-endpoint" not in installed  # only what the extra asks for
    assert _run(python, "-c", CHECK, version, cwd=tmp_path).strip() == "ok"


@pytest.mark.parametrize("requirement", ["proxystore>=0.7", "proxystore==1.1.0"])
def test_requirement_on_the_reference_installs_ours(
    tmp_path: pathlib.Path, wheels: pathlib.Path, requirement: str
) -> None:
    """A downstream requirement written against the reference selects our wheels.

    The package index also offers the reference release under the same name: the
    installer must pick ours (its version meets the requirement and sorts higher),
    not replace it with the reference.
    """
    uv = _uv()
    dist = wheels
    venv = tmp_path / "venv"
    _run(*uv, "venv", "-q", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    _run(*uv, "pip", "install", "--python", python, "--find-links", dist, requirement)
    version = metadata.version("proxystore")
    installed = _installed(uv, python)
    assert installed["proxystore"] == version
    assert installed["proxystore-store"] == version
    shown = _run(python, "-c", "import proxystore; print(proxystore.__version__)")
    assert shown.strip() == version


def _installed(uv: list[str], python: pathlib.Path) -> dict[str, str]:
    listed = _run(*uv, "pip", "list", "--python", python)
    return dict(line.split()[:2] for line in listed.splitlines()[2:])
