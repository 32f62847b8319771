"""Every fenced Python block in `docs/` and the READMEs runs (or is explicitly marked).

Blocks that need no server run here, one subprocess per page. Blocks marked
`<!-- docs-test: needs redis|kafka -->` run in
`tests/integration/test_docs_examples.py`, and the steps of a walk-through
(`<!-- docs-test: walkthrough -->`) in `tests/integration/test_docs_walkthrough.py`.
See `tests/docs/blocks.py` for the rules.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.docs.blocks import ROOT, all_blocks, markdown_files, parse
from tests.docs.runner import run_page

PAGES = {
    str(path.relative_to(ROOT)): blocks
    for path in markdown_files()
    if (blocks := [b for b in parse(path) if b.kind == "run"])
}


def test_blocks_are_found_and_classified() -> None:
    blocks = all_blocks()
    kinds = Counter(b.kind for b in blocks)
    print(f"docs python blocks: {dict(kinds)} of {len(blocks)}")
    # The README and the guides hold many examples: finding few means a parser bug.
    assert kinds["run"] >= 20
    assert all(b.kind in ("run", "skip", "needs", "walkthrough") for b in blocks)
    skipped = [b for b in blocks if b.kind == "skip"]
    assert all(b.arg for b in skipped), "every skipped block gives a reason"
    # Deliberately unrunnable blocks stay the exception.
    assert len(skipped) <= len(blocks) // 5, [b.where for b in skipped]


def test_parser_reads_markers(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# t\n\n```python\nx = 1\n```\n\n<!-- docs-test: skip a fragment -->\n"
        "```python\nnot python\n```\n<!-- docs-test: needs redis -->\n"
        "```py\ny = 2\n```\n```bash\nls\n```\n"
    )
    blocks = parse(page)
    assert [(b.kind, b.arg, b.line) for b in blocks] == [
        ("run", "", 4),
        ("skip", "a fragment", 9),
        ("needs", "redis", 13),
    ]
    page.write_text("<!-- docs-test: skip -->\n```python\nx\n```\n")
    with pytest.raises(ValueError, match="needs a reason"):
        parse(page)


def test_failing_block_reports_the_page_line(tmp_path: Path) -> None:
    page = tmp_path / "bad.md"
    page.write_text("# bad\n\n```python\nx = 1\n```\n\ntext\n\n```python\n1 / 0\n```\n")
    with pytest.raises(AssertionError, match=r"(?s)line 10.*ZeroDivisionError"):
        run_page(parse(page), tmp_path)


@pytest.mark.parametrize("page", sorted(PAGES))
def test_page_examples_run(page: str, tmp_path: Path) -> None:
    run_page(PAGES[page], tmp_path)
