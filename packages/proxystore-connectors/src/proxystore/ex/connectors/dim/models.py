"""Alias of `proxystore.connectors.dim.models` under its proxystore-ex name."""

from __future__ import annotations

# The star import takes exactly the names in the source module's __all__, and that
# list is re-exported as is, so the alias cannot drift from the module it mirrors.
from proxystore.connectors.dim.models import *  # noqa: F403
from proxystore.connectors.dim.models import __all__ as __all__
