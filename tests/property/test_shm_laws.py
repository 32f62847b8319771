"""Hypothesis laws over the shared-memory connector.

The store laws (tests/conformance/store_laws.py) and the connector model machine of
test_connectors_laws.py run over ``SharedMemoryConnector``; one more law checks that
numpy arrays of any size (below and above the size from which segments are mapped
instead of read) come back equal and writable, and that writing to them never changes
the stored object. After every test no segment of this module's namespace is left in
``/dev/shm``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxystore.connectors.shm import SharedMemoryConnector
from proxystore.store import Store
from tests.conformance.store_laws import StoreLaws
from tests.property.test_connectors_laws import ConnectorModelMachine

#: One namespace per test process (xdist worker).
NAMESPACE = f"laws_{os.getpid()}_{secrets.token_hex(4)}"


@pytest.fixture(autouse=True)
def _no_segment_left() -> Iterator[None]:
    yield
    left = SharedMemoryConnector(NAMESPACE, clear=False).segments()
    SharedMemoryConnector(NAMESPACE).close()
    assert left == [], f"segments left in /dev/shm: {left}"


class TestSharedMemoryStoreLaws(StoreLaws):
    @pytest.fixture(scope="class")
    @classmethod
    def store_connector(cls) -> Iterator[SharedMemoryConnector]:
        with SharedMemoryConnector(NAMESPACE) as connector:
            yield connector


class SharedMemoryMachine(ConnectorModelMachine):
    def __init__(self) -> None:
        super().__init__()
        self.connector.close()  # the parent's default (local) connector
        self.connector = SharedMemoryConnector(NAMESPACE)


TestSharedMemoryMachine = settings(stateful_step_count=25)(SharedMemoryMachine).TestCase

_DTYPES = st.sampled_from([np.float64, np.int32, np.uint8, np.complex128])


@settings(max_examples=20)
@given(
    length=st.one_of(st.integers(0, 100), st.integers(30_000, 200_000)),
    dtype=_DTYPES,
)
def test_arrays_round_trip_writable_and_private(length: int, dtype: type) -> None:
    original: np.ndarray[Any, Any] = (np.arange(length) % 251).astype(dtype)
    with Store(
        f"shm-arrays-{secrets.token_hex(4)}",
        SharedMemoryConnector(NAMESPACE),
        cache_size=0,
    ) as store:
        key = store.put(original)
        first = store.get(key)
        assert first.dtype == original.dtype
        assert np.array_equal(first, original)
        assert first.flags.writeable
        first += 1
        assert np.array_equal(store.get(key), original)
        store.evict(key)
        assert store.get(key) is None
