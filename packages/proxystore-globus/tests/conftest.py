"""Keep every test's Globus tokens and credentials out of the real environment."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest
import responses

from proxystore.globus.app import (
    PROXYSTORE_GLOBUS_CLIENT_ID_ENV_NAME,
    PROXYSTORE_GLOBUS_CLIENT_SECRET_ENV_NAME,
)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROXYSTORE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(PROXYSTORE_GLOBUS_CLIENT_ID_ENV_NAME, raising=False)
    monkeypatch.delenv(PROXYSTORE_GLOBUS_CLIENT_SECRET_ENV_NAME, raising=False)


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    # Every HTTP request goes to responses registered with globus_sdk.testing (which
    # uses responses' default mock); an unregistered one fails the test instead of
    # reaching the Globus service.
    responses.start()
    try:
        yield
    finally:
        responses.stop()
        responses.reset()
