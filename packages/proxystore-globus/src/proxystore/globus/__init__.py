"""Globus Auth helpers: apps, clients, scopes and the `proxystore-globus-auth` CLI.

Every module of this package needs `globus-sdk`; importing the package without it
raises an `ImportError` that says what to install.
"""

from __future__ import annotations

try:
    import globus_sdk
except ImportError as exc:  # pragma: no cover - exercised by a test that hides it
    raise ImportError(
        "proxystore.globus needs the globus-sdk package. Install it with "
        "`pip install proxystore-globus` (or `pip install "
        "'proxystore-connectors[globus]'` for the Globus Transfer connector).",
        name=exc.name,
    ) from exc

__all__: list[str] = []
