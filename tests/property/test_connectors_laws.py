"""Hypothesis laws of the built-in connectors (local, file, multi).

Each law runs against every connector kind; a rule-based state machine drives random
put/get/evict/exists/set sequences and compares the connector with a plain dict.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
)

from proxystore.connectors.file import FileConnector
from proxystore.connectors.local import LocalConnector
from proxystore.connectors.multi import MultiConnector, Policy
from proxystore.connectors.protocols import BytesLike, Connector, DeferrableConnector

# Small payloads keep examples fast; a few larger ones cross the multi size threshold.
payloads = st.one_of(st.binary(max_size=64), st.binary(min_size=100, max_size=600))
bytes_likes = payloads.flatmap(
    lambda b: st.sampled_from([b, bytearray(b), memoryview(b)])
)
_MULTI_THRESHOLD = 80


def _make_local(_: str) -> LocalConnector:
    return LocalConnector()


def _make_file(directory: str) -> FileConnector:
    return FileConnector(directory, clear=True)


def _make_multi(directory: str) -> MultiConnector:
    return MultiConnector(
        {
            "small": (
                LocalConnector(),
                Policy(priority=2, max_size_bytes=_MULTI_THRESHOLD),
            ),
            "large": (FileConnector(directory), Policy(priority=1)),
        }
    )


FACTORIES: dict[str, Callable[[str], Connector[Any]]] = {
    "local": _make_local,
    "file": _make_file,
    "multi": _make_multi,
}


def _read(value: BytesLike | None) -> bytes | None:
    return None if value is None else bytes(value)


@pytest.fixture(scope="module", params=sorted(FACTORIES))
def connector(request: pytest.FixtureRequest) -> Iterator[Connector[Any]]:
    # Module scope: Hypothesis reruns the test body many times, and function-scoped
    # fixtures are not reset between its examples anyway.
    directory = tempfile.mkdtemp(prefix="ps-laws-")
    made = FACTORIES[request.param](f"{directory}/store")
    try:
        yield made
    finally:
        made.close()
        shutil.rmtree(directory, ignore_errors=True)


@given(data=bytes_likes)
def test_put_then_get_returns_equal_bytes(
    connector: Connector[Any], data: BytesLike
) -> None:
    key = connector.put(data)
    assert _read(connector.get(key)) == bytes(data)
    connector.evict(key)


@given(data=payloads)
def test_exists_and_evict_agree(connector: Connector[Any], data: bytes) -> None:
    key = connector.put(data)
    assert connector.exists(key)
    connector.evict(key)
    assert not connector.exists(key)
    assert connector.get(key) is None
    connector.evict(key)
    assert not connector.exists(key)


@given(objs=st.lists(payloads, max_size=8), evict_mask=st.lists(st.booleans()))
def test_batch_ops_equal_single_ops(
    connector: Connector[Any], objs: list[bytes], evict_mask: list[bool]
) -> None:
    keys = connector.put_batch(objs)
    assert len(set(keys)) == len(objs)
    for key, drop in zip(keys, evict_mask, strict=False):
        if drop:
            connector.evict(key)
    singles = [_read(connector.get(key)) for key in keys]
    assert [_read(v) for v in connector.get_batch(keys)] == singles
    expected = [
        None if i < len(evict_mask) and evict_mask[i] else obj
        for i, obj in enumerate(objs)
    ]
    assert singles == expected
    for key in keys:
        connector.evict(key)


class ConnectorModelMachine(RuleBasedStateMachine):
    """Random operation sequences must match a ``dict`` model of the store."""

    kind = "local"
    keys = Bundle("keys")

    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="ps-machine-")
        self.connector = FACTORIES[self.kind](f"{self.directory}/store")
        self.model: dict[Any, bytes] = {}
        self.evicted: list[Any] = []

    def teardown(self) -> None:
        self.connector.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    @property
    def deferrable(self) -> bool:
        return isinstance(self.connector, DeferrableConnector)

    @rule(target=keys, data=bytes_likes)
    def put(self, data: BytesLike) -> Any:
        key = self.connector.put(data)
        assert key not in self.model
        self.model[key] = bytes(data)
        return key

    @rule(target=keys, objs=st.lists(payloads, min_size=1, max_size=4))
    def put_batch(self, objs: list[bytes]) -> Any:
        new = self.connector.put_batch(objs)
        self.model.update(zip(new, objs, strict=True))
        # A bundle rule adds one value; the others stay reachable through the model.
        return new[0]

    @precondition(lambda self: self.deferrable)
    @rule(target=keys)
    def new_key(self) -> Any:
        assert isinstance(self.connector, DeferrableConnector)
        return self.connector.new_key()

    @precondition(lambda self: self.deferrable)
    @rule(key=keys, data=payloads)
    def set(self, key: Any, data: bytes) -> None:
        assert isinstance(self.connector, DeferrableConnector)
        self.connector.set(key, data)
        self.model[key] = data

    @rule(key=keys)
    def get(self, key: Any) -> None:
        assert _read(self.connector.get(key)) == self.model.get(key)

    @rule(key=keys)
    def exists(self, key: Any) -> None:
        assert self.connector.exists(key) == (key in self.model)

    @rule(key=keys)
    def evict(self, key: Any) -> None:
        self.connector.evict(key)
        self.model.pop(key, None)
        self.evicted.append(key)

    @rule(key=consumes(keys))
    def evict_and_forget(self, key: Any) -> None:
        self.evict(key)

    @invariant()
    def batch_get_matches_model(self) -> None:
        keys = [*self.model, *self.evicted[-3:]]
        got = [_read(v) for v in self.connector.get_batch(keys)]
        assert got == [self.model.get(key) for key in keys]


class LocalMachine(ConnectorModelMachine):
    kind = "local"


class FileMachine(ConnectorModelMachine):
    kind = "file"


class MultiMachine(ConnectorModelMachine):
    kind = "multi"


# Fewer steps per run than Hypothesis' default 50 keeps the file-backed machines at a
# few seconds; the number of runs still comes from the loaded profile.
_STEPS = settings(stateful_step_count=25)
TestLocalMachine = _STEPS(LocalMachine).TestCase
TestFileMachine = _STEPS(FileMachine).TestCase
TestMultiMachine = _STEPS(MultiMachine).TestCase
