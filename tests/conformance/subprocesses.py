"""Run a snippet of Python in a fresh interpreter (another process) for tests."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap


def run_python(code: str, *args: str, timeout: float = 120) -> str:
    """Run ``code`` with this interpreter and ``args``; return its stdout.

    Raises:
        subprocess.CalledProcessError: if the snippet exits with an error.
        subprocess.TimeoutExpired: if it runs longer than ``timeout`` seconds.
    """
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return out.stdout


def kill_when_stalled(code: str, *args: str) -> None:
    """Run ``code``, wait until it prints ``stalled``, then SIGKILL it.

    Raises:
        AssertionError: if the snippet ends or prints anything else first, or
            does not die of the signal.
    """
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "stalled"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
