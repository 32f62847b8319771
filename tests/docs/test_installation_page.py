"""The installation page lists every extra the `proxystore` install name offers."""

from __future__ import annotations

import tomllib

from tests.docs.blocks import ROOT


def test_every_extra_is_in_the_table() -> None:
    pyproject = ROOT / "packages" / "proxystore" / "pyproject.toml"
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    page = (ROOT / "docs" / "installation.md").read_text()
    rows = {
        line.split("|")[1].strip().strip("`")
        for line in page.splitlines()
        if line.startswith("| `")
    }
    assert set(extras) == rows, (
        f"missing: {set(extras) - rows}, stale: {rows - set(extras)}"
    )
