"""Write the command line reference (`docs/reference/cli.md`) from the click commands.

Every console script declared in a workspace member's `pyproject.toml`
(`[project.scripts]`) gets a section: its help text, usage line, arguments and options
(with their defaults), then one subsection per subcommand, recursively. The commands are
imported, not parsed, so the page shows exactly what `--help` shows, and a new option
appears on the next `make docs` without a hand edit.

Usage: `python -m scripts.docs.gen_cli [--out FILE]`.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ROOT / "packages"
DEFAULT_OUT = ROOT / "docs" / "reference" / "cli.md"
PAGE_NAME = "cli.md"


@dataclass(frozen=True)
class Script:
    """A console script: its name, the member shipping it, and its entry point."""

    name: str
    member: str
    target: str  # "module:attribute"

    @property
    def module(self) -> str:
        """The module holding the command."""
        return self.target.partition(":")[0]

    def command(self) -> click.Command:
        """Import and return the click command.

        Raises:
            TypeError: If the entry point is not a click command.
        """
        module, _, attribute = self.target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.name} ({self.target}) is not a click command")
        return command


def console_scripts(packages: Path = PACKAGES) -> list[Script]:
    """The console scripts of every workspace member, sorted by name."""
    scripts = []
    for pyproject in sorted(packages.glob("*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text()).get("project", {})
        for name, target in project.get("scripts", {}).items():
            scripts.append(Script(name, pyproject.parent.name, target))
    return sorted(scripts, key=lambda s: s.name)


def anchor(*names: str) -> str:
    """The heading id MkDocs gives the section of a command (`a-b-c`)."""
    return "-".join(part for name in names for part in name.split())


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


_HELP_DEFAULT = re.compile(r"\s*\[default: (?P<text>[^\]]+)\]\s*$")


def _unset(value: object) -> bool:
    # click >= 8.2 marks "no default" with its own sentinel rather than None.
    return value is None or type(value).__name__ == "Sentinel"


def _help_and_default(param: click.Parameter) -> tuple[str, str]:
    """The option's help without a trailing `[default: ...]`, and its default."""
    help_text = getattr(param, "help", None) or ""
    match = _HELP_DEFAULT.search(help_text)
    if match is not None:
        # The command spells out a default click cannot know (a random port...).
        return help_text[: match.start()], match["text"]
    show = getattr(param, "show_default", None)
    if isinstance(show, str):
        return help_text, show
    return help_text, _default(param)


def _default(param: click.Parameter) -> str:
    if isinstance(param, click.Option) and param.is_flag and param.secondary_opts:
        on, off = param.opts[0], param.secondary_opts[0]
        return f"`{on if param.default else off}`"
    if isinstance(param, click.Option) and param.is_flag:
        return "off" if not param.default else "on"
    default = param.default
    if _unset(default) or callable(default):
        return "required" if param.required else "—"
    if isinstance(default, (list, tuple)):
        return ", ".join(f"`{v}`" for v in default) if default else "—"
    return f"`{default}`"


def _value(param: click.Parameter, ctx: click.Context) -> str:
    if isinstance(param, click.Option) and param.is_flag:
        return "flag"
    kind = param.type
    if isinstance(kind, click.Choice):
        return " \\| ".join(f"`{choice}`" for choice in kind.choices)
    metavar = param.make_metavar(ctx)
    repeat = " (repeatable)" if getattr(param, "multiple", False) else ""
    return f"`{metavar}`{repeat}"


def _names(param: click.Parameter) -> str:
    if isinstance(param, click.Option):
        primary = ", ".join(f"`{o}`" for o in param.opts)
        if param.secondary_opts:
            primary += " / " + ", ".join(f"`{o}`" for o in param.secondary_opts)
        return primary
    return f"`{param.human_readable_name}`"


def _section(
    command: click.Command, path: list[str], parent: click.Context | None
) -> list[str]:
    ctx = click.Context(command, info_name=path[-1], parent=parent)
    level = "#" * min(len(path) + 1, 6)
    lines = [f"{level} {' '.join(path)}", ""]
    help_text = inspect.cleandoc(command.help or "").strip()
    if help_text:
        lines += [help_text, ""]
    usage = " ".join([*path, *command.collect_usage_pieces(ctx)])
    lines += ["```text", usage, "```", ""]
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    options = [p for p in command.params if isinstance(p, click.Option)]
    if arguments:
        lines += ["| argument | value | required |", "|---|---|---|"]
        for arg in arguments:
            needed = "yes" if arg.required else "no"
            lines.append(f"| {_names(arg)} | {_value(arg, ctx)} | {needed} |")
        lines.append("")
    if options:
        lines += ["| option | value | default | description |", "|---|---|---|---|"]
        for opt in options:
            help_text, default = _help_and_default(opt)
            lines.append(
                f"| {_names(opt)} | {_value(opt, ctx)} | {default} "
                f"| {_cell(help_text)} |"
            )
        lines.append("")
    if isinstance(command, click.Group):
        subcommands = sorted(command.list_commands(ctx))
        if subcommands and (options or arguments):
            lines += [
                f"Options and arguments of `{' '.join(path)}` come before the "
                "subcommand; the subcommand's own follow it.",
                "",
            ]
        if subcommands:
            lines += ["| command | description |", "|---|---|"]
            for name in subcommands:
                sub = command.get_command(ctx, name)
                assert sub is not None
                link = f"[`{name}`](#{anchor(*path, name)})"
                lines.append(f"| {link} | {_cell(sub.get_short_help_str(200))} |")
            lines.append("")
            for name in subcommands:
                sub = command.get_command(ctx, name)
                assert sub is not None
                lines += _section(sub, [*path, name], ctx)
    return lines


def render(scripts: list[Script]) -> str:
    """The Markdown of the reference page for `scripts`."""
    lines = [
        "# Command line reference",
        "",
        "Generated from the click commands by `scripts/docs/gen_cli.py` on every",
        "`make docs`, so it lists what `--help` prints, defaults included. Each",
        "usage line shows the order of the words: a group's own options and",
        "arguments (those of `proxystore-endpoint` and of `proxystore-endpoint test`)",
        "come before the subcommand's name, as in",
        "`proxystore-endpoint --log-level DEBUG start NAME` and",
        "`proxystore-endpoint test --remote UUID NAME get KEY`.",
        "",
        "| command | workspace member | description |",
        "|---|---|---|",
    ]
    commands = [(script, script.command()) for script in scripts]
    for script, command in commands:
        short = _cell(command.get_short_help_str(200))
        link = f"[`{script.name}`](#{anchor(script.name)})"
        lines.append(f"| {link} | `{script.member}` | {short} |")
    lines.append("")
    for script, command in commands:
        lines += _section(command, [script.name], None)
    return "\n".join(lines).rstrip("\n") + "\n"


def generate(out: Path = DEFAULT_OUT) -> list[str]:
    """Write the reference page to `out`; return the console scripts it covers."""
    scripts = console_scripts()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(scripts))
    return [s.name for s in scripts]


def main(argv: list[str] | None = None) -> None:
    """Write the page and say what it covers."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    names = generate(args.out)
    print(f"gen_cli: {', '.join(names)} in {args.out}")


if __name__ == "__main__":
    main()
