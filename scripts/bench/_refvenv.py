"""Create and drive the reference-release venv (`.bench-venv/`) used by benchmarks.

Every benchmark compares our packages with the published `proxystore` release, run on
the same machine in the same invocation. The reference lives in its own virtual
environment so its packages never mix with the workspace's. This module creates that
venv once (guarded by a file lock so concurrent benchmarks do not race) and runs
snippets inside it.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
VENV_DIR = ROOT / ".bench-venv"
REFERENCE_REQUIREMENTS = [
    "proxystore[redis,zmq,kafka,endpoints]==1.1.0",
    "proxystore-ex==0.1.5",
    "numpy",
    "redis",
    "pyzmq",
    "confluent-kafka",
]
_STAMP = VENV_DIR / ".ready"


def python() -> Path:
    """Return the reference venv's interpreter, creating the venv when needed."""
    ensure()
    return VENV_DIR / "bin" / "python"


def ensure() -> None:
    """Create `.bench-venv/` with the reference release unless it already exists.

    The stamp file records the requirement list, so adding a requirement (e.g. an
    extra) installs it into an existing venv instead of being silently skipped.
    """
    wanted = "\n".join(REFERENCE_REQUIREMENTS) + "\n"
    if _STAMP.exists() and _STAMP.read_text() == wanted:
        return
    VENV_DIR.parent.mkdir(parents=True, exist_ok=True)
    lock_path = ROOT / ".bench-venv.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _STAMP.exists() and _STAMP.read_text() == wanted:
            return
        py = str(VENV_DIR / "bin" / "python")
        if not _STAMP.exists():
            venv.EnvBuilder(with_pip=True, clear=True).create(VENV_DIR)
        subprocess.run(
            [py, "-m", "pip", "install", "-q", *REFERENCE_REQUIREMENTS],
            check=True,
        )
        _STAMP.write_text(wanted)


def run_json(code: str, *args: str, env: dict[str, str] | None = None) -> Any:
    """Run `code` in the reference venv; it must print one JSON document last.

    The child starts with a clean `PYTHONPATH` so nothing of the workspace leaks in.
    """
    child_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if env:
        child_env.update(env)
    out = subprocess.run(
        [str(python()), "-c", code, *args],
        check=True,
        capture_output=True,
        text=True,
        env=child_env,
        cwd=str(VENV_DIR),
    )
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    return json.loads(lines[-1])


if __name__ == "__main__":
    ensure()
    print(VENV_DIR, file=sys.stderr)
