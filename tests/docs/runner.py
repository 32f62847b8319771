"""Run a page's blocks as one script in a fresh interpreter (for both test layers)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.docs.blocks import ROOT, Block, relative, script


def run_page(
    blocks: list[Block], workdir: Path, replace: dict[str, str] | None = None
) -> None:
    """Execute `blocks` (one page's, in order) in a subprocess started in `workdir`.

    A fresh interpreter per page keeps process-wide state (the store registry, imported
    modules) from leaking between pages, and lets examples use process pools.

    Raises:
        AssertionError: The script failed; the message holds its output, whose
            traceback line numbers are the Markdown file's.
    """
    path = blocks[0].path
    source = script(blocks, len(path.read_text().splitlines()))
    for old, new in (replace or {}).items():
        source = source.replace(old, new)
    target = workdir / path.name.replace(".md", "_md.py")
    target.write_text(source)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", str(target)],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, (
        f"the examples of {relative(path)} failed "
        f"(line numbers are the page's):\n{proc.stdout}\n{proc.stderr}"
    )
