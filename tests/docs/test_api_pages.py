"""Every public module walked by `tests/api` gets an API page, and nothing else does."""

from __future__ import annotations

from pathlib import Path

from scripts.docs.gen_api import generate, page_name, public_modules, search_path
from tests.api.test_all_attributes import MODULES


def test_every_public_module_has_a_page(tmp_path: Path) -> None:
    written = generate(tmp_path)
    assert set(written) == set(MODULES)
    pages = {p.name for p in tmp_path.glob("*.md")}
    assert pages == {page_name(m) for m in MODULES} | {"index.md"}
    index = (tmp_path / "index.md").read_text()
    for module in MODULES:
        text = (tmp_path / page_name(module)).read_text()
        assert f"\n::: {module}\n" in text, module
        assert f"]({page_name(module)})" in index, module


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


def test_members_adding_to_another_package_are_searched_first(tmp_path: Path) -> None:
    base = tmp_path / "a-base" / "src" / "proxystore" / "pkg"
    base.mkdir(parents=True)
    (base / "__init__.py").write_text("")
    extra = tmp_path / "z-extra" / "src" / "proxystore" / "pkg"
    extra.mkdir(parents=True)
    (extra / "plugin.py").write_text("")
    plain = tmp_path / "m-plain" / "src" / "proxystore" / "other"
    plain.mkdir(parents=True)
    (plain / "__init__.py").write_text("")
    assert [p.parent.name for p in search_path(tmp_path)] == [
        "z-extra",
        "a-base",
        "m-plain",
    ]
