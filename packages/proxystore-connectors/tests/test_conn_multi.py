"""Unit tests of proxystore.connectors.multi."""

from __future__ import annotations

import json
import pathlib
import pickle
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from proxystore.connectors import multi
from proxystore.connectors.exceptions import ConnectorError, MultiConnectorError
from proxystore.connectors.file import FileConnector, FileKey
from proxystore.connectors.local import LocalConnector, LocalKey
from proxystore.connectors.multi import (
    ConnectorPolicyConfig,
    MultiConnector,
    MultiKey,
    Policy,
    PolicyDict,
)
from proxystore.connectors.protocols import Connector, EvictingConnector
from tests.conformance.connector_suite import ConnectorSuite

_contract: Connector[MultiKey] = MultiConnector({})
_evicting: EvictingConnector[MultiKey] = MultiConnector({})


class TestMultiConformance(ConnectorSuite):
    """Small objects go to a LocalConnector, large ones to a FileConnector."""

    @pytest.fixture
    def connector(self, tmp_path: pathlib.Path) -> Iterator[MultiConnector]:
        small = LocalConnector(include_data_in_config=True)
        large = FileConnector(str(tmp_path / "store"))
        with MultiConnector(
            {
                "small": (small, Policy(priority=2, max_size_bytes=500)),
                "large": (large, Policy(priority=1)),
            }
        ) as connector:
            yield connector


class TestMultiSingleConformance(ConnectorSuite):
    config_shares_data = False

    @pytest.fixture
    def connector(self) -> Iterator[MultiConnector]:
        with MultiConnector({"only": (LocalConnector(), Policy())}) as connector:
            yield connector


