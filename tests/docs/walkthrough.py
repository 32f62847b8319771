"""Turn a page's shell walk-through into files and one bash script.

The steps of a walk-through are the fenced blocks marked
`<!-- docs-test: walkthrough -->` (see `tests/docs/blocks.py`), in page order:

- a `bash`/`sh`/`shell` block is a step of the script, run in the same bash process as
  the others, so `export` and variables carry over from one block to the next;
- a `walkthrough background` block is a long-running server (the reader starts it in
  a terminal of its own): the script starts it in the background and waits until every
  port its `--port N` options name accepts connections;
- a `python` block must carry `title="NAME.py"`: it is a file the reader saves, and the
  shell blocks run it (`python NAME.py`).

Ports in the text are replaced (whole numbers only) before anything runs, so a
walk-through can use readable ports and the test free ones.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from tests.docs.blocks import Block, fenced_blocks, relative

SHELLS = ("bash", "sh", "shell")
_TITLE = re.compile(r'title="(?P<name>[A-Za-z0-9_.-]+\.py)"')
_PORT_OPTION = re.compile(r"--port[ =](?P<port>\d+)")
_PORT_MENTION = re.compile(r"(?:--port[ =]|127\.0\.0\.1:)(\d{2,5})\b")
#: Seconds a background server may take to accept connections.
BACKGROUND_READY_TIMEOUT = 60
#: File (in the work directory) the script appends background PIDs to.
BACKGROUND_PIDS = "walkthrough-background.pids"


@dataclass(frozen=True)
class Walkthrough:
    """The steps of one page, ready to run in a work directory."""

    files: dict[str, str]  # file name -> content, written before the script runs
    script: str  # bash source


def steps(path: Path) -> list[Block]:
    """The walk-through blocks of `path`, in page order.

    Raises:
        ValueError: A step is neither shell nor a Python file with a title, or two
            Python steps share a file name.
    """
    found = [b for b in fenced_blocks(path) if b.kind == "walkthrough"]
    names: set[str] = set()
    for block in found:
        if block.lang in ("python", "py"):
            match = _TITLE.search(block.info)
            if match is None:
                raise ValueError(
                    f'{block.where}: a Python walk-through step needs title="NAME.py"'
                )
            if match["name"] in names:
                raise ValueError(f"{block.where}: {match['name']} is written twice")
            names.add(match["name"])
        elif block.lang not in SHELLS:
            raise ValueError(
                f"{block.where}: walk-through steps are {SHELLS} or python blocks, "
                f"not {block.lang!r}"
            )
    return found


def substitute(text: str, replace: dict[str, str]) -> str:
    """Replace each key of `replace` where it stands as a whole number or word."""
    for old, new in replace.items():
        text = re.sub(rf"(?<![\w.]){re.escape(old)}(?!\w|\.\d)", new, text)
    return text


def build(blocks: list[Block], replace: dict[str, str] | None = None) -> Walkthrough:
    """Lay out the files and the bash script of a walk-through."""
    replace = replace or {}
    files: dict[str, str] = {}
    lines = [
        "set -euo pipefail",
        "__wait_port() {",
        f"  for _ in $(seq {BACKGROUND_READY_TIMEOUT * 10}); do",
        '    (: <>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0',
        "    sleep 0.1",
        "  done",
        '  echo "walkthrough: nothing listens on port $1" >&2',
        "  return 1",
        "}",
    ]
    for block in blocks:
        source = substitute(block.source, replace)
        if block.lang in ("python", "py"):
            match = _TITLE.search(block.info)
            assert match is not None  # checked by steps()
            files[match["name"]] = source
            continue
        lines.append(f"echo {shlex.quote(f'### {relative(block.path)}:{block.line}')}")
        if block.arg == "background":
            log = f"walkthrough-background-{block.line}.log"
            lines.append(f"( {source.strip()}\n) > {log} 2>&1 &")
            lines.append(f"echo $! >> {BACKGROUND_PIDS}")
            lines += [f"__wait_port {p}" for p in _PORT_OPTION.findall(source)]
        else:
            lines.append(source.rstrip("\n"))
    return Walkthrough(files, "\n".join(lines) + "\n")


def ports(blocks: list[Block]) -> list[str]:
    """The port numbers the steps name (`--port N`, `:N` in an address), in order."""
    found: list[str] = []
    for block in blocks:
        for port in _PORT_MENTION.findall(block.source):
            if port not in found:
                found.append(port)
    return found
