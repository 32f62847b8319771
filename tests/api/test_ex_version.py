"""`proxystore.ex.__version__`, as the reference's `proxystore.ex` has one."""

from __future__ import annotations

import subprocess
import sys

import proxystore


def test_ex_version_is_the_distribution_version() -> None:
    import proxystore.ex

    assert proxystore.ex.__version__ == proxystore.__version__


def test_ex_modules_of_every_member_still_import() -> None:
    # `proxystore.ex` is a package of the install name now; the members' modules
    # under it (connectors, store plugins) are still found, in a fresh interpreter.
    code = (
        "import proxystore.ex, proxystore.ex.connectors.dim.zmq, "
        "proxystore.ex.plugins.distributed;"
        "print(proxystore.ex.__version__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    )
    assert done.stdout.strip() == proxystore.__version__
