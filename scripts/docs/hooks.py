"""MkDocs hook: list the generated API pages in the navigation.

`scripts/docs/gen_api.py` writes one page per public module into `docs/reference/`
before each build. The `nav` of `mkdocs.yml` cannot name them (they follow the
sources), so this hook replaces the `API reference` entry's page with a section: the
index first, then one subsection per workspace member with its modules' pages.
Registered under `hooks:` in `mkdocs.yml`.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from types import ModuleType
from typing import Any

logger = logging.getLogger("mkdocs.hooks.api_nav")

NAV_TITLE = "API reference"
INDEX = "reference/index.md"
INDEX_LABEL = "All modules"


def _gen_api() -> ModuleType:
    # MkDocs loads hooks by file path, without the repository on sys.path.
    path = Path(__file__).with_name("gen_api.py")
    spec = importlib.util.spec_from_file_location("_proxystore_docs_gen_api", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def api_nav() -> list[Any]:
    """The `API reference` section: the index, then the modules by member."""
    gen_api = _gen_api()
    by_member: dict[str, list[dict[str, str]]] = {}
    for module, member in gen_api.public_modules().items():
        label = module.removeprefix("proxystore.")
        page = f"reference/{gen_api.page_name(module)}"
        by_member.setdefault(member, []).append({label: page})
    sections = ({member: by_member[member]} for member in sorted(by_member))
    return [{INDEX_LABEL: INDEX}, *sections]


def on_config(config: Any) -> Any:
    """Expand the `API reference` entry of `nav` into the generated pages."""
    nav = config["nav"]
    if not nav:
        return config
    for i, entry in enumerate(nav):
        if isinstance(entry, dict) and entry.get(NAV_TITLE) == INDEX:
            nav[i] = {NAV_TITLE: api_nav()}
            return config
    logger.warning("no `%s: %s` entry in nav; API pages not listed", NAV_TITLE, INDEX)
    return config
