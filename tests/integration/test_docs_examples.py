"""The docs' Python blocks marked `<!-- docs-test: needs ... -->`, run for real.

Each page's blocks for one backend run as one script (see `tests/docs/blocks.py`).
For `redis` and `kafka` the example's default address (`"localhost"`, `6379`,
`localhost:9092`) is replaced by the fixture's server; `ucx` blocks start their own
peers and only need ucxx (installed by `make test-integration`).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from tests.docs.blocks import Block, all_blocks, relative
from tests.docs.runner import run_page
from tests.integration.harness.servers import ServerAddress

pytestmark = pytest.mark.integration


def _groups() -> dict[str, list[Block]]:
    groups: dict[str, list[Block]] = defaultdict(list)
    for block in all_blocks():
        if block.kind == "needs":
            groups[f"{relative(block.path)}[{block.arg}]"].append(block)
    return dict(groups)


GROUPS = _groups()


def test_server_blocks_exist() -> None:
    servers = {blocks[0].arg for blocks in GROUPS.values()}
    assert servers == {"redis", "kafka", "ucx"}, GROUPS.keys()


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_docs_server_examples(
    group: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    blocks = GROUPS[group]
    server = blocks[0].arg
    if server == "ucx":
        run_page(blocks, tmp_path)
        return
    address: ServerAddress = request.getfixturevalue(f"{server}_server")
    replace = {
        "localhost:9092": f"{address.host}:{address.port}",
        '"localhost"': f'"{address.host}"',
        "6379": str(address.port),
    }
    run_page(blocks, tmp_path, replace)
