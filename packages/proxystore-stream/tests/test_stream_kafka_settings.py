"""Kafka shim settings: SASL/TLS pass through, secrets resolved by reference.

The clients built here point at a closed port, and librdkafka tries to connect at
once. Its log lines ("Connect to ipv4#127.0.0.1:9 failed") would go straight to
the process's stderr, from librdkafka's own threads, and interleave with the test
run's output; the ``logger`` setting hands them to a Python logger instead, where
pytest captures them (and shows them with a failing test).
"""

from __future__ import annotations

import logging
import time

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")

from proxystore.stream.shims.kafka import (  # noqa: E402
    KafkaPublisher,
    KafkaSubscriber,
    kafka_client_config,
)
from proxystore.utils.credentials import CredentialNotFoundError  # noqa: E402

#: librdkafka's log lines, routed through Python logging (captured by pytest).
LIBRDKAFKA = logging.getLogger("tests.stream.librdkafka")
SASL = {
    "bootstrap.servers": "127.0.0.1:9",  # nothing listens: connecting fails at once
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
    quiet = {**SASL, "logger": LIBRDKAFKA}
    with KafkaPublisher.from_settings(quiet, flush_timeout=0.1) as publisher:
        assert isinstance(publisher.client, confluent_kafka.Producer)
    subscriber = KafkaSubscriber.from_settings(
        {**quiet, "group.id": "g"}, ["topic"], timeout=0.1
    )
    with subscriber:
        assert isinstance(subscriber.client, confluent_kafka.Consumer)
    # librdkafka checks the settings it is given (here: an unknown mechanism).
    with pytest.raises(confluent_kafka.KafkaException, match="Unsupported SASL"):
        KafkaPublisher.from_settings({**quiet, "sasl.mechanisms": "NOPE"})


def test_client_logs_reach_the_logger_not_stderr(
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("PS_T_KAFKA_USER", "alice")
    monkeypatch.setenv("PS_T_KAFKA_PASSWORD", "pw-123")
    # Records stay with caplog's handler: another test of the same worker may have
    # given the root logger a stderr handler (a CLI's logging set-up), which is not
    # what this test is about.
    monkeypatch.setattr(LIBRDKAFKA, "propagate", False)
    LIBRDKAFKA.addHandler(caplog.handler)
    caplog.set_level(logging.WARNING, logger=LIBRDKAFKA.name)
    try:
        with KafkaPublisher.from_settings(
            {**SASL, "logger": LIBRDKAFKA}, flush_timeout=0.1
        ) as publisher:
            # The failed connection is logged by librdkafka's broker thread; with
            # a logger set, poll() delivers the line to it.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not caplog.records:
                publisher.client.poll(0.05)
    finally:
        LIBRDKAFKA.removeHandler(caplog.handler)
    assert any("127.0.0.1:9" in r.getMessage() for r in caplog.records)
    assert "127.0.0.1:9" not in capfd.readouterr().err
