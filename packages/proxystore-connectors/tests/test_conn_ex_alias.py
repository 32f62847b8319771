"""`proxystore.ex.connectors.*` (proxystore-ex paths) re-export our DIM modules."""

from __future__ import annotations

import importlib

import pytest

import proxystore.connectors.dim.zmq
import proxystore.ex.connectors.dim.zmq


@pytest.mark.parametrize("name", ["zmq", "models", "exceptions", "utils", "margo"])
def test_alias_module_exports_the_same_objects(name: str) -> None:
    ours = importlib.import_module(f"proxystore.connectors.dim.{name}")
    alias = importlib.import_module(f"proxystore.ex.connectors.dim.{name}")
    assert sorted(alias.__all__) == sorted(ours.__all__)
    for attr in ours.__all__:
        assert getattr(alias, attr) is getattr(ours, attr), attr


def test_reference_import_path_gives_our_connector() -> None:
    from proxystore.ex.connectors.dim.zmq import ZeroMQConnector

    assert ZeroMQConnector is proxystore.connectors.dim.zmq.ZeroMQConnector
    assert (
        proxystore.ex.connectors.dim.zmq.__name__ == "proxystore.ex.connectors.dim.zmq"
    )
