"""Every proxy test runs against both forwarding engines (compiled and pure Python)."""

from __future__ import annotations

from typing import Any

import pytest

from proxystore.proxy import Proxy
from proxystore.proxy._proxy import PurePythonProxy, compiled

ENGINES = [
    pytest.param(Proxy, id="compiled" if compiled() else "default"),
    pytest.param(PurePythonProxy, id="pure"),
]


@pytest.fixture(params=ENGINES)
def proxy_cls(request: pytest.FixtureRequest) -> Any:
    """`Proxy` (compiled engine when built) or `PurePythonProxy`."""
    return request.param


@pytest.fixture
def make(proxy_cls: Any) -> Any:
    """Build a resolved-on-use proxy of a value: `make(value)`."""

    def build(value: Any, **kwargs: Any) -> Any:
        return proxy_cls(lambda: value, **kwargs)

    return build
