"""One version for every member, one that requirements on the reference accept.

Policy (README, "Versions"): our version is the reference release whose API we
match with a local label of ours, ``1.1.0+mono.N``. PEP 440 ignores the label when
a requirement has none, so every requirement written against the reference meets
us exactly where it meets that release: ``proxystore>=0.7``, ``~=1.1``, ``==1.1.*``,
``>=0.6.5,<2`` and even ``==1.1.0``.
"""

from __future__ import annotations

import importlib.metadata as metadata
import pathlib
import re
import subprocess
import sys
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

import proxystore

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROJECTS = sorted((ROOT / "packages").glob("*/pyproject.toml"))
#: The reference release whose public API we match.
REFERENCE = Version("1.1.0")


def _project(path: pathlib.Path) -> dict[str, object]:
    with path.open("rb") as f:
        project = tomllib.load(f)["project"]
    assert isinstance(project, dict)
    return project


VERSION = metadata.version("proxystore")


def test_every_member_has_one_version() -> None:
    assert len(PROJECTS) >= 9
    declared = {str(_project(p)["name"]): str(_project(p)["version"]) for p in PROJECTS}
    assert set(declared.values()) == {VERSION}, declared
    installed = {name: metadata.version(name) for name in declared}
    assert set(installed.values()) == {VERSION}, installed


def test_version_is_the_matched_reference_release_plus_our_label() -> None:
    ours = Version(VERSION)
    assert ours.public == str(REFERENCE)
    assert ours.local is not None
    label, number = ours.local.split(".")
    assert label == "mono"
    assert int(number) >= 1
    assert ours > REFERENCE  # an installer offered both prefers ours


@pytest.mark.parametrize(
    "requirement",
    [">=0.7", ">=0.6.5,<2", "~=1.1", "==1.1.*", "==1.1.0", "<=1.1.0", ">=1.1", "<2"],
)
def test_requirements_written_against_the_reference_accept_us(
    requirement: str,
) -> None:
    assert VERSION in SpecifierSet(requirement)
    assert REFERENCE in SpecifierSet(requirement)


@pytest.mark.parametrize("requirement", [">1.1.0", "!=1.1.0", ">=1.2", "<1.1"])
def test_requirements_that_exclude_the_reference_release_exclude_us(
    requirement: str,
) -> None:
    assert REFERENCE not in SpecifierSet(requirement)
    assert VERSION not in SpecifierSet(requirement)


def test_dunder_version_is_the_distribution_version() -> None:
    assert proxystore.__version__ == VERSION
    assert isinstance(proxystore.__version__, str)
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = proxystore.no_such_name


def test_importing_proxystore_reads_no_metadata() -> None:
    # ``__version__`` is looked up on first access: a bare import stays cheap.
    code = (
        "import sys; before = set(sys.modules); import proxystore; "
        "print(sorted(set(sys.modules) - before - {'__future__'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "['proxystore']"


def test_install_name_pins_every_member_to_its_own_version() -> None:
    meta = _project(ROOT / "packages" / "proxystore" / "pyproject.toml")
    dependencies = meta["dependencies"]
    extras = meta["optional-dependencies"]
    assert isinstance(dependencies, list)
    assert isinstance(extras, dict)
    requirements = [Requirement(r) for r in dependencies]
    requirements += [Requirement(r) for group in extras.values() for r in group]
    ours = [r for r in requirements if r.name.startswith("proxystore-")]
    assert {r.name for r in requirements if r.specifier} >= {
        "proxystore-proxy",
        "proxystore-serialize",
        "proxystore-store",
        "proxystore-endpoint",
    }
    for req in ours:
        assert str(req.specifier) in ("", f"=={VERSION}"), req


def test_endpoint_cli_prints_the_version() -> None:
    script = pathlib.Path(sys.executable).parent / "proxystore-endpoint"
    done = subprocess.run(
        [str(script), "version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"ProxyStore v{VERSION}\n"


def test_readme_states_the_policy_for_this_version() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Versions\n(.*?)^## ", readme, re.S | re.M)
    assert section is not None, "README has no '## Versions' section"
    assert f"`{VERSION}`" in section.group(1)
    assert str(REFERENCE) in section.group(1)
