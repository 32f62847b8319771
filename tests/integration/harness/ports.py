"""Free loopback ports that do not collide across pytest-xdist workers.

Each worker probes its own block of the port space (``gw3`` starts 3 blocks up), at a
random offset inside the block so two test sessions running side by side rarely probe
the same ports. A port is handed out only after a bind probe succeeds for it and for
every companion offset asked for (a Redis Cluster node also needs ``port + 10000`` for
its bus). Probing cannot reserve a port, so servers that lose a race are restarted on a
new port by the caller (see :func:`tests.integration.harness.servers.start_server`).
"""

from __future__ import annotations

import os
import random
import socket
from collections.abc import Iterable

__all__ = ["free_port", "worker_index"]

_FIRST = 20_000
_BLOCK = 400
_BLOCKS = 25  # 20 000 .. 30 000; bus ports (+10 000) stay below 40 000.

_handed_out: set[int] = set()


def worker_index() -> int:
    """Return this xdist worker's number (``gw3`` → 3; 0 without xdist)."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    digits = name.removeprefix("gw")
    return int(digits) if digits.isdigit() else 0


def _can_bind(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(*, companions: Iterable[int] = ()) -> int:
    """Return a loopback port that is free now, with ``port + c`` free for each ``c``.

    Raises:
        RuntimeError: When the worker's whole block is taken.
    """
    offsets = (0, *companions)
    block_start = _FIRST + (worker_index() % _BLOCKS) * _BLOCK
    start = random.randrange(_BLOCK)
    for step in range(_BLOCK):
        port = block_start + (start + step) % _BLOCK
        if any(port + off in _handed_out for off in offsets):
            continue
        if all(_can_bind(port + off) for off in offsets):
            _handed_out.update(port + off for off in offsets)
            return port
    raise RuntimeError(
        f"no free loopback port in {block_start}..{block_start + _BLOCK - 1}"
    )
