"""Store laws (tests/conformance/store_laws.py) over the built-in connectors.

Other connectors (Redis, shared memory, ...) join by subclassing ``StoreLaws`` with
their own ``store_connector`` fixture.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import pytest

from proxystore.connectors.file import FileConnector
from proxystore.connectors.local import LocalConnector
from proxystore.connectors.multi import MultiConnector, Policy
from proxystore.connectors.protocols import Connector
from tests.conformance.store_laws import StoreLaws


class TestLocalStoreLaws(StoreLaws):
    @pytest.fixture
    def store_connector(self) -> Iterator[LocalConnector]:
        with LocalConnector() as connector:
            yield connector


class TestFileStoreLaws(StoreLaws):
    @pytest.fixture
    def store_connector(self, tmp_path: pathlib.Path) -> Iterator[FileConnector]:
        with FileConnector(str(tmp_path / "laws")) as connector:
            yield connector


class TestMultiStoreLaws(StoreLaws):
    @pytest.fixture
    def store_connector(self, tmp_path: pathlib.Path) -> Iterator[MultiConnector]:
        # Small objects go to memory, larger ones to files: both routes are used.
        connectors: dict[str, tuple[Connector[Any], Policy]] = {
            "small": (LocalConnector(), Policy(priority=2, max_size_bytes=64)),
            "large": (FileConnector(str(tmp_path / "multi")), Policy(priority=1)),
        }
        with MultiConnector(connectors) as connector:
            yield connector
