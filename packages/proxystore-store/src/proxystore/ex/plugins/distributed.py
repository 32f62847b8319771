"""Alias of :mod:`proxystore.store.dask` under its proxystore-ex name."""

from __future__ import annotations

from proxystore.store.dask import Client as Client

__all__ = ["Client"]
