"""`proxystore.utils` as the reference offers it (issue 14, item 8)."""

from __future__ import annotations

import io
import pathlib

import pydantic
import pytest

import proxystore.utils as utils
from proxystore.utils import config


def test_reference_helpers_are_reexported() -> None:
    assert utils.bytes_to_readable(2048) == "2.048 KB"
    assert utils.readable_to_bytes("2 KB") == 2000
    assert [bytes(c) for c in utils.chunk_bytes(b"abcde", 2)] == [b"ab", b"cd", b"e"]
    assert utils.hostname()
    assert utils.home_dir()
    assert utils.get_object_path(pathlib.Path) == "pathlib.Path"
    assert utils.import_from_path("pathlib.Path") is pathlib.Path


class Settings(pydantic.BaseModel):
    name: str
    port: int = 6379
    tags: list[str] = []
    note: str | None = None


def test_pydantic_models_dump_and_load() -> None:
    model = Settings(name="cache", tags=["a", "b"])
    text = config.dumps(model)
    assert "note" not in text  # None is left out, like the reference
    assert config.loads(Settings, text) == model
    buffer = io.BytesIO()
    config.dump(model, buffer)
    buffer.seek(0)
    assert config.load(Settings, buffer) == model


def test_pydantic_validation_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="port"):
        config.loads(Settings, 'name = "x"\nport = "not a port"\n')
