"""Warning categories shared by proxystore packages."""

from __future__ import annotations

__all__ = ["ExperimentalWarning"]


class ExperimentalWarning(Warning):
    """Raised when a feature whose API may still change is used."""
