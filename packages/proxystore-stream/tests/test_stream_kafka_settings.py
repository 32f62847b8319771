"""Kafka shim settings: SASL/TLS pass through, secrets resolved by reference."""

from __future__ import annotations

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")

from proxystore.stream.shims.kafka import (  # noqa: E402
    KafkaPublisher,
    KafkaSubscriber,
    kafka_client_config,
)
from proxystore.utils.credentials import CredentialNotFoundError  # noqa: E402

SASL = {
    "bootstrap.servers": "127.0.0.1:9",  # never contacted by these tests
    "security.protocol": "SASL_PLAINTEXT",
    "sasl.mechanisms": "SCRAM-SHA-256",
    "sasl.username_env": "PS_T_KAFKA_USER",
    "sasl.password_env": "PS_T_KAFKA_PASSWORD",
    "socket.timeout.ms": 2000,
}


def test_references_resolve_and_other_settings_pass_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PS_T_KAFKA_USER", "alice")
    monkeypatch.setenv("PS_T_KAFKA_PASSWORD", "pw-123")
    config = kafka_client_config({**SASL, "ssl.key.password": "direct"})
    assert config == {
        "bootstrap.servers": "127.0.0.1:9",
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "SCRAM-SHA-256",
        "sasl.username": "alice",
        "sasl.password": "pw-123",
        "ssl.key.password": "direct",
        "socket.timeout.ms": 2000,
    }
    monkeypatch.delenv("PS_T_KAFKA_PASSWORD")
    with pytest.raises(CredentialNotFoundError, match="PS_T_KAFKA_PASSWORD"):
        kafka_client_config(SASL)


def test_from_settings_builds_real_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PS_T_KAFKA_USER", "alice")
    monkeypatch.setenv("PS_T_KAFKA_PASSWORD", "pw-123")
    publisher = KafkaPublisher.from_settings(SASL, flush_timeout=0.1)
    assert isinstance(publisher.client, confluent_kafka.Producer)
    subscriber = KafkaSubscriber.from_settings(
        {**SASL, "group.id": "g"}, ["topic"], timeout=0.1
    )
    with subscriber:
        assert isinstance(subscriber.client, confluent_kafka.Consumer)
    # librdkafka checks the settings it is given (here: an unknown mechanism).
    with pytest.raises(confluent_kafka.KafkaException, match="Unsupported SASL"):
        KafkaPublisher.from_settings({**SASL, "sasl.mechanisms": "NOPE"})
