from __future__ import annotations

import logging
import stat
import uuid
from pathlib import Path

import pytest

from proxystore.endpoint._peering import _auth_headers, _turn_credential
from proxystore.endpoint.config import (
    EndpointConfig,
    EndpointPeeringConfig,
    EndpointRelayAuthConfig,
    EndpointRelayConfig,
    EndpointRelayICEServerConfig,
    EndpointStorageConfig,
    file_mode,
    get_configs,
    get_log_filepath,
    get_pid_filepath,
    read_config,
    relay_token_credential,
    secure_file,
    validate_name,
    write_config,
)
from proxystore.utils.config import dumps
from proxystore.utils.credentials import CredentialError

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


# ------------------------------------------------------------ secrets and modes


def _token_config(**kwargs: str) -> EndpointConfig:
    return EndpointConfig(
        name="ep-tok",
        uuid=str(uuid.uuid4()),
        port=1234,
        relay=EndpointRelayConfig(
            address="ws://127.0.0.1:1",
            auth=EndpointRelayAuthConfig(method="token", kwargs=dict(kwargs)),
        ),
    )


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("PROXYSTORE_HOME", str(path))
    return path


def test_config_file_and_new_directory_are_private(tmp_path: Path) -> None:
    cfg = EndpointConfig(name="ep", uuid=str(uuid.uuid4()), port=1234)
    write_config(cfg, str(tmp_path / "ep"))
    assert stat.S_IMODE((tmp_path / "ep").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "ep" / "config.toml").stat().st_mode) == 0o600
    # An existing world-readable file is narrowed when written again.
    (tmp_path / "ep" / "config.toml").chmod(0o666)
    write_config(cfg, str(tmp_path / "ep"))
    assert stat.S_IMODE((tmp_path / "ep" / "config.toml").stat().st_mode) == 0o600
    assert read_config(str(tmp_path / "ep")).private_files


def test_private_files_can_be_opened(tmp_path: Path) -> None:
    cfg = EndpointConfig(
        name="ep", uuid=str(uuid.uuid4()), port=1234, private_files=False
    )
    write_config(cfg, str(tmp_path / "ep"))
    assert stat.S_IMODE((tmp_path / "ep").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "ep" / "config.toml").stat().st_mode) == 0o644
    assert file_mode(cfg) == 0o644
    assert not read_config(str(tmp_path / "ep")).private_files


def test_secure_file_refuses_a_planted_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("x")
    target.chmod(0o644)
    (tmp_path / "log.txt").symlink_to(target)
    with pytest.raises(OSError, match=r"symbolic link|Too many levels"):
        secure_file(str(tmp_path / "log.txt"), 0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    secure_file(str(tmp_path / "new.txt"), 0o600)
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o600


def test_plain_relay_token_is_moved_to_the_credentials_file(
    tmp_path: Path, home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # An older config holding the token in plain text still works, with a warning.
    cfg = _token_config(token="s3cret-token")
    endpoint_dir = tmp_path / "ep-tok"
    endpoint_dir.mkdir()
    (endpoint_dir / "config.toml").write_text(dumps(cfg))
    with caplog.at_level(logging.WARNING):
        old = read_config(str(endpoint_dir))
    assert "plain text" in caplog.text
    assert "s3cret-token" not in caplog.text
    assert _auth_headers(old) == {"Authorization": "Bearer s3cret-token"}
    # Writing it (as `start` does) stores a reference instead.
    write_config(old, str(endpoint_dir))
    text = (endpoint_dir / "config.toml").read_text()
    assert "s3cret-token" not in text
    assert relay_token_credential("ep-tok") in text
    creds = home / "credentials.toml"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    new = read_config(str(endpoint_dir))
    assert new.relay.auth.kwargs == {"token_credential": "endpoint-ep-tok-relay-token"}
    assert _auth_headers(new) == {"Authorization": "Bearer s3cret-token"}
    assert old.relay.auth.kwargs == {"token": "s3cret-token"}  # the caller's is kept


def test_storing_a_token_keeps_other_credentials(home: Path, tmp_path: Path) -> None:
    home.mkdir()
    creds = home / "credentials.toml"
    creds.write_text('# my secrets\nredis = "r"\nendpoint-ep-tok-relay-token = "old"\n')
    creds.chmod(0o600)
    write_config(_token_config(token="new"), str(tmp_path / "a"))
    assert 'redis = "r"' in creds.read_text()
    assert '"old"' not in creds.read_text()
    creds.write_text('# my secrets\nredis = "r"\n')
    write_config(_token_config(token="newer"), str(tmp_path / "b"))
    assert creds.read_text().startswith("# my secrets\nredis")
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600


def test_token_is_not_stored_in_a_readable_credentials_file(
    home: Path, tmp_path: Path
) -> None:
    home.mkdir()
    creds = home / "credentials.toml"
    creds.write_text('redis = "r"\n')
    creds.chmod(0o644)
    with pytest.raises(CredentialError, match="chmod 600"):
        write_config(_token_config(token="s3cret-token"), str(tmp_path / "ep"))
    assert "s3cret-token" not in creds.read_text()
    assert not (tmp_path / "ep" / "config.toml").exists()


def test_relay_token_by_environment_reference(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EP_RELAY_TOKEN", "from-env")
    cfg = _token_config(token_env="EP_RELAY_TOKEN")
    assert _auth_headers(cfg) == {"Authorization": "Bearer from-env"}
    monkeypatch.delenv("EP_RELAY_TOKEN")
    with pytest.raises(ValueError, match="EP_RELAY_TOKEN"):
        _auth_headers(cfg)
    with pytest.raises(ValueError, match="token_env"):
        _token_config()


def test_turn_credential_by_reference(
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("EP_TURN", "turn-secret")
    by_env = EndpointRelayICEServerConfig(
        "turn:turn.example.org", username="u", credential_env="EP_TURN"
    )
    assert _turn_credential(by_env) == "turn-secret"
    assert "turn-secret" not in repr(
        EndpointRelayICEServerConfig("turn:x", credential="turn-secret")
    )
    assert _turn_credential(EndpointRelayICEServerConfig("stun:x")) is None
    monkeypatch.delenv("EP_TURN")
    with pytest.raises(ValueError, match="EP_TURN"):
        _turn_credential(by_env)
    cfg = EndpointConfig(
        name="ep",
        uuid=str(uuid.uuid4()),
        port=1234,
        relay=EndpointRelayConfig(
            ice_servers=[EndpointRelayICEServerConfig("turn:x", credential="pw-1")]
        ),
    )
    (tmp_path / "ep").mkdir()
    (tmp_path / "ep" / "config.toml").write_text(dumps(cfg))
    with caplog.at_level(logging.WARNING):
        read_config(str(tmp_path / "ep"))
    assert "TURN credential in plain text" in caplog.text
    assert "pw-1" not in caplog.text
