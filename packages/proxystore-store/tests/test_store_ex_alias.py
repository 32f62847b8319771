"""`proxystore.ex.plugins.distributed` (proxystore-ex path) re-exports our Client."""

from __future__ import annotations

import pytest

pytest.importorskip("distributed")


def test_reference_import_path_gives_our_client() -> None:
    import proxystore.store.dask
    from proxystore.ex.plugins import distributed

    assert distributed.Client is proxystore.store.dask.Client
    assert distributed.__all__ == ["Client"]
