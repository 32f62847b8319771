"""Every command line of the docs' shell blocks parses with today's click commands.

A shell block's lines that run one of the workspace's console scripts
(`proxystore-endpoint ...`, after optional `VAR=value` assignments) are split like a
shell would and handed to the command's own parser, subcommand by subcommand, without
running anything. A renamed option, a missing argument or options after `NAME` where
the command does not take them fail here, with the page and line.
"""

from __future__ import annotations

import shlex
import warnings

import click
import pytest

from scripts.docs.gen_cli import console_scripts
from tests.docs.blocks import Block, fenced_blocks, markdown_files

SCRIPTS = {script.name: script for script in console_scripts()}
SHELLS = ("bash", "sh", "shell", "console")


def _command_lines(block: Block) -> list[tuple[int, list[str]]]:
    """(line, words) of each logical line of `block` that runs a console script."""
    found: list[tuple[int, list[str]]] = []
    logical, first = "", 0
    for offset, line in enumerate(block.source.splitlines()):
        if not logical:
            first = block.line + offset
        if line.rstrip().endswith("\\"):
            logical += line.rstrip()[:-1] + " "
            continue
        logical += line
        words = shlex.split(logical, comments=True)
        logical = ""
        # Leading environment assignments (`PROXYSTORE_HOME=... proxystore-...`).
        while words and "=" in words[0] and not words[0].startswith("-"):
            words.pop(0)
        if words and words[0] in SCRIPTS:
            found.append((first, words))
    return found


def _examples() -> list[tuple[str, list[str]]]:
    examples = []
    for path in markdown_files():
        for block in fenced_blocks(path):
            if block.lang in SHELLS:
                for line, words in _command_lines(block):
                    where = f"{block.where.rsplit(':', 1)[0]}:{line}"
                    examples.append((where, words))
    return examples


EXAMPLES = _examples()


def _commands(command: click.Command) -> list[click.Command]:
    found = [command]
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            found += _commands(sub)
    return found


@pytest.fixture(autouse=True)
def _paths_need_not_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    """The files the examples name (`relay.toml`) exist on the reader's machine."""
    for script in SCRIPTS.values():
        for command in _commands(script.command()):
            for param in command.params:
                if isinstance(param.type, click.Path):
                    monkeypatch.setattr(param.type, "exists", False)


def _unparsed(ctx: click.Context) -> list[str]:
    # Click < 9 keeps a group's subcommand words apart (`protected_args`, deprecated
    # in 8.2); from 9 on they are all in `args`.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        protected = list(getattr(ctx, "protected_args", []))
    return [*protected, *ctx.args]


def parse(words: list[str]) -> list[str]:
    """Parse `words` as the shell would run them; return the command path.

    Raises:
        click.UsageError: The words do not parse (unknown option or command,
            missing argument, bad value).
    """
    command: click.Command = SCRIPTS[words[0]].command()
    path = [words[0]]
    if "--help" in words:
        # Parsing would print the help and exit; that is all `--help` does anyway.
        return path
    ctx = command.make_context(words[0], words[1:])
    while isinstance(command, click.Group) and (rest := _unparsed(ctx)):
        name, sub, args = command.resolve_command(ctx, rest)
        assert name is not None
        assert sub is not None
        path.append(name)
        command, ctx = sub, sub.make_context(name, args, parent=ctx)
    return path


def test_docs_run_the_commands() -> None:
    commands = {" ".join(parse(words)) for _, words in EXAMPLES}
    # The walk-through, the relay guide and the debugging guide use these at least.
    assert {
        "proxystore-relay",
        "proxystore-endpoint configure",
        "proxystore-endpoint start",
        "proxystore-endpoint list",
        "proxystore-endpoint stop",
        "proxystore-endpoint test put",
        "proxystore-endpoint test get",
    } <= commands, commands


@pytest.mark.parametrize(("where", "words"), EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_command_line_parses(where: str, words: list[str]) -> None:
    try:
        parse(words)
    except click.ClickException as exc:
        pytest.fail(f"{where}: `{shlex.join(words)}`: {exc.format_message()}")


@pytest.mark.parametrize(
    "line",
    [
        # The reference docs' mistakes: an option that does not exist, and an
        # option of `test` written after NAME.
        "proxystore-endpoint configure my-ep --relay-server ws://localhost:8700",
        "proxystore-endpoint test my-site --remote 5f1d get KEY",
        "proxystore-endpoint test my-site put",
        "proxystore-relay --port 99999",
    ],
)
def test_wrong_lines_are_caught(line: str) -> None:
    with pytest.raises(click.UsageError):
        parse(shlex.split(line))
