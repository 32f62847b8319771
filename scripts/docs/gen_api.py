"""Write one API reference page per public module into `docs/reference/`.

The pages are generated, not committed: `make docs` runs this script before every build,
so a module added by any workspace member gets its page without a hand edit. A module
is public when no part of its dotted name starts with `_`; the walk reads the source
tree (`packages/*/src/proxystore/`) and imports nothing, so a module whose optional
third-party client is missing still gets a page (mkdocstrings reads sources statically).
Like `pkgutil.walk_packages`, it only descends into regular packages (`__init__.py`).

Usage: `python -m scripts.docs.gen_api [--out DIR]`.
"""

from __future__ import annotations

import argparse
import os
import shutil
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ROOT / "packages"
DEFAULT_OUT = ROOT / "docs" / "reference"


def public_modules(packages: Path = PACKAGES) -> dict[str, str]:
    """Map every public module name to the workspace member that ships it.

    Args:
        packages: The folder holding one directory per workspace member.

    Returns:
        `{"proxystore.store.base": "proxystore-store", ...}`, sorted by module name.
    """
    sources = sorted(packages.glob("*/src"))
    # Regular packages, by dotted folder, whichever member holds their __init__.py: a
    # member may add modules to another member's package (the endpoint member ships
    # `proxystore.connectors.endpoint`; `proxystore.connectors` extends its __path__).
    regular = {
        ".".join(init.parent.relative_to(src).parts)
        for src in sources
        for init in src.glob("proxystore/**/__init__.py")
    }
    found: dict[str, str] = {}
    for src in sources:
        member = src.parent.name
        for path in sorted(src.glob("proxystore/**/*.py")):
            parts = list(path.relative_to(src).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            if len(parts) < 2 or any(part.startswith("_") for part in parts):
                continue
            folders = path.relative_to(src).parent.parts
            # Like pkgutil.walk_packages (and so tests/api): no descent into namespace
            # folders such as the `proxystore.ex` compatibility aliases.
            chain = [".".join(folders[:n]) for n in range(2, len(folders) + 1)]
            if all(folder in regular for folder in chain):
                found[".".join(parts)] = member
    return dict(sorted(found.items()))


def search_path(packages: Path = PACKAGES) -> list[Path]:
    """The members' source folders, in the order the API build must search them.

    griffe (behind mkdocstrings) finds a module that one member adds to another
    member's package (`proxystore.connectors.endpoint`, shipped by the endpoint
    member) only when the contributing member's folder comes first: then it sees a
    namespace portion and merges every member's folder. `make docs` puts this list in
    `PYTHONPATH`, ahead of the editable installs.
    """
    sources = sorted(packages.glob("*/src"))
    regular = {
        init.parent.relative_to(src)
        for src in sources
        for init in src.rglob("*.py")
        if init.name == "__init__.py"
    }

    def contributes(src: Path) -> bool:
        return any(
            folder.relative_to(src) in regular and not (folder / "__init__.py").exists()
            for folder in (src / "proxystore").rglob("*/")
        )

    return sorted(sources, key=lambda src: (not contributes(src), src.name))


def page_name(module: str) -> str:
    """Return the file name of `module`'s page inside the reference folder."""
    return f"{module}.md"


def _page(module: str, member: str) -> str:
    return (
        f"# `{module}`\n\nShipped by the `{member}` workspace member.\n\n::: {module}\n"
    )


def _index(modules: dict[str, str]) -> str:
    by_member: dict[str, list[str]] = defaultdict(list)
    for module, member in modules.items():
        by_member[member].append(module)
    lines = [
        "# API reference",
        "",
        "One page per public module, generated from the docstrings by mkdocstrings",
        "(`scripts/docs/gen_api.py` writes this index on every build). Modules are",
        "grouped by the workspace member (`packages/<name>/`) that ships them.",
        "",
    ]
    for member in sorted(by_member):
        lines += [f"## `{member}`", ""]
        lines += [f"- [`{m}`]({page_name(m)})" for m in by_member[member]]
        lines.append("")
    return "\n".join(lines)


def generate(out: Path = DEFAULT_OUT) -> list[str]:
    """Rewrite `out` with one page per public module plus an index.

    Args:
        out: The folder to (re)create; anything already in it is removed.

    Returns:
        The module names that got a page.
    """
    modules = public_modules()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for module, member in modules.items():
        (out / page_name(module)).write_text(_page(module, member))
    (out / "index.md").write_text(_index(modules))
    return list(modules)


def main(argv: list[str] | None = None) -> None:
    """Generate the pages and print how many."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--pythonpath", action="store_true", help="print search_path() and exit"
    )
    args = parser.parse_args(argv)
    if args.pythonpath:
        print(os.pathsep.join(str(src) for src in search_path()))
        return
    names = generate(args.out)
    print(f"gen_api: {len(names)} module pages in {args.out}")


if __name__ == "__main__":
    main()
