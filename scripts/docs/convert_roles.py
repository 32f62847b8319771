"""Rewrite Sphinx cross-reference roles in Python sources as Markdown for mkdocstrings.

`:class:`~proxystore.store.Store`` becomes `` `Store` ``, or the cross-reference
`` [`Store`][proxystore.store.Store] `` when the target is an object the docs site
renders (listed in the site's `objects.inv`, written by `make docs`) and the line
stays within the line-length limit. Roles handled: `class`, `func`, `meth`, `attr`,
`mod`, `exc`, `data`, `obj`, `const` (with or without the `py:` domain), in the
forms `target`, `~target` (show the last name) and `text <target>`. A target that
is not fully qualified is looked up relative to the module that contains it. A
`Raises:` section that only says "Same as `x`." becomes the sentence "Raises the same
exceptions as `x`." (griffe cannot parse it as a section).

Run it after merging other branches (`tests/docs/test_no_sphinx_roles.py` fails while
a role remains under `packages/`):

    uv run --frozen python -m scripts.docs.convert_roles [--inventory site/objects.inv]
"""

from __future__ import annotations

import argparse
import re
import zlib
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROLES = "class|func|meth|attr|mod|exc|data|obj|const"
ROLE = re.compile(rf":(?:py:)?(?:{ROLES}):`(?P<body>[^`]+)`")
# A role whose target was wrapped onto the next line of a docstring.
WRAPPED = re.compile(
    rf":(?:py:)?(?:{ROLES}):`(?P<head>[^`\n]*)\n(?P<indent>[ \t]*)(?P<tail>[^`\n]*)`"
    r"(?P<punct>[.,;:)]*)[ \t]*"
)
LINE_LIMIT = 88
# "Raises: Same as X." is no "exception: description" pair: griffe warns (and the strict
# docs build fails), so such a section becomes a sentence.
SAME_RAISES = re.compile(
    r"^(?P<indent>[ \t]*)Raises:\n[ \t]*Same as (?P<ref>`[^`\n]+`)\.\n", re.MULTILINE
)


def read_inventory(path: Path) -> set[str]:
    """Return the object names listed in a Sphinx-format `objects.inv` (v2).

    Raises:
        ValueError: The file is not a version 2 inventory.
    """
    raw = path.read_bytes()
    header_end = 0
    for _ in range(4):
        header_end = raw.index(b"\n", header_end) + 1
    if not raw.startswith(b"# Sphinx inventory version 2"):
        raise ValueError(f"{path} is not a Sphinx v2 inventory")
    text = zlib.decompress(raw[header_end:]).decode()
    return {line.split(" ", 1)[0] for line in text.splitlines() if line.strip()}


def module_of(path: Path) -> str:
    """The dotted module name of a source file under `packages/*/src/` (or "")."""
    parts = path.parts
    if "src" not in parts:
        return ""
    dotted = list(Path(*parts[parts.index("src") + 1 :]).with_suffix("").parts)
    if dotted and dotted[-1] == "__init__":
        dotted.pop()
    return ".".join(dotted)


def _candidates(target: str, module: str) -> Iterable[str]:
    yield target
    parts = module.split(".") if module else []
    while parts:
        yield ".".join([*parts, target])
        parts.pop()


def _resolve(target: str, module: str, known: set[str]) -> str | None:
    target = target.lstrip(".")
    return next((c for c in _candidates(target, module) if c in known), None)


def convert_text(text: str, module: str = "", known: set[str] | None = None) -> str:
    """Return `text` with every role rewritten (see the module docstring)."""
    known = known or set()
    text = WRAPPED.sub(_unwrap, text)
    out: list[str] = []
    for line in text.splitlines(keepends=True):
        out.append(_convert_line(line, module, known))
    return SAME_RAISES.sub(
        lambda m: f"{m['indent']}Raises the same exceptions as {m['ref']}.\n",
        "".join(out),
    )


def _unwrap(match: re.Match[str]) -> str:
    """Plain backticks for a wrapped role; the line break stays after it."""
    body = (match["head"] + match["tail"]).strip().lstrip("!")
    explicit = re.fullmatch(r"(?P<text>.+?)\s*<(?P<target>[^<>]+)>", body)
    if explicit:
        shown = explicit["text"]
    else:
        shown = body.lstrip("~").rsplit(".", 1)[-1] if body.startswith("~") else body
    rest = match.string[match.end() :]
    if not rest or rest.startswith("\n"):  # the role ended its line
        return f"`{shown}`{match['punct']}"
    return f"`{shown}`{match['punct']}\n{match['indent']}"


def _convert_line(line: str, module: str, known: set[str]) -> str:
    while (match := ROLE.search(line)) is not None:
        body = match["body"].strip().lstrip("!")
        explicit = re.fullmatch(r"(?P<text>.+?)\s*<(?P<target>[^<>]+)>", body)
        if explicit:
            shown, target = explicit["text"], explicit["target"]
        elif body.startswith("~"):
            target = body[1:]
            shown = target.rsplit(".", 1)[-1]
        else:
            shown = target = body
        plain = f"`{shown}`"
        resolved = _resolve(target, module, known)
        link = f"[`{shown}`][{resolved}]" if resolved else None
        before, after = line[: match.start()], line[match.end() :]
        candidate = f"{before}{link}{after}" if link else None
        fits = candidate is not None and len(candidate.rstrip("\n")) <= LINE_LIMIT
        line = candidate if fits and candidate else f"{before}{plain}{after}"
    return line


def convert_tree(root: Path, known: set[str]) -> list[Path]:
    """Rewrite every `*.py` under `root` that holds a role; return the changed files."""
    changed = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        if ROLE.search(text) is None and SAME_RAISES.search(text) is None:
            continue
        path.write_text(convert_text(text, module_of(path), known))
        changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> None:
    """Convert `packages/` in place and list the files it changed."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT / "packages")
    parser.add_argument("--inventory", type=Path, default=ROOT / "site" / "objects.inv")
    args = parser.parse_args(argv)
    known = read_inventory(args.inventory) if args.inventory.exists() else set()
    if not known:
        print(
            "convert_roles: no inventory (run `make docs` first): plain backticks only"
        )
    changed = convert_tree(args.root, known)
    for path in changed:
        print(
            f"converted {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}"
        )
    print(f"convert_roles: {len(changed)} files")


if __name__ == "__main__":
    main()
