"""A downstream user's file type-checks under `mypy --strict`, outside this repo.

Runs mypy on `tests/typing/test_typing_downstream.py` copied to a temporary
directory (so only the installed packages are seen, as a user's project would) and
checks how `reveal_type` names a store's proxy.
"""

from __future__ import annotations

import pathlib
import shutil

import pytest

mypy_api = pytest.importorskip("mypy.api")

DOWNSTREAM = (
    pathlib.Path(__file__).parents[3] / "tests" / "typing" / "test_typing_downstream.py"
)

REVEAL = """
from proxystore.connectors.local import LocalConnector
from proxystore.store import Store

store = Store("s", LocalConnector())
p = store.proxy([1, 2, 3])
reveal_type(p)
"""


@pytest.mark.slow
def test_downstream_file_passes_strict_and_names_the_public_proxy(
    tmp_path: pathlib.Path,
) -> None:
    shutil.copy(DOWNSTREAM, tmp_path / "downstream.py")
    (tmp_path / "reveal.py").write_text(REVEAL)
    stdout, stderr, status = mypy_api.run(
        [
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--config-file",
            "",
            str(tmp_path / "downstream.py"),
            str(tmp_path / "reveal.py"),
        ]
    )
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stdout.splitlines() if "error:" in line]
    assert errors == []
    assert status == 0
    revealed = [
        line.split("Revealed type is ", 1)[1]
        for line in stdout.splitlines()
        if "Revealed type is" in line
    ]
    assert revealed == ['"proxystore.proxy.Proxy[list[int]]"']