@pytest.fixture
def hostname(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(multi, "hostname", lambda: "node-7.cluster")
    return "node-7.cluster"


# ----------------------------------------------------------------- Policy


def test_policy_defaults_accept_everything() -> None:
    policy = Policy()
    assert policy.is_valid()
    assert policy.is_valid(size_bytes=0, subset_tags=[], superset_tags=[])
    assert policy.is_valid(size_bytes=sys.maxsize)
    assert policy.as_dict() == PolicyDict(
        priority=0,
        host_pattern=None,
        min_size_bytes=0,
        max_size_bytes=sys.maxsize,
        subset_tags=[],
        superset_tags=[],
    )


@pytest.mark.parametrize(
    ("size", "valid"), [(9, False), (10, True), (15, True), (20, True), (21, False)]
)
def test_policy_size_bounds_are_inclusive(size: int, valid: bool) -> None:
    policy = Policy(min_size_bytes=10, max_size_bytes=20)
    assert policy.is_valid(size_bytes=size) is valid


def test_policy_tags() -> None:
    policy = Policy(subset_tags=["a", "b"], superset_tags=["x"])
    assert policy.is_valid(subset_tags=["a"])
    assert policy.is_valid(subset_tags=["a", "b"])
    assert not policy.is_valid(subset_tags=["a", "c"])
    assert policy.is_valid(superset_tags=["x", "y"])
    assert not policy.is_valid(superset_tags=["y"])
    assert not policy.is_valid(superset_tags=[])


@pytest.mark.usefixtures("hostname")
@pytest.mark.parametrize(
    ("pattern", "valid"),
    [
        (None, True),
        ("node-7.cluster", True),
        (r"node-\d+\.cluster", True),
        ("node", False),  # full match required
        (["login.*", "node-.*"], True),
        (["login.*"], False),
        ([], False),
    ],
)
def test_policy_host_pattern(pattern: list[str] | str | None, valid: bool) -> None:
    policy = Policy(host_pattern=pattern)
    assert policy.is_valid_on_host() is valid
    assert policy.is_valid() is valid


def test_policy_copies_its_inputs() -> None:
    tags = ["a"]
    policy = Policy(host_pattern=(p for p in ["h1", "h2"]), subset_tags=tags)
    tags.append("b")
    assert policy.subset_tags == ["a"]
    assert policy.host_pattern == ["h1", "h2"]
    assert policy.as_dict()["host_pattern"] == ["h1", "h2"]


def test_policy_round_trips_through_dict_and_json() -> None:
    policy = Policy(
        priority=3,
        host_pattern="h.*",
        min_size_bytes=1,
        max_size_bytes=2,
        subset_tags=["s"],
        superset_tags=["t"],
    )
    assert Policy(**policy.as_dict()) == policy
    assert Policy(**json.loads(json.dumps(policy.as_dict()))) == policy


def test_policy_is_frozen() -> None:
    policy = Policy()
    with pytest.raises(AttributeError):
        policy.priority = 1  # type: ignore[misc]


@pytest.mark.parametrize(("low", "high"), [(-1, 10), (11, 10)])
def test_policy_rejects_bad_size_bounds(low: int, high: int) -> None:
    with pytest.raises(ValueError, match="min_size_bytes"):
        Policy(min_size_bytes=low, max_size_bytes=high)


# ----------------------------------------------------------------- routing


def _three() -> tuple[MultiConnector, LocalConnector, LocalConnector, LocalConnector]:
    small, large, tagged = LocalConnector(), LocalConnector(), LocalConnector()
    connector = MultiConnector(
        {
            "large": (large, Policy(priority=1, min_size_bytes=100)),
            "small": (small, Policy(priority=5, max_size_bytes=99)),
            "tagged": (tagged, Policy(priority=10, superset_tags=["gpu"])),
        }
    )
    return connector, small, large, tagged


def test_put_routes_by_priority_and_size() -> None:
    connector, small, large, tagged = _three()
    assert connector.connectors_by_priority == ["tagged", "small", "large"]
    small_key = connector.put(b"x" * 99)
    large_key = connector.put(b"x" * 100)
    tagged_key = connector.put(b"x", superset_tags=["gpu", "fast"])
    assert small_key.connector_name == "small"
    assert large_key.connector_name == "large"
    assert tagged_key.connector_name == "tagged"
    assert small.get(small_key.connector_key) == b"x" * 99
    assert large.exists(large_key.connector_key)
    assert tagged.exists(tagged_key.connector_key)


def test_put_measures_memoryview_in_bytes() -> None:
    connector, *_ = _three()
    view = memoryview(bytes(400)).cast("I")  # 100 items, 400 bytes
    assert connector.put(view).connector_name == "large"


def test_put_with_no_valid_connector_explains_why() -> None:
    connector = MultiConnector(
        {"tiny": (LocalConnector(), Policy(max_size_bytes=3, subset_tags=["a"]))}
    )
    with pytest.raises(MultiConnectorError, match="5 bytes") as info:
        connector.put(b"12345")
    assert "tiny" in str(info.value)
    with pytest.raises(MultiConnectorError, match=r"subset_tags=\['b'\]"):
        connector.put(b"1", subset_tags=["b"])
    assert isinstance(info.value, ConnectorError)
    with pytest.raises(MultiConnectorError, match="no connectors"):
        MultiConnector({}).put(b"")


def test_connectors_not_valid_on_this_host_are_never_chosen(hostname: str) -> None:
    elsewhere, here = LocalConnector(), LocalConnector()
    connector = MultiConnector(
        {
            "elsewhere": (elsewhere, Policy(priority=9, host_pattern="login.*")),
            "here": (here, Policy(host_pattern=r"node-\d+\.cluster")),
        }
    )
    assert connector.put(b"x").connector_name == "here"


def test_put_batch_routes_each_object_and_keeps_order() -> None:
    connector, *_ = _three()
    objs = [b"a", b"b" * 200, b"c", b"d" * 300]
    keys = connector.put_batch(objs)
    assert [k.connector_name for k in keys] == ["small", "large", "small", "large"]
    assert [connector.get(k) for k in keys] == objs
    assert connector.get_batch(keys[::-1]) == objs[::-1]


def test_put_batch_stores_nothing_when_one_object_has_no_connector() -> None:
    only = LocalConnector({})
    connector = MultiConnector({"only": (only, Policy(max_size_bytes=1))})
    with pytest.raises(MultiConnectorError):
        connector.put_batch([b"a", b"too big"])
    assert only.config() == {"include_data_in_config": False}
    assert not only._store


def test_unknown_and_dormant_connectors(hostname: str) -> None:
    dormant: dict[str, ConnectorPolicyConfig] = {
        "far": (
            "proxystore.connectors.local.LocalConnector",
            {},
            Policy(host_pattern="login.*").as_dict(),
        )
    }
    connector = MultiConnector({"near": (LocalConnector(), Policy())}, dormant)
    dormant_key = MultiKey("far", LocalKey("abc"))
    unknown_key = MultiKey("nowhere", LocalKey("abc"))
    for op in (connector.get, connector.exists, connector.evict):
        with pytest.raises(MultiConnectorError, match="'far' is dormant"):
            op(dormant_key)
        with pytest.raises(MultiConnectorError, match="'nowhere' does not exist"):
            op(unknown_key)
    with pytest.raises(MultiConnectorError, match="dormant"):
        connector.get_batch([MultiKey("near", LocalKey("x")), dormant_key])


def test_same_name_active_and_dormant_is_refused() -> None:
    config: ConnectorPolicyConfig = (
        "proxystore.connectors.local.LocalConnector",
        {},
        Policy().as_dict(),
    )
    with pytest.raises(ValueError, match="a"):
        MultiConnector({"a": (LocalConnector(), Policy())}, {"a": config})


# ----------------------------------------------------------------- config


def test_config_is_plain_data_with_class_paths(tmp_path: pathlib.Path) -> None:
    file_connector = FileConnector(str(tmp_path / "f"))
    connector = MultiConnector(
        {
            "local": (LocalConnector(), Policy(priority=1)),
            "file": (file_connector, Policy(min_size_bytes=5)),
        }
    )
    config = connector.config()
    assert config["local"] == (
        "proxystore.connectors.local.LocalConnector",
        {"include_data_in_config": False},
        Policy(priority=1).as_dict(),
    )
    assert config["file"][0] == "proxystore.connectors.file.FileConnector"
    assert json.loads(json.dumps(config))  # plain data
    connector.close()
    assert not (tmp_path / "f").exists()


def test_from_config_after_json_round_trip(tmp_path: pathlib.Path) -> None:
    with MultiConnector(
        {"file": (FileConnector(str(tmp_path / "f")), Policy(subset_tags=["a"]))}
    ) as original:
        key = original.put(b"payload", subset_tags=["a"])
        config = json.loads(json.dumps(original.config()))
        with MultiConnector.from_config(config) as clone:
            assert clone.get(key) == b"payload"
            assert clone.connectors["file"][1] == Policy(subset_tags=["a"])


def test_from_config_makes_other_hosts_dormant_and_keeps_them(hostname: str) -> None:
    config: dict[str, Any] = {
        "here": (
            "proxystore.connectors.local.LocalConnector",
            {},
            Policy(host_pattern="node-.*").as_dict(),
        ),
        "there": (
            "no.such.module.Connector",
            {"x": 1},
            Policy(host_pattern="login.*").as_dict(),
        ),
    }
    with MultiConnector.from_config(config) as connector:
        assert list(connector.connectors) == ["here"]
        assert list(connector.dormant_connectors) == ["there"]
        assert connector.config()["there"] == config["there"]


def test_from_config_with_unimportable_class() -> None:
    config: dict[str, Any] = {
        "bad": ("no.such.module.Connector", {}, Policy().as_dict()),
    }
    with pytest.raises(MultiConnectorError, match=r"no\.such\.module\.Connector"):
        MultiConnector.from_config(config)


def test_multikey_is_small_plain_and_picklable() -> None:
    key = MultiKey("local", LocalKey("0" * 36))
    assert pickle.loads(pickle.dumps(key)) == key
    assert len(pickle.dumps(key)) < 250
    key2 = MultiKey("file", FileKey("abc"))
    assert pickle.loads(pickle.dumps(key2)).connector_key == FileKey("abc")


def test_close_closes_all_even_after_a_failure(tmp_path: pathlib.Path) -> None:
    class Failing(LocalConnector):
        def close(self) -> None:
            raise RuntimeError("boom")

    store = tmp_path / "f"
    connector = MultiConnector(
        {
            "failing": (Failing(), Policy(priority=1)),
            "file": (FileConnector(str(store)), Policy()),
        }
    )
    with pytest.raises(RuntimeError, match="boom"):
        connector.close()
    assert not store.exists()


def test_repr_names_connectors() -> None:
    connector = MultiConnector({"a": (LocalConnector(), Policy())})
    assert repr(connector) == "MultiConnector(a=LocalConnector())"
