"""The reference keyword name of ``deserialize`` is accepted."""

from __future__ import annotations

from proxystore.serialize import deserialize, serialize


def test_deserialize_takes_buffer_keyword() -> None:
    assert deserialize(buffer=serialize([1, "x"])) == [1, "x"]
