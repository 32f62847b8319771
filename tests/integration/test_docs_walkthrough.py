"""The endpoints page's two-site walk-through, run for real as the reader would.

The shell blocks of `docs/connectors/endpoint.md` marked
`<!-- docs-test: walkthrough -->` run in order in one bash process (see
`tests/docs/walkthrough.py`), with the console scripts of this interpreter first on
`PATH`, no `PROXYSTORE_HOME` of the caller's, and free loopback ports instead of the
page's. Whatever it starts is stopped afterwards, whether it passed or not: the relay
(and anything else in the script's process group) and every endpoint daemon whose PID
file is left in the work directory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docs.blocks import ROOT
from tests.docs.walkthrough import build, ports, steps
from tests.integration.harness.ports import free_port

PAGE = ROOT / "docs" / "connectors" / "endpoint.md"
#: Seconds the whole walk-through may take (two daemons start twice, one WebRTC
#: connection is made, on a loaded 2-core machine; about 15 s when idle). Below
#: pytest-timeout's 300 s, so a hung step ends here, with its output.
TIMEOUT = 240


def _alive(pid: int) -> bool:
    # The daemons are not our children (they detach), so nothing leaves zombies.
    return Path(f"/proc/{pid}").exists()


def _stop_daemons(workdir: Path) -> list[int]:
    """SIGTERM (then SIGKILL) the endpoint daemons whose PID files remain."""
    stopped = []
    for pid_file in workdir.glob("*/*/daemon.pid"):
        with contextlib.suppress(ValueError, OSError):
            pid = int(pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"proxystore-endpoint" not in cmdline:
                continue  # a stale file naming some other process now
            os.kill(pid, signal.SIGTERM)
            stopped.append(pid)
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in stopped) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in stopped:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return stopped


def _stop_group(pgid: int) -> None:
    """Stop every process left in the script's process group (the relay)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """An empty directory; endpoint daemons left in it are stopped afterwards."""
    workdir = tmp_path / "walkthrough"
    workdir.mkdir()
    try:
        yield workdir
    finally:
        _stop_daemons(workdir)


def test_page_has_a_walkthrough() -> None:
    blocks = steps(PAGE)
    assert any(b.arg == "background" for b in blocks), "the relay step is missing"
    assert {b.lang for b in blocks} == {"bash", "python"}
    # The relay port and one HTTP port per endpoint, replaced by free ones below.
    assert ports(blocks) == ["8700", "8765", "8766"]


def test_two_site_walkthrough_runs(workdir: Path) -> None:
    blocks = steps(PAGE)
    replace = {port: str(free_port()) for port in ports(blocks)}
    walkthrough = build(blocks, replace)
    for name, content in walkthrough.files.items():
        (workdir / name).write_text(content)
    (workdir / "walkthrough.sh").write_text(walkthrough.script)
    env = {k: v for k, v in os.environ.items() if k != "PROXYSTORE_HOME"}
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env["PATH"]])
    proc = subprocess.Popen(
        ["bash", "walkthrough.sh"],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        pytest.fail(f"the walk-through did not finish in {TIMEOUT} s:\n{output}")
    finally:
        _stop_group(proc.pid)
        leftovers = _stop_daemons(workdir)
    logs = "\n".join(
        f"--- {path.relative_to(workdir)}\n{path.read_text()[-3000:]}"
        for path in sorted(workdir.rglob("*.txt")) + sorted(workdir.glob("*.log"))
    )
    assert proc.returncode == 0, f"the walk-through failed:\n{output}\n{logs}"
    # Step 5 (WebRTC) and step 7 (direct HTTP) both fetched A's object through B.
    assert output.count("Result: hello from A") == 2, output
    assert "Object exists: True" in output, output
    # Both endpoints reached the relay (`start` warns, `list` says so, otherwise).
    assert "NOT CONNECTED" not in output, output
    assert "not registered" not in output, output
    # Step 6: the proxy made with A's home resolved with B's.
    assert "resolved on site B: {'made on': 'site A'" in output, output
    # Step 8 stopped both endpoints: nothing was left for the cleanup.
    assert leftovers == [], f"endpoints left running: {leftovers}\n{output}"
