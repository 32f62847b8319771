"""Fixtures for the endpoint unit tests (`test_endpoint_*.py`).

`solo_endpoint` runs a real endpoint server (no peering) on a loopback port in a
background thread, configured in a temporary proxystore home directory.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from proxystore.endpoint.config import (
    EndpointConfig,
    EndpointRelayConfig,
    EndpointStorageConfig,
    write_config,
)
from proxystore.endpoint.serve import _serve_async


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RunningEndpoint:
    config: EndpointConfig
    home: Path
    stop: Callable[[], None]

    @property
    def address(self) -> str:
        return f"http://{self.config.host}:{self.config.port}"


def _run_in_thread(config: EndpointConfig) -> Callable[[], None]:
    ready = threading.Event()
    state: dict[str, object] = {}

    def run() -> None:
        async def main() -> None:
            stop = asyncio.Event()
            state["loop"] = asyncio.get_running_loop()
            state["stop"] = stop
            ready.set()
            await _serve_async(config, stop)

        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced by the waiting test
            state["error"] = exc
            ready.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    deadline_ok = False
    for _ in range(200):
        if "error" in state:
            raise AssertionError(f"endpoint failed to start: {state['error']!r}")
        # A whole HTTP exchange, not a bare connect: a connection the server has
        # not finished accepting when the test stops it at once would be left
        # half-open inside the closing event loop (an unclosed-transport warning).
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{config.port}/endpoint", timeout=0.5
            ) as response:
                response.read()
                deadline_ok = True
                break
        except OSError:
            threading.Event().wait(0.02)
    assert deadline_ok, "endpoint did not start listening"

    def stop() -> None:
        if not thread.is_alive():
            return
        loop = state.get("loop")
        event = state.get("stop")
        if isinstance(loop, asyncio.AbstractEventLoop) and isinstance(
            event, asyncio.Event
        ):
            loop.call_soon_threadsafe(event.set)
        thread.join(10)
        assert not thread.is_alive(), "endpoint thread did not stop"

    return stop


@pytest.fixture
def start_endpoint(tmp_path: Path) -> Iterator[Callable[..., RunningEndpoint]]:
    """Factory starting endpoints (SOLO unless given a relay); stopped at teardown."""
    stops: list[Callable[[], None]] = []

    def factory(
        name: str = "ep",
        *,
        max_object_size: int = 10_000_000,
        persist: bool = False,
        relay_address: str | None = None,
    ) -> RunningEndpoint:
        home = tmp_path / "home"
        cfg = EndpointConfig(
            name=name,
            uuid=str(uuid.uuid4()),
            port=free_port(),
            host="127.0.0.1",
            host_type="static",
            storage=EndpointStorageConfig(
                max_object_size=max_object_size,
                database_path=str(home / name / "blobs.db") if persist else None,
            ),
            relay=EndpointRelayConfig(
                address=relay_address, ice_servers=[], ice_addresses=["127.0.0.1"]
            ),
        )
        write_config(cfg, str(home / name))
        stop = _run_in_thread(cfg)
        stops.append(stop)
        return RunningEndpoint(cfg, home, stop)

    yield factory
    for stop in stops:
        stop()


@pytest.fixture
def solo_endpoint(start_endpoint: Callable[..., RunningEndpoint]) -> RunningEndpoint:
    """One running SOLO endpoint (10 MB maximum object size)."""
    return start_endpoint()
