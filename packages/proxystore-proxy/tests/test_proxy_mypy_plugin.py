"""`proxystore.mypy_plugin` types `Proxy[T].attr` like `T.attr` (runs mypy)."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import textwrap

import pytest

mypy_api = pytest.importorskip("mypy.api")

SNIPPET = """
from proxystore.proxy import Proxy


class Foo:
    count: int = 1

    def name(self) -> str:
        return "foo"

    @property
    def ratio(self) -> float:
        return 0.5


proxy = Proxy(lambda: Foo())
reveal_type(proxy.name())
reveal_type(proxy.count)
reveal_type(proxy.ratio)
reveal_type(proxy.__proxy_wrapped__)
reveal_type(proxy.__proxy_resolved__)
reveal_type(Proxy(lambda: [1]).append)
either: Proxy[int | str] = Proxy(lambda: 1)
reveal_type(either.upper)
proxy.missing
"""


def _run_mypy(tmp_path: pathlib.Path, *, plugin: bool) -> list[str]:
    source = tmp_path / "snippet.py"
    source.write_text(textwrap.dedent(SNIPPET))
    config = tmp_path / "mypy.ini"
    config.write_text(
        "[mypy]\n" + ("plugins = proxystore.mypy_plugin\n" if plugin else "")
    )
    stdout, stderr, _ = mypy_api.run(
        [
            str(source),
            "--config-file",
            str(config),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-error-summary",
            "--hide-error-context",
        ]
    )
    assert "Traceback" not in stderr, stderr
    # "snippet.py:17: note: Revealed type is ..." -> "17: note: Revealed ..."
    return [line.split(":", 1)[1].strip() for line in stdout.splitlines()]


@pytest.mark.slow
def test_plugin_types_forwarded_attributes(tmp_path: pathlib.Path) -> None:
    lines = _run_mypy(tmp_path, plugin=True)
    revealed = [
        line.split("Revealed type is ", 1)[1] for line in lines if "Revealed" in line
    ]
    assert revealed == [
        '"str"',
        '"int"',
        '"float"',
        '"snippet.Foo"',
        '"bool"',
        '"def (int)"',
        '"Any | (def () -> str)"',
    ]
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 2, lines
    assert 'Item "int" of "int | str"' in errors[0]
    assert "[union-attr]" in errors[0]
    assert '"Foo" (target of "Proxy[Foo]") has no attribute "missing"' in errors[1]
    assert "[attr-defined]" in errors[1]


@pytest.mark.slow
def test_without_plugin_forwarded_attributes_are_any(tmp_path: pathlib.Path) -> None:
    lines = _run_mypy(tmp_path, plugin=False)
    assert lines[0].endswith('Revealed type is "Any"')
    assert not any("error:" in line for line in lines)


def test_plugin_entry_point_returns_the_plugin_class() -> None:
    from proxystore.mypy_plugin import ProxyStoreMypyPlugin, plugin

    assert plugin("1.13.0") is ProxyStoreMypyPlugin


def test_plugin_imports_first_in_a_fresh_interpreter() -> None:
    # mypy's modules import each other circularly; mypy loads a plugin after its
    # own modules, but a bare import (e.g. the __all__ audit) must work too.
    code = "import proxystore.mypy_plugin as m; print(m.__all__)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    names = "['ProxyStoreMypyPlugin', 'plugin', 'proxy_attribute_access']"
    assert out.stdout.strip() == names
