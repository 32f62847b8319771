"""How a page's walk-through blocks become files and one bash script."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.docs.blocks import parse
from tests.docs.walkthrough import build, ports, steps, substitute

PAGE = """# t

<!-- docs-test: walkthrough background -->
```bash
server --port 8700
```

<!-- docs-test: walkthrough -->
```python title="hello.py"
print("port 8700")
```

```bash
echo "not a step"
```

<!-- docs-test: walkthrough -->
```bash
export GREETING=hi
curl http://127.0.0.1:8765/x
```
<!-- docs-test: walkthrough -->
```bash
echo "$GREETING" 18700 8700.5
```
"""


def test_steps_keep_page_order_and_skip_unmarked_blocks(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    blocks = steps(page)
    assert [(b.lang, b.arg, b.line) for b in blocks] == [
        ("bash", "background", 5),
        ("python", "", 10),
        ("bash", "", 19),
        ("bash", "", 24),
    ]
    assert ports(blocks) == ["8700", "8765"]
    # Python walk-through steps are not run as plain examples.
    assert [b.kind for b in parse(page)] == ["walkthrough"]


def test_build_writes_files_and_replaces_whole_ports(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    walkthrough = build(steps(page), {"8700": "21001", "8765": "21002"})
    assert walkthrough.files == {"hello.py": 'print("port 21001")\n'}
    script = walkthrough.script
    assert "server --port 21001\n) > walkthrough-background-5.log 2>&1 &" in script
    assert "__wait_port 21001" in script
    assert "curl http://127.0.0.1:21002/x" in script
    # Neither part of a longer number nor a decimal is a port.
    assert 'echo "$GREETING" 18700 8700.5' in script
    assert "not a step" not in script


def test_script_shares_variables_between_blocks_and_stops_on_error(
    tmp_path: Path,
) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- docs-test: walkthrough -->\n```bash\nexport X=1\n```\n"
        "<!-- docs-test: walkthrough -->\n"
        "```bash\necho value=$X\nfalse\necho after\n```\n"
    )
    script = build(steps(page)).script
    proc = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=False
    )
    assert "value=1" in proc.stdout
    assert "after" not in proc.stdout
    assert proc.returncode != 0


@pytest.mark.parametrize(
    ("block", "error"),
    [
        ("```python\nx = 1\n```\n", 'needs title="NAME.py"'),
        ("```toml\nx = 1\n```\n", "not 'toml'"),
    ],
)
def test_bad_steps_are_rejected(tmp_path: Path, block: str, error: str) -> None:
    page = tmp_path / "page.md"
    page.write_text(f"<!-- docs-test: walkthrough -->\n{block}")
    with pytest.raises(ValueError, match=error):
        steps(page)


def test_substitute_leaves_other_numbers_alone() -> None:
    text = "--port 8700 ws://h:8700/ 87001 18700 v8700 8700.1"
    expected = "--port 9 ws://h:9/ 87001 18700 v8700 8700.1"
    assert substitute(text, {"8700": "9"}) == expected
