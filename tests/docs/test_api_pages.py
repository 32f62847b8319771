"""Every public module walked by `tests/api` gets an API page, and nothing else does."""

from __future__ import annotations

import os
from pathlib import Path

from scripts.docs.gen_api import (
    console_scripts,
    generate,
    merged_source,
    non_command_names,
    page_name,
    public_modules,
    summary,
)
from scripts.docs.hooks import api_nav, on_config
from tests.api.test_all_attributes import MODULES


def test_every_public_module_has_a_page(tmp_path: Path) -> None:
    written = generate(tmp_path)
    assert set(written) == set(MODULES)
    pages = {p.name for p in tmp_path.glob("*.md")}
    assert pages == {page_name(m) for m in MODULES} | {"index.md"}
    index = (tmp_path / "index.md").read_text()
    commands = console_scripts()
    for module in MODULES:
        text = (tmp_path / page_name(module)).read_text()
        if module in commands:
            assert f"(cli.md#{commands[module]})" in text, module
        else:
            assert f"\n::: {module}\n" in text, module
        assert f"]({page_name(module)})" in index, module


def test_index_gives_each_module_its_summary(tmp_path: Path) -> None:
    generate(tmp_path)
    index = (tmp_path / "index.md").read_text()
    assert (
        "| [`proxystore.connectors.protocols`](proxystore.connectors.protocols.md) "
        "| Contracts every connector satisfies structurally" in index
    )
    rows = [line for line in index.splitlines() if line.startswith("| [`")]
    assert len(rows) == len(MODULES)
    # Every public module has a docstring, so no summary cell is empty.
    assert all(not row.endswith("|  |") for row in rows), rows


def test_command_modules_show_commands_not_functions(tmp_path: Path) -> None:
    generate(tmp_path)
    commands = console_scripts()
    assert commands["proxystore.endpoint.cli"] == "proxystore-endpoint"
    endpoint_cli = (tmp_path / "proxystore.endpoint.cli.md").read_text()
    assert ":::" not in endpoint_cli  # its only public name is the click group
    assert "(cli.md#proxystore-endpoint)" in endpoint_cli
    relay = (tmp_path / "proxystore.p2p.relay.run.md").read_text()
    # The relay module's Python API stays; its click command goes to the CLI page.
    assert "::: proxystore.p2p.relay.run\n" in relay
    assert "        - serve\n" in relay
    assert "        - cli\n" not in relay


def test_summary_and_command_detection_read_sources(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        '"""Do a thing. Then more\n\nDetails."""\nimport click\n'
        '__all__ = ["cli", "helper", "sub"]\n'
        "@click.group()\ndef cli(): ...\n"
        "@cli.command()\ndef sub(): ...\n"
        "def helper(): ...\n"
    )
    assert summary(module) == "Do a thing."
    assert non_command_names(module) == ["helper"]
    (tmp_path / "bare.py").write_text("x = 1\n")
    assert summary(tmp_path / "bare.py") == ""


def test_navigation_lists_every_api_page() -> None:
    nav = api_nav()
    assert nav[0] == {"All modules": "reference/index.md"}
    listed = {
        page
        for section in nav[1:]
        for pages in section.values()
        for entry in pages
        for page in entry.values()
    }
    assert listed == {f"reference/{page_name(m)}" for m in MODULES}
    config = {"nav": [{"Home": "index.md"}, {"API reference": "reference/index.md"}]}
    assert on_config(config)["nav"][1] == {"API reference": nav}


def test_walk_reads_sources_not_imports(tmp_path: Path) -> None:
    member = tmp_path / "proxystore-demo" / "src" / "proxystore" / "demo"
    (member / "_private").mkdir(parents=True)
    (member / "__init__.py").write_text("import not_installed_anywhere\n")
    (member / "client.py").write_text("")
    (member / "_impl.py").write_text("")
    (member / "_private" / "x.py").write_text("")
    # Another member adding a module to that package; and a namespace-only folder.
    other = tmp_path / "proxystore-other" / "src" / "proxystore"
    (other / "demo").mkdir(parents=True)
    (other / "demo" / "extra.py").write_text("")
    (other / "alias" / "deep").mkdir(parents=True)
    (other / "alias" / "deep" / "__init__.py").write_text("")
    assert public_modules(tmp_path) == {
        "proxystore.demo": "proxystore-demo",
        "proxystore.demo.client": "proxystore-demo",
        "proxystore.demo.extra": "proxystore-other",
    }


def test_merged_source_holds_every_members_modules(tmp_path: Path) -> None:
    packages = tmp_path / "packages"
    # The install name ships `proxystore/__init__.py`, which hides the other
    # members' portions from griffe unless the tree is merged.
    top = packages / "proxystore" / "src" / "proxystore"
    top.mkdir(parents=True)
    (top / "__init__.py").write_text("")
    base = packages / "a-base" / "src" / "proxystore" / "pkg"
    base.mkdir(parents=True)
    (base / "__init__.py").write_text("")
    (base / "core.py").write_text("")
    extra = packages / "z-extra" / "src" / "proxystore" / "pkg"
    extra.mkdir(parents=True)
    (extra / "plugin.py").write_text("")
    plain = packages / "m-plain" / "src" / "proxystore" / "other"
    plain.mkdir(parents=True)
    (plain / "__init__.py").write_text("")
    root = merged_source(tmp_path / "merged", packages) / "proxystore"
    found = sorted(
        str((Path(d) / f).relative_to(root))
        for d, _, files in os.walk(root, followlinks=True)
        for f in files
    )
    assert found == [
        "__init__.py",
        "other/__init__.py",
        "pkg/__init__.py",
        "pkg/core.py",
        "pkg/plugin.py",
    ]
    # A folder two members share is real; what one member owns is a link to it.
    assert not (root / "pkg").is_symlink()
    assert (root / "pkg" / "plugin.py").resolve() == (extra / "plugin.py").resolve()
    assert (root / "other").is_symlink()
    # Running it again starts from scratch.
    (extra / "plugin.py").unlink()
    root = merged_source(tmp_path / "merged", packages) / "proxystore"
    assert not (root / "pkg" / "plugin.py").exists()
