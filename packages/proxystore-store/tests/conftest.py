"""Fixtures shared by the store unit tests (``test_store_*.py``)."""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from proxystore.connectors.file import FileConnector
from proxystore.connectors.local import LocalConnector
from proxystore.store import Store

ConnectorMaker = Callable[[], Any]


def unique_name(prefix: str = "store") -> str:
    """A store name no other test uses (the registry is process-global)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["local", "file"])
def make_connector(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path
) -> ConnectorMaker:
    """Build connectors of one kind: Local, or File in a fresh temp dir."""
    if request.param == "local":
        return LocalConnector
    return lambda: FileConnector(str(tmp_path / uuid.uuid4().hex))


@pytest.fixture
def any_store(make_connector: ConnectorMaker) -> Iterator[Store[Any]]:
    """A registered store over a fresh connector (Local and File), then closed."""
    with Store(unique_name(), make_connector(), register=True) as store:
        yield store


@pytest.fixture
def local_store() -> Iterator[Store[LocalConnector]]:
    """A registered store over a fresh LocalConnector, then closed."""
    with Store(unique_name(), LocalConnector(), register=True) as store:
        yield store
