"""The generated CLI reference covers every console script, command and option."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click

from scripts.docs.gen_cli import anchor, console_scripts, generate


def _walk(
    command: click.Command, path: list[str]
) -> Iterator[tuple[list[str], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        ctx = click.Context(command, info_name=path[-1])
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None
            yield from _walk(sub, [*path, name])


def _sections(page: str) -> dict[str, str]:
    """Heading text -> the Markdown up to the next heading."""
    parts = re.split(r"^#{2,6} (.+)$", page, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_command_and_option_is_documented(tmp_path: Path) -> None:
    out = tmp_path / "cli.md"
    names = generate(out)
    scripts = console_scripts()
    # The three console scripts of the workspace, read from the members' pyproject.
    assert {"proxystore-endpoint", "proxystore-relay", "proxystore-globus-auth"} <= set(
        names
    )
    sections = _sections(out.read_text())
    seen = 0
    for script in scripts:
        for path, command in _walk(script.command(), [script.name]):
            heading = " ".join(path)
            assert heading in sections, f"no section for {heading}"
            body = sections[heading]
            for param in command.params:
                for opt in getattr(param, "opts", []) + getattr(
                    param, "secondary_opts", []
                ):
                    if opt.startswith("-"):
                        assert f"`{opt}`" in body, f"{heading}: {opt} missing"
            seen += 1
    assert seen >= 15  # endpoint: 9 commands + test's 4; relay; globus: 2


def test_defaults_and_word_order_are_shown(tmp_path: Path) -> None:
    out = tmp_path / "cli.md"
    generate(out)
    page = out.read_text()
    sections = _sections(page)
    start = sections["proxystore-endpoint start"]
    # `start` detaches unless told otherwise: the default is on the page.
    assert re.search(r"\| `--detach` / `--no-detach` \| flag \| `--detach` \|", start)
    assert "| `--log-level` |" in sections["proxystore-endpoint"]
    assert "`INFO`" in sections["proxystore-endpoint"]
    # The group's options come before NAME, then the subcommand.
    assert "proxystore-endpoint test [OPTIONS] NAME COMMAND [ARGS]..." in page
    assert "`proxystore-endpoint test --remote UUID NAME get KEY`" in page
    assert "proxystore-endpoint test put [OPTIONS] DATA" in page


def test_links_point_at_headings(tmp_path: Path) -> None:
    out = tmp_path / "cli.md"
    generate(out)
    page = out.read_text()
    headings = {anchor(h) for h in _sections(page)}
    links = set(re.findall(r"\]\(#([^)]+)\)", page))
    assert links, "the tables link to the sections"
    assert links <= headings, links - headings


def test_no_internal_values_and_spelled_out_defaults(tmp_path: Path) -> None:
    out = tmp_path / "cli.md"
    generate(out)
    page = out.read_text()
    # click >= 8.2 marks a missing default with a sentinel object: never print it.
    assert "Sentinel" not in page
    assert "UNSET" not in page
    # A default the command spells out in its help (`[default: ...]`) goes to the
    # default column, once.
    relay = _sections(page)["proxystore-relay"]
    port_row = next(line for line in relay.splitlines() if "`--port`" in line)
    cells = [cell.strip() for cell in port_row.split("|")]
    assert cells[3].strip("`") == "8700", port_row
    assert "[default:" not in page
