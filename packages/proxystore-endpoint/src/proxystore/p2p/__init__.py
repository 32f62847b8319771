"""Peer-to-peer connections between endpoints."""

from __future__ import annotations

__all__: list[str] = []
