"""Write one API reference page per public module into `docs/reference/`.

The pages are generated, not committed: `make docs` runs this script before every build,
so a module added by any workspace member gets its page without a hand edit. A module
is public when no part of its dotted name starts with `_`; the walk reads the source
tree (`packages/*/src/proxystore/`) and imports nothing, so a module whose optional
third-party client is missing still gets a page (mkdocstrings reads sources statically).
Like `pkgutil.walk_packages`, it only descends into regular packages (`__init__.py`).

The index lists each module with the first sentence of its docstring. A module that
is a console script's entry point (`[project.scripts]` of a member) is a command, not
an API: its page links to the command line reference (`scripts/docs/gen_cli.py`) and
documents only the module's public names that are not click commands.

Usage: `python -m scripts.docs.gen_api [--out DIR]`.
"""

from __future__ import annotations

import argparse
import ast
import shutil
import tomllib
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ROOT / "packages"
DEFAULT_OUT = ROOT / "docs" / "reference"
MERGED = ROOT / "build" / "docs-api-src"


def public_modules(packages: Path = PACKAGES) -> dict[str, str]:
    """Map every public module name to the workspace member that ships it.

    Args:
        packages: The folder holding one directory per workspace member.

    Returns:
        `{"proxystore.store.base": "proxystore-store", ...}`, sorted by module name.
    """
    return {module: member for module, (member, _) in module_files(packages).items()}


def module_files(packages: Path = PACKAGES) -> dict[str, tuple[str, Path]]:
    """Map every public module name to its member and source file.

    Returns:
        `{"proxystore.store.base": ("proxystore-store", Path(...)), ...}`, sorted by
        module name.
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
    found: dict[str, tuple[str, Path]] = {}
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
                found[".".join(parts)] = (member, path)
    return dict(sorted(found.items()))


def merged_source(dest: Path = MERGED, packages: Path = PACKAGES) -> Path:
    """Lay every member's `proxystore/` into one folder (symlinks) and return it.

    griffe (behind mkdocstrings) merges the portions of a PEP 420 namespace found on
    its search path, but stops at the first regular package: once a member ships
    `proxystore/__init__.py` (the install name does, for `__version__`), the other
    members' modules are invisible to it, although Python finds them through
    `pkgutil.extend_path`. One merged tree is what an installation from wheels looks
    like, and griffe reads it whichever way the namespace is built. `make docs` puts
    the folder first in `PYTHONPATH`.

    Folders two members both provide (`proxystore/connectors/`, extended by the
    endpoint member) are created for real and merged entry by entry; files and
    folders only one member provides are symlinks.

    Args:
        dest: Folder to (re)create.
        packages: The folder holding one directory per workspace member.

    Returns:
        `dest`, the folder to put on the search path.
    """
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for src in sorted(packages.glob("*/src")):
        _merge(src / "proxystore", dest / "proxystore")
    return dest


def _merge(source: Path, target: Path) -> None:
    if not source.is_dir():
        return
    target.mkdir(exist_ok=True)
    for entry in sorted(source.iterdir()):
        if entry.name == "__pycache__":
            continue
        link = target / entry.name
        if link.is_symlink() and entry.is_dir():
            # Another member got here first: turn its link into a real folder.
            first = link.resolve()
            link.unlink()
            _merge(first, link)
            _merge(entry, link)
        elif link.is_dir():
            _merge(entry, link)
        elif not link.exists():
            link.symlink_to(entry)


def page_name(module: str) -> str:
    """Return the file name of `module`'s page inside the reference folder."""
    return f"{module}.md"


def summary(path: Path) -> str:
    """The first sentence of the module docstring in `path` (empty without one)."""
    docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
    paragraph = docstring.strip().split("\n\n", 1)[0].replace("\n", " ")
    sentence, dot, _ = paragraph.partition(". ")
    return (sentence + dot).strip().rstrip(".") + "." if sentence else ""


def console_scripts(packages: Path = PACKAGES) -> dict[str, str]:
    """Map each entry-point module of a console script to the script's name."""
    found: dict[str, str] = {}
    for pyproject in sorted(packages.glob("*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text()).get("project", {})
        for name, target in project.get("scripts", {}).items():
            found.setdefault(target.partition(":")[0], name)
    return found


def non_command_names(path: Path) -> list[str]:
    """The names in the module's `__all__` that are not click commands.

    A function is a command when a decorator is a call to something named
    `command` or `group` (`@click.command()`, `@cli.group()`, ...).
    """
    tree = ast.parse(path.read_text())
    exported: list[str] = []
    commands: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            exported = list(ast.literal_eval(node.value))
        if isinstance(node, ast.FunctionDef) and any(
            isinstance(d, ast.Call)
            and isinstance(d.func, (ast.Attribute, ast.Name))
            and (d.func.attr if isinstance(d.func, ast.Attribute) else d.func.id)
            in ("command", "group")
            for d in node.decorator_list
        ):
            commands.add(node.name)
    return [name for name in exported if name not in commands]


def _page(module: str, member: str, path: Path, script: str | None) -> str:
    head = f"# `{module}`\n\nShipped by the `{member}` workspace member.\n\n"
    if script is None:
        return f"{head}::: {module}\n"
    head += (
        f"This module is the `{script}` command: its commands and options are in "
        f"the [command line reference](cli.md#{script}).\n"
    )
    names = non_command_names(path)
    if not names:
        return head
    members = "".join(f"        - {name}\n" for name in names)
    return f"{head}\n::: {module}\n    options:\n      members:\n{members}"


def _index(modules: dict[str, tuple[str, Path]]) -> str:
    by_member: dict[str, list[str]] = defaultdict(list)
    for module, (member, _) in modules.items():
        by_member[member].append(module)
    lines = [
        "# API reference",
        "",
        "One page per public module, generated from the docstrings by mkdocstrings",
        "(`scripts/docs/gen_api.py` writes this index on every build). Modules are",
        "grouped by the workspace member (`packages/<name>/`) that ships them. The",
        "console scripts are in the [command line reference](cli.md).",
        "",
    ]
    for member in sorted(by_member):
        lines += [f"## `{member}`", "", "| module | summary |", "|---|---|"]
        for m in by_member[member]:
            text = summary(modules[m][1]).replace("|", "\\|")
            lines.append(f"| [`{m}`]({page_name(m)}) | {text} |")
        lines.append("")
    return "\n".join(lines)


def generate(out: Path = DEFAULT_OUT) -> list[str]:
    """Rewrite `out` with one page per public module plus an index.

    Args:
        out: The folder to (re)create; anything already in it is removed.

    Returns:
        The module names that got a page.
    """
    modules = module_files()
    scripts = console_scripts()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for module, (member, path) in modules.items():
        page = _page(module, member, path, scripts.get(module))
        (out / page_name(module)).write_text(page)
    (out / "index.md").write_text(_index(modules))
    return list(modules)


def main(argv: list[str] | None = None) -> None:
    """Generate the pages and print how many."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--pythonpath",
        action="store_true",
        help="lay out the merged source tree for mkdocstrings, print it and exit",
    )
    args = parser.parse_args(argv)
    if args.pythonpath:
        print(merged_source())
        return
    names = generate(args.out)
    print(f"gen_api: {len(names)} module pages in {args.out}")


if __name__ == "__main__":
    main()
