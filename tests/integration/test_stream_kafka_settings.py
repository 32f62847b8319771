"""Kafka shims built from settings (secrets by reference) against a real broker."""

from __future__ import annotations

import pathlib
import uuid

import pytest

from tests.integration.harness import ServerAddress


def test_from_settings_round_trip_with_credential_reference(
    kafka_server: ServerAddress,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from proxystore.stream.shims.kafka import KafkaPublisher, KafkaSubscriber

    # The broker runs without TLS/SASL here; the reference must still resolve
    # (a plaintext broker ignores the key password librdkafka is handed).
    monkeypatch.setenv("PROXYSTORE_HOME", str(tmp_path))
    creds = tmp_path / "credentials.toml"
    creds.write_text('kafka-key-password = "unused-but-resolved"\n')
    creds.chmod(0o600)
    topic = f"settings-{uuid.uuid4().hex[:8]}"
    settings = {
        "bootstrap.servers": f"{kafka_server.host}:{kafka_server.port}",
        "ssl.key.password_credential": "kafka-key-password",
    }
    publisher = KafkaPublisher.from_settings(settings)
    publisher.send_message(topic, b"by reference")
    publisher.close()
    consumer_settings = {
        **settings,
        "group.id": topic,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
    }
    with KafkaSubscriber.from_settings(consumer_settings, [topic], timeout=30) as sub:
        assert sub.next_message() == b"by reference"
