"""The TOML examples of the relay and endpoint pages are configurations that load."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from proxystore.endpoint.config import EndpointConfig
from proxystore.p2p.relay.authenticate import get_authenticator
from proxystore.p2p.relay.config import RelayServingConfig
from proxystore.utils.config import load
from tests.docs.blocks import ROOT, Block, fenced_blocks


def _toml_blocks(page: str, title: str) -> list[Block]:
    blocks = [
        b
        for b in fenced_blocks(ROOT / "docs" / page)
        if b.lang == "toml" and f'title="{title}"' in b.info
    ]
    assert blocks, f"no {title} example in {page}"
    return blocks


@pytest.mark.parametrize(
    "block",
    _toml_blocks("guides/relay-serving.md", "relay.toml"),
    ids=lambda b: b.where,
)
def test_relay_examples_load(
    block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "relay.toml"
    path.write_text(block.source)
    config = RelayServingConfig.from_toml(path)
    if config.auth.method == "token":
        # The example's reference resolves to a token from the environment.
        monkeypatch.setenv(config.auth.kwargs["token_env"], "from-the-environment")
        authenticator = get_authenticator(config.auth)
        header = {"Authorization": "Bearer from-the-environment"}
        authenticator.authenticate_user(header)


def test_annotated_endpoint_config_loads() -> None:
    (block,) = _toml_blocks("guides/endpoint-config.md", "config.toml")
    config = load(EndpointConfig, io.BytesIO(block.source.encode()))
    assert config.relay.address == "wss://relay.example.org:8700"
    assert config.relay.auth.method == "globus"
    assert config.peering.direct is True
    assert config.storage.max_object_size == 100_000_000
