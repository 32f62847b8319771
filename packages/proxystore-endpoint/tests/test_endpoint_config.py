from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from proxystore.endpoint.config import (
    EndpointConfig,
    EndpointPeeringConfig,
    EndpointRelayConfig,
    EndpointRelayICEServerConfig,
    EndpointStorageConfig,
    get_configs,
    get_log_filepath,
    get_pid_filepath,
    read_config,
    validate_name,
    write_config,
)

# What the reference 1.1.0 `proxystore-endpoint configure` writes.
REFERENCE_TOML = """\
name = "ep1"
uuid = "6b4d023f-6388-4593-b871-e1ac35e7eb57"
port = 5555
host_type = "ip"

[relay]
address = "ws://127.0.0.1:9999"
peer_channels = 1
verify_certificate = true

[relay.auth.kwargs]

[storage]
database_path = "/tmp/ep1/blobs.db"
max_object_size = 100000000
"""


def test_reads_reference_config(tmp_path: Path) -> None:
    (tmp_path / "ep1").mkdir()
    (tmp_path / "ep1" / "config.toml").write_text(REFERENCE_TOML)
    cfg = read_config(str(tmp_path / "ep1"))
    assert cfg.name == "ep1"
    assert cfg.port == 5555
    assert cfg.host is None
    assert cfg.relay.address == "ws://127.0.0.1:9999"
    assert cfg.relay.auth.method is None
    assert cfg.relay.ice_servers is None
    assert cfg.storage.database_path == "/tmp/ep1/blobs.db"
    assert cfg.peering == EndpointPeeringConfig()


def test_write_read_round_trip(tmp_path: Path) -> None:
    cfg = EndpointConfig(
        name="ep-2_x",
        uuid=str(uuid.uuid4()),
        port=1234,
        host="127.0.0.1",
        host_type="static",
        relay=EndpointRelayConfig(
            address="wss://relay.example",
            ice_servers=[EndpointRelayICEServerConfig(urls=["stun:a", "stun:b"])],
            ice_addresses=["127.0.0.1"],
            peer_channels=3,
        ),
        storage=EndpointStorageConfig(max_object_size=5),
        peering=EndpointPeeringConfig(direct=False, request_timeout=2.5),
    )
    write_config(cfg, str(tmp_path / "ep"))
    assert read_config(str(tmp_path / "ep")) == cfg
    text = (tmp_path / "ep" / "config.toml").read_text()
    assert "[relay]" in text
    assert "ice_servers" in text


def test_empty_ice_servers_survive(tmp_path: Path) -> None:
    cfg = EndpointConfig(
        name="ep",
        uuid=str(uuid.uuid4()),
        port=1,
        relay=EndpointRelayConfig(ice_servers=[]),
    )
    write_config(cfg, str(tmp_path))
    assert read_config(str(tmp_path)).relay.ice_servers == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "bad name"}, "name"),
        ({"name": ""}, "name"),
        ({"uuid": "not-a-uuid"}, "UUID"),
        ({"port": 0}, "Port"),
        ({"port": 70000}, "Port"),
        ({"host_type": "mars"}, "host_type"),
    ],
)
def test_invalid_configs(kwargs: dict[str, object], match: str) -> None:
    base: dict[str, object] = {"name": "ep", "uuid": str(uuid.uuid4()), "port": 80}
    base.update(kwargs)
    with pytest.raises(ValueError, match=match):
        EndpointConfig(**base)  # type: ignore[arg-type]


def test_invalid_sub_configs() -> None:
    with pytest.raises(ValueError, match="ws://"):
        EndpointRelayConfig(address="http://relay")
    with pytest.raises(ValueError, match="peer_channels"):
        EndpointRelayConfig(peer_channels=0)
    with pytest.raises(ValueError, match="max_object_size"):
        EndpointStorageConfig(max_object_size=0)
    with pytest.raises(ValueError, match="request_timeout"):
        EndpointPeeringConfig(request_timeout=0)


def test_read_config_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_config(str(tmp_path))
    (tmp_path / "config.toml").write_text("name = 1\n")
    with pytest.raises(ValueError, match="Unable to parse"):
        read_config(str(tmp_path))


def test_get_configs_skips_invalid(tmp_path: Path) -> None:
    assert get_configs(str(tmp_path / "missing")) == []
    good = EndpointConfig(name="good", uuid=str(uuid.uuid4()), port=9)
    write_config(good, str(tmp_path / "good"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.toml").write_text("port = 'x'\n")
    (tmp_path / "empty").mkdir()
    assert get_configs(str(tmp_path)) == [good]


def test_paths_and_names(tmp_path: Path) -> None:
    assert get_log_filepath("/a/b").endswith("/a/b/log.txt")
    assert get_pid_filepath("/a/b").endswith("/a/b/daemon.pid")
    assert validate_name("a-b_C9")
    assert not validate_name("a.b")
