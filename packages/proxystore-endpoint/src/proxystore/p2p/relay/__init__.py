"""Relay (signaling) server and client that introduce peers to each other."""

from __future__ import annotations

__all__: list[str] = []
