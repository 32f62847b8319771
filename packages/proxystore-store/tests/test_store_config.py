"""Unit tests of StoreConfig / ConnectorConfig (validation, TOML, pickling)."""

from __future__ import annotations

import dataclasses
import pathlib
import pickle
from typing import Any

import pytest

from proxystore.connectors.file import FileConnector
from proxystore.connectors.local import LocalConnector
from proxystore.store import ConnectorConfig, Store, StoreConfig

LOCAL = "proxystore.connectors.local.LocalConnector"


def _config(**overrides: Any) -> StoreConfig:
    base: dict[str, Any] = {"name": "cfg", "connector": ConnectorConfig("local")}
    return StoreConfig(**{**base, **overrides})


@pytest.mark.parametrize(
    ("alias", "cls"),
    [
        ("local", LocalConnector),
        ("LOCAL", LocalConnector),
        ("LocalConnector", LocalConnector),
        ("file", FileConnector),
        (LOCAL, LocalConnector),
    ],
)
def test_connector_kinds(alias: str, cls: type[Any]) -> None:
    config = ConnectorConfig(alias)
    assert config.get_connector_type() is cls
    assert config.kind == alias  # kept as given, like the reference


def test_short_kind_survives_toml_and_builds(tmp_path: pathlib.Path) -> None:
    config = StoreConfig(
        name="short-kind",
        connector=ConnectorConfig(kind="file", options={"store_dir": str(tmp_path)}),
    )
    path = tmp_path / "store.toml"
    config.write_toml(path)
    loaded = StoreConfig.from_toml(path)
    assert loaded == config
    assert loaded.connector.kind == "file"
    assert 'kind = "file"' in path.read_text()
    connector = loaded.connector.get_connector()
    assert isinstance(connector, FileConnector)
    connector.close()


def test_multi_alias_resolves() -> None:
    from proxystore.connectors.multi import MultiConnector

    assert ConnectorConfig("multi").get_connector_type() is MultiConnector


@pytest.mark.parametrize("kind", ["nosuchthing", "proxystore.nope.Connector", "x.Y"])
def test_unknown_connector_kind_is_named(kind: str) -> None:
    with pytest.raises(ValueError, match=kind):
        ConnectorConfig(kind).get_connector_type()


def test_connector_kind_that_is_not_a_class() -> None:
    with pytest.raises(ValueError, match="not a class"):
        ConnectorConfig("proxystore.store.config._ALIASES").get_connector_type()


def test_get_connector_uses_from_config(tmp_path: pathlib.Path) -> None:
    config = ConnectorConfig("file", {"store_dir": str(tmp_path / "d")})
    with config.get_connector() as connector:
        assert isinstance(connector, FileConnector)
        assert connector.config()["store_dir"] == str(tmp_path / "d")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": ""}, "kind"),
        ({"kind": 3}, "kind"),
        ({"kind": "local", "options": []}, "options"),
        ({"kind": "local", "options": {1: 2}}, "options"),
    ],
)
def test_connector_config_validation(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        ConnectorConfig(**kwargs)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": ""}, "name"),
        ({"connector": {"kind": "local"}}, "connector"),
        ({"serializer": 5}, "serializer"),
        ({"cache_size": -1}, "cache_size"),
        ({"cache_size": True}, "cache_size"),
        ({"metrics": "yes"}, "metrics"),
        ({"populate_target": 1}, "populate_target"),
        ({"auto_register": None}, "auto_register"),
    ],
)
def test_store_config_validation(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        _config(**overrides)


def test_store_config_is_frozen() -> None:
    config = _config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.name = "other"  # type: ignore[misc]


def test_from_dict_rejects_unknown_and_missing_fields() -> None:
    with pytest.raises(ValueError, match="bogus"):
        StoreConfig.from_dict({"name": "a", "connector": {"kind": "local"}, "bogus": 1})
    with pytest.raises(ValueError, match="connector"):
        StoreConfig.from_dict({"name": "a"})
    with pytest.raises(ValueError, match="name"):
        StoreConfig.from_dict({"connector": {"kind": "local"}})
    with pytest.raises(ValueError, match="extra"):
        StoreConfig.from_dict({"name": "a", "connector": {"kind": "l", "extra": 1}})
    with pytest.raises(ValueError, match="kind"):
        StoreConfig.from_dict({"name": "a", "connector": {}})


def test_dict_roundtrip() -> None:
    config = _config(cache_size=4, metrics=True)
    assert StoreConfig.from_dict(config.as_dict()) == config


def test_toml_roundtrip(tmp_path: pathlib.Path) -> None:
    config = _config(
        connector=ConnectorConfig("file", {"store_dir": "/tmp/x", "clear": True}),
        cache_size=2,
        populate_target=False,
    )
    path = tmp_path / "nested" / "dir" / "store.toml"
    config.write_toml(path)
    assert StoreConfig.from_toml(path) == config


def test_toml_errors(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="serializer"):
        _config(serializer=bytes).write_toml(tmp_path / "a.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [unclosed")
    with pytest.raises(ValueError, match="invalid TOML"):
        StoreConfig.from_toml(bad)
    unsupported = _config(connector=ConnectorConfig("local", {"x": object()}))
    with pytest.raises(ValueError, match="TOML"):
        unsupported.write_toml(tmp_path / "b.toml")


def _ser(obj: Any) -> bytes:
    return pickle.dumps(obj)


@pytest.mark.parametrize(
    "config",
    [
        _config(),
        _config(auto_register=True),
        _config(serializer=_ser, metrics=True),
        _config(connector=ConnectorConfig("custom.module.Conn", {"a": [1, 2]})),
        _config(connector=ConnectorConfig(LOCAL)),
        _config(connector=ConnectorConfig("LocalConnector")),
    ],
)
def test_pickle_roundtrip_and_small(config: StoreConfig) -> None:
    data = pickle.dumps(config)
    assert pickle.loads(data) == config
    assert len(data) < 200


def test_store_config_from_store() -> None:
    with Store("cfg-store", LocalConnector(), cache_size=5) as store:
        config = store.config()
    assert config.connector.kind == LOCAL
    assert config.cache_size == 5
    assert config.connector.options == {"include_data_in_config": False}


def test_short_name_found_by_module_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    # A backend missing from the alias table is found as proxystore.connectors.<name>.
    from proxystore.store import config as config_module

    monkeypatch.delitem(config_module._ALIASES, "file")
    monkeypatch.setattr(config_module, "_connector_types", {})
    config = ConnectorConfig("File")
    assert config.kind == "File"
    assert config.get_connector_type() is FileConnector
    with pytest.raises(ValueError, match="protocols"):
        ConnectorConfig("protocols").get_connector_type()  # no single *Connector
