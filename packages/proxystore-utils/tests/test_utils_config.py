"""TOML dump/load of configuration dataclasses, with field-naming validation."""

from __future__ import annotations

import dataclasses
import enum
import io
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pytest

from proxystore.utils import config


class Mode(enum.Enum):
    FAST = "fast"
    SAFE = "safe"


@dataclasses.dataclass(frozen=True)
class Connector:
    kind: Literal["file", "redis"]
    options: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class StoreConfig:
    name: str
    connector: Connector
    cache_size: int = 16
    ratio: float = 0.5
    metrics: bool = False
    mode: Mode = Mode.FAST
    root: pathlib.Path | None = None
    tags: tuple[str, ...] = ()
    pair: tuple[int, str] = (0, "")
    limits: Mapping[str, int] = dataclasses.field(default_factory=dict)
    hosts: Sequence[str] = ()
    ids: frozenset[int] = frozenset()
    port: int | None = None


FULL = StoreConfig(
    name="store",
    connector=Connector("redis", {"host": "h", "port": 6379, "nested": {"a": [1, 2]}}),
    cache_size=4,
    ratio=2.0,
    metrics=True,
    mode=Mode.SAFE,
    root=pathlib.Path("/tmp/x"),
    tags=("a", "b"),
    pair=(1, "x"),
    limits={"a": 1},
    hosts=("h1", "h2"),
    ids=frozenset({3, 1}),
    port=5,
)


def test_roundtrip_string_and_file() -> None:
    text = config.dumps(FULL)
    assert config.loads(StoreConfig, text) == FULL
    buffer = io.BytesIO()
    config.dump(FULL, buffer)
    buffer.seek(0)
    assert config.load(StoreConfig, buffer) == FULL


def test_none_fields_are_excluded_and_defaulted() -> None:
    minimal = StoreConfig(name="s", connector=Connector("file"))
    text = config.dumps(minimal)
    assert "port" not in text
    assert "root" not in text
    assert config.loads(StoreConfig, text) == minimal


def test_none_fields_without_exclusion() -> None:
    minimal = StoreConfig(name="s", connector=Connector("file"))
    with pytest.raises(ValueError, match=r"'StoreConfig\.root' is None"):
        config.dumps(minimal, exclude_none=False)


def test_loaded_values_get_annotated_types() -> None:
    text = 'name = "s"\nratio = 3\ntags = ["x"]\n[connector]\nkind = "file"\n'
    loaded = config.loads(StoreConfig, text)
    assert loaded.ratio == 3.0
    assert isinstance(loaded.ratio, float)
    assert loaded.tags == ("x",)


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ('name = "s"', ValueError, r"Missing required field 'StoreConfig\.connector'"),
        (
            'name = "s"\nextra = 1\nother = 2\n[connector]\nkind = "file"',
            ValueError,
            r"Unknown field\(s\) for 'StoreConfig'.*'extra', 'other'",
        ),
        (
            'name = 1\n[connector]\nkind = "file"',
            TypeError,
            r"'StoreConfig\.name': expected str, got int 1",
        ),
        (
            'name = "s"\ncache_size = true\n[connector]\nkind = "file"',
            TypeError,
            r"'StoreConfig\.cache_size': expected int, got bool",
        ),
        (
            'name = "s"\n[connector]\nkind = "kafka"',
            ValueError,
            r"'StoreConfig\.connector\.kind': expected one of \['file', 'redis'\]",
        ),
        (
            'name = "s"\nmode = "turbo"\n[connector]\nkind = "file"',
            ValueError,
            r"'StoreConfig\.mode': expected one of \['fast', 'safe'\]",
        ),
        (
            'name = "s"\ntags = ["a", 2]\n[connector]\nkind = "file"',
            TypeError,
            r"'StoreConfig\.tags\[1\]': expected str",
        ),
        (
            'name = "s"\npair = [1]\n[connector]\nkind = "file"',
            ValueError,
            r"'StoreConfig\.pair': expected 2 items, got 1",
        ),
        (
            'name = "s"\nport = "x"\n[connector]\nkind = "file"',
            TypeError,
            r"'StoreConfig\.port': expected int \| NoneType",
        ),
        (
            'name = "s"\nconnector = 3',
            TypeError,
            r"'StoreConfig\.connector' must be a table",
        ),
        (
            'name = "s"\nlimits = {a = "x"}\n[connector]\nkind = "file"',
            TypeError,
            r"'StoreConfig\.limits\['a'\]': expected int",
        ),
        ("name = ", ValueError, r"Invalid TOML for StoreConfig"),
    ],
)
def test_validation_names_the_field(
    text: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        config.loads(StoreConfig, text)


def test_non_dataclass_arguments() -> None:
    with pytest.raises(TypeError, match="dataclass instance"):
        config.dumps(StoreConfig)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dataclass type"):
        config.loads(dict, "")  # type: ignore[type-var]


def test_unrepresentable_values() -> None:
    @dataclasses.dataclass
    class Odd:
        value: Any
        table: Any = None

    with pytest.raises(TypeError, match=r"'Odd\.value' holds a complex"):
        config.dumps(Odd(1j))
    with pytest.raises(TypeError, match=r"'Odd\.table' has a non-string key 1"):
        config.dumps(Odd(1, {1: 2}))


def test_non_utf8_file() -> None:
    with pytest.raises(ValueError, match="not UTF-8"):
        config.load(StoreConfig, io.BytesIO(b"\xff\xfe"))
