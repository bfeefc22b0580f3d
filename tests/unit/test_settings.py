"""Settings.from_env (SPEC §5): defaults, parsing, errors that name the variable, hidden secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamagg.errors import SettingsError
from streamagg.kafka_clients import replication_factor
from streamagg.settings import NUMBER_RANGES, Settings, env_name


def from_env(**env: str) -> Settings:
    return Settings.from_env({f"STREAMAGG_{name}": value for name, value in env.items()})


def refused(variable: str, **env: str) -> str:
    with pytest.raises(SettingsError) as caught:
        from_env(**env)
    assert isinstance(caught.value, ValueError)
    assert f"STREAMAGG_{variable}" in str(caught.value), str(caught.value)
    return str(caught.value)


def test_defaults() -> None:
    s = Settings.from_env({})
    assert s.broker == "kafka://localhost:9092"
    assert s.broker_hosts == ["localhost:9092"]
    assert s.web_port == 6066
    assert s.topic == "cdr-events"
    assert s.dlq_topic == "cdr-events-dlq"
    assert s.dids_topic == "streamagg-dids"
    assert s.retention_days == 400
    assert s.dedup_hours == 48
    assert s.tokens_file is None
    assert s.security_protocol == "PLAINTEXT"


def test_values_from_the_environment() -> None:
    s = from_env(
        BROKER="kafka://k1:9092;k2:9093",
        WEB_PORT="7000",
        DATA_DIR="/var/lib/streamagg",
        TOPIC="cdrs",
        TOKENS_FILE="/etc/streamagg/tokens.json",
        RATECENTERS="/data/a:/data/b",
        RETENTION_DAYS="30",
        DEDUP_HOURS="12",
        PARTITIONS="16",
    )
    assert s.broker_hosts == ["k1:9092", "k2:9093"]
    assert s.bootstrap_servers == "k1:9092,k2:9093"
    assert s.web_port == 7000
    assert s.data_dir == Path("/var/lib/streamagg")
    assert s.topic == "cdrs"
    assert s.tokens_file == Path("/etc/streamagg/tokens.json")
    assert s.ratecenters == "/data/a:/data/b"
    assert (s.retention_days, s.dedup_hours, s.partitions) == (30, 12, 16)


def test_the_process_environment_is_the_default_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMAGG_WEB_PORT", "7123")
    monkeypatch.setenv("STREAMAGG_TOPIC", "from-os")
    s = Settings.from_env()
    assert (s.web_port, s.topic) == (7123, "from-os")


def test_an_empty_variable_means_the_default() -> None:
    assert from_env(WEB_PORT="", TOPIC="").web_port == 6066


def test_broker_lists_with_commas_and_without_scheme() -> None:
    assert from_env(BROKER="a:1, b:2").broker_hosts == ["a:1", "b:2"]
    assert from_env(BROKER="kafka://a:1,kafka://b:2").bootstrap_servers == "a:1,b:2"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WEB_PORT", "http"),
        ("WEB_PORT", "6066.5"),
        ("RETENTION_DAYS", "400d"),
        ("DEDUP_HOURS", "two days"),
        ("PARTITIONS", "8 partitions"),
        ("STANDBY_REPLICAS", "one"),
        ("BATCH_MAX_CDRS", "4k"),
    ],
)
def test_non_integers_are_refused_by_name(variable: str, value: str) -> None:
    message = refused(variable, **{variable: value})
    assert value in message


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WEB_PORT", "0"),
        ("WEB_PORT", "-1"),
        ("PARTITIONS", "0"),
        ("RETENTION_DAYS", "0"),
        ("RETENTION_DAYS", "-400"),
        ("DEDUP_HOURS", "0"),
        ("STANDBY_REPLICAS", "-1"),
    ],
)
def test_out_of_range_integers_are_refused_by_name(variable: str, value: str) -> None:
    refused(variable, **{variable: value})


def test_zero_standby_replicas_is_fine() -> None:
    assert from_env(STANDBY_REPLICAS="0").standby_replicas == 0


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WEB_PORT", "70000"),
        ("INGEST_MAX_RECORDS", "0"),
        ("BATCH_MAX_CDRS", "0"),
        ("FUTURE_TOLERANCE_HOURS", "-1"),
        ("LOG_LEVEL", "verbose"),
    ],
)
def test_every_unusable_value_is_refused_by_name(variable: str, value: str) -> None:
    refused(variable, **{variable: value})


def test_broker_without_a_host_is_refused() -> None:
    refused("BROKER", BROKER="kafka://")
    refused("BROKER", BROKER=" ; ")


def test_security_settings_are_checked() -> None:
    message = refused("SECURITY_PROTOCOL", SECURITY_PROTOCOL="TLS")
    assert "SASL_SSL" in message
    refused("SASL_MECHANISM", SECURITY_PROTOCOL="SASL_PLAINTEXT")
    s = from_env(
        SECURITY_PROTOCOL="SASL_PLAINTEXT",
        SASL_MECHANISM="SCRAM-SHA-256",
        SASL_USERNAME="svc",
        SASL_PASSWORD="hunter2-very-secret",
    )
    options = s.kafka_client_options()
    assert options["security_protocol"] == "SASL_PLAINTEXT"
    assert options["sasl_mechanism"] == "SCRAM-SHA-256"
    assert options["sasl_plain_username"] == "svc"
    assert options["sasl_plain_password"] == "hunter2-very-secret"


def test_secrets_are_hidden_in_repr() -> None:
    s = from_env(
        SECURITY_PROTOCOL="SASL_SSL",
        SASL_MECHANISM="PLAIN",
        SASL_USERNAME="svc",
        SASL_PASSWORD="hunter2-very-secret",
    )
    for text in (repr(s), str(s), f"{s}", f"{s!r}"):
        assert "hunter2-very-secret" not in text
        assert "sasl_password='***'" in text
        assert "sasl_username='svc'" in text
    assert "sasl_password=''" in repr(Settings.from_env({}))


def test_errors_do_not_echo_the_password() -> None:
    with pytest.raises(SettingsError) as caught:
        from_env(SECURITY_PROTOCOL="SASL_TLS", SASL_PASSWORD="hunter2-very-secret")
    assert "hunter2-very-secret" not in str(caught.value)


def test_settings_are_frozen() -> None:
    s = Settings.from_env({})
    with pytest.raises(AttributeError):
        s.web_port = 1  # type: ignore[misc]


def test_ingest_mode_auto_uses_a_child_process_when_there_are_two_cpus(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import os

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert Settings().ingest_in_child_process
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert not Settings().ingest_in_child_process
    assert Settings(ingest_mode="process").ingest_in_child_process
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert not Settings(ingest_mode="inline").ingest_in_child_process


@pytest.mark.parametrize(
    ("configured", "brokers", "expected"), [(3, 1, 1), (3, 5, 3), (2, 3, 2), (3, 0, 1)]
)
def test_every_topic_gets_the_configured_replication_capped_at_the_brokers(
    configured: int, brokers: int, expected: int
) -> None:
    settings = Settings(replication_factor=configured)
    assert replication_factor(settings, brokers) == expected


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RETENTION_DAYS", "800000"),  # (every query's range check overflowed: a 500)
        ("RETENTION_DAYS", "0"),
        ("DEDUP_HOURS", "99999999999999999999"),
        ("FUTURE_TOLERANCE_HOURS", "-1"),
        ("INGEST_LINGER_MS", "99999999999999999999"),  # (a sleep past the loop's timer)
        ("PARTITIONS", "1000000"),
        ("WEB_IDLE_SECONDS", "1000000000"),
        ("WEB_PORT", "65536"),
        ("STANDBY_REPLICAS", "-1"),
    ],
)
def test_a_number_out_of_its_range_is_refused_naming_the_range(variable: str, value: str) -> None:
    message = refused(variable, **{variable: value})
    assert f"STREAMAGG_{variable}={value} is out of range: from " in message


def test_the_ends_of_each_range_are_accepted() -> None:
    for name, (low, high) in NUMBER_RANGES.items():
        variable = env_name(name).removeprefix("STREAMAGG_")
        for value in (low, high):
            assert getattr(from_env(**{variable: str(value)}), name) == value
