"""Stream events carry security settings as plain data: references, allow-lists."""

from __future__ import annotations

import warnings

import pytest

from proxystore.connectors.local import LocalConnector
from proxystore.serialize import RestrictedDeserializer
from proxystore.store import Store
from proxystore.stream.exceptions import EventDecodeError

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from proxystore.stream.events import (
        NewObjectKeyEvent,
        bytes_to_event,
        event_to_bytes,
    )


def _event(store: Store[LocalConnector]) -> NewObjectKeyEvent:
    return NewObjectKeyEvent.from_key(
        store.put([1]), evict=False, metadata={}, store_config=store.config(), topic="t"
    )


def test_signing_and_restriction_survive_the_wire(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PS_T_STREAM_KEY", "stream-key-bytes")
    with Store(
        "stream-sec",
        LocalConnector(),
        deserializer=RestrictedDeserializer(["numpy", "myapp.models"]),
        auth_key_id="env:PS_T_STREAM_KEY",
        auth_algorithm="blake3",
    ) as store:
        wire = event_to_bytes(_event(store))
        assert b"stream-key-bytes" not in wire
        decoded = bytes_to_event(wire)
        assert isinstance(decoded, NewObjectKeyEvent)
        config = decoded.store_config
        assert config.deserializer == RestrictedDeserializer(["myapp.models", "numpy"])
        assert config.auth_key_id == "env:PS_T_STREAM_KEY"
        assert config.auth_algorithm == "blake3"
        assert config == store.config()


def test_unsigned_config_keeps_the_short_form() -> None:
    with Store("stream-plain", LocalConnector()) as store:
        decoded = bytes_to_event(event_to_bytes(_event(store)))
        assert isinstance(decoded, NewObjectKeyEvent)
        assert decoded.store_config.auth_key_id is None
        assert decoded.store_config.auth_algorithm == "hmac-sha256"


def test_bad_allow_list_on_the_wire_is_a_decode_error() -> None:
    with Store(
        "stream-bad", LocalConnector(), deserializer=RestrictedDeserializer(["ok"])
    ) as store:
        wire = event_to_bytes(_event(store))
    tampered = wire.replace(b"restricted:ok", b"restricted:1x")
    assert tampered != wire
    with pytest.raises(EventDecodeError, match="dotted names"):
        bytes_to_event(tampered)
