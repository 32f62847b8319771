"""Alias of :mod:`proxystore.connectors.dim.utils` under its proxystore-ex name."""

from __future__ import annotations

from proxystore.connectors.dim.utils import get_ip_address as get_ip_address
from proxystore.connectors.dim.utils import resolve_address as resolve_address

__all__ = ["get_ip_address", "resolve_address"]
