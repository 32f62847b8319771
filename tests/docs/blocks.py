"""Find the fenced Python blocks of the docs and turn a page's blocks into a script.

Every fenced block whose info string starts with `python` (or `py`) is an example. A
block is classified by an HTML comment on the line just above its fence (invisible in
the rendered site):

- no comment: runs in `tests/docs/` (`make test`), no server needed;
- `<!-- docs-test: needs redis -->` (or `kafka`): runs in `tests/integration/`
  (`make test-integration`) against the fixture's server. The literal defaults in the
  example (`"localhost"`, `6379`, `9092`) are replaced by the fixture's address;
- `<!-- docs-test: needs ucx -->`: runs in `tests/integration/` too, where the `ucx`
  dependency group (ucxx) is installed; no server, no replacement;
- `<!-- docs-test: skip REASON -->`: deliberately not runnable (a fragment, a
  cluster-only call); the reason is mandatory and the blocks are counted;
- `<!-- docs-test: walkthrough -->` (optionally `walkthrough background`): a step of a
  page's shell walk-through, run with the page's shell blocks by
  `tests/integration/test_docs_walkthrough.py` (see `tests/docs/walkthrough.py`).

A page's runnable blocks form one script, in page order, so later blocks can use names
from earlier ones. Lines that are not code become blank lines: a traceback's line
number is the line number in the Markdown file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^\n`]*)$")
MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<kind>\w+)\s*(?P<arg>.*?)\s*-->\s*$")
SERVERS = ("redis", "kafka", "ucx")
WALKTHROUGH_MODES = ("", "background")


@dataclass(frozen=True)
class Block:
    """One fenced block of a Markdown file (Python unless `lang` says otherwise)."""

    path: Path
    line: int  # 1-based line of the block's first code line
    source: str
    kind: str  # "run", "skip", "needs" or "walkthrough"
    arg: str  # the reason of a skip, the server of a "needs", a walkthrough's mode
    lang: str = "python"  # the info string's first word, lower case
    info: str = ""  # the rest of the info string (e.g. `title="x.py"`)

    @property
    def where(self) -> str:
        """`docs/guides/x.md:12` style location."""
        return f"{relative(self.path)}:{self.line}"


def relative(path: Path) -> str:
    """`path` relative to the repository when it is inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def markdown_files() -> list[Path]:
    """The READMEs (root and members) and every page under `docs/`.

    The generated API pages (`docs/reference/`) hold no examples and are skipped.
    """
    pages = [
        p for p in sorted((ROOT / "docs").rglob("*.md")) if "reference" not in p.parts
    ]
    members = sorted((ROOT / "packages").glob("*/README.md"))
    return [ROOT / "README.md", *members, *pages]


def parse(path: Path) -> list[Block]:
    """Return the Python blocks of `path`.

    Raises:
        ValueError: A `docs-test` comment is malformed (unknown kind, skip without a
            reason, unknown server) or a fence is left open.
    """
    return [block for block in fenced_blocks(path) if block.lang in ("python", "py")]


def fenced_blocks(path: Path) -> list[Block]:
    """Return every fenced block of `path`, whatever its language, in page order.

    Raises:
        ValueError: As `parse`.
    """
    lines = path.read_text().splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        fence, indent = match["fence"], len(match["indent"])
        lang, _, rest = match["info"].strip().partition(" ")
        lang = lang.lower()
        end = i + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        if end == len(lines):
            raise ValueError(f"{path}:{i + 1}: fence never closed")
        kind, arg = _marker(path, lines, i)
        body = "\n".join(line[indent:] for line in lines[i + 1 : end]) + "\n"
        blocks.append(Block(path, i + 2, body, kind, arg, lang, rest.strip()))
        i = end + 1
    return blocks


def _marker(path: Path, lines: list[str], fence_index: int) -> tuple[str, str]:
    above = fence_index - 1
    while above >= 0 and not lines[above].strip():
        above -= 1
    match = MARKER.match(lines[above]) if above >= 0 else None
    if match is None:
        return "run", ""
    kind, arg = match["kind"], match["arg"]
    where = f"{path}:{above + 1}"
    if kind == "skip" and not arg:
        raise ValueError(f"{where}: `docs-test: skip` needs a reason")
    if kind == "needs" and arg not in SERVERS:
        raise ValueError(f"{where}: `docs-test: needs` takes one of {SERVERS}")
    if kind == "walkthrough" and arg not in WALKTHROUGH_MODES:
        raise ValueError(f"{where}: `docs-test: walkthrough` takes {WALKTHROUGH_MODES}")
    if kind not in ("skip", "needs", "walkthrough"):
        raise ValueError(f"{where}: unknown docs-test marker {kind!r}")
    return kind, arg


def script(blocks: list[Block], total_lines: int) -> str:
    """Lay `blocks` (all from one file) at their own line numbers in one script."""
    out = [""] * total_lines
    for block in blocks:
        for offset, line in enumerate(block.source.splitlines()):
            out[block.line - 1 + offset] = line
    return "\n".join(out) + "\n"


def all_blocks() -> list[Block]:
    """Every Python block of every Markdown file, in file then page order."""
    return [block for path in markdown_files() for block in parse(path)]
