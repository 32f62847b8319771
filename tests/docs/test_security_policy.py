"""The Security page includes SECURITY.md without breaking the strict docs build."""

from __future__ import annotations

from pathlib import Path

from scripts.docs.security_policy import localise, write


def test_localise_unlinks_repository_paths_and_demotes_headings() -> None:
    source = (
        "# Security policy\n\nSee [the README](README.md), [`x.py`](x.py),\n"
        "[the site](https://example.org/a) and [below](#reporting).\n\n"
        "```bash\n# not a heading\n```\n## Reporting\n"
    )
    assert localise(source) == (
        "## Security policy\n\nSee the README (`README.md`), `x.py`,\n"
        "[the site](https://example.org/a) and [below](#reporting).\n\n"
        "```bash\n# not a heading\n```\n### Reporting\n"
    )


def test_write_copies_or_clears(tmp_path: Path) -> None:
    source, target = tmp_path / "SECURITY.md", tmp_path / "out" / "policy.md"
    assert not write(source, target)
    source.write_text("# Policy\n[r](README.md)\n")
    assert write(source, target)
    assert target.read_text() == "## Policy\nr (`README.md`)\n"
    source.unlink()
    assert not write(source, target)
    assert not target.exists()
