"""Docstrings use Markdown (backticks, mkdocstrings cross-references), not Sphinx roles.

`scripts/docs/convert_roles.py` rewrites any role that comes back (e.g. with a merge).
"""

from __future__ import annotations

from pathlib import Path

from scripts.docs.convert_roles import ROLE, ROOT, convert_text, module_of


def test_no_sphinx_role_under_packages() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "packages").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if ROLE.search(line)
    ]
    assert not offenders, (
        "Sphinx roles found; run `python -m scripts.docs.convert_roles`: "
        + ", ".join(offenders[:20])
    )


def test_conversion_forms() -> None:
    known = {"proxystore.store.Store", "proxystore.store.base.Store.put"}
    text = (
        "See :class:`~proxystore.store.Store`\nand :meth:`Store.put`.\n"
        "Also :func:`the helper <proxystore.utils.nope>`, :py:mod:`proxystore.x`.\n"
        "And :exc:`ValueError`.\n"
    )
    assert convert_text(text, "proxystore.store.base", known) == (
        "See [`Store`][proxystore.store.Store]\n"
        "and [`Store.put`][proxystore.store.base.Store.put].\n"
        "Also `the helper`, `proxystore.x`.\n"
        "And `ValueError`.\n"
    )


def test_cross_reference_falls_back_when_the_line_gets_too_long() -> None:
    known = {"proxystore.store.Store"}
    line = "    " + "x" * 70 + " :class:`~proxystore.store.Store`\n"
    assert convert_text(line, "", known) == "    " + "x" * 70 + " `Store`\n"


def test_module_of() -> None:
    path = Path("packages/proxystore-store/src/proxystore/store/__init__.py")
    assert module_of(path) == "proxystore.store"
    assert module_of(Path("scripts/x.py")) == ""


def test_wrapped_role_keeps_the_line_break() -> None:
    text = (
        "  into :class:`~proxystore.connectors.exceptions.\n"
        "  ConnectorConnectionError` (naming the host) or :exc:`Value\n"
        "  Error`.\n"
    )
    assert convert_text(text) == (
        "  into `ConnectorConnectionError`\n  (naming the host) or `ValueError`.\n"
    )


def test_raises_same_as_becomes_a_sentence() -> None:
    text = '    """Do it.\n\n    Raises:\n        Same as :meth:`proxy`.\n    """\n'
    assert convert_text(text) == (
        '    """Do it.\n\n    Raises the same exceptions as `proxy`.\n    """\n'
    )
