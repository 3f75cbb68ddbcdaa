from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pytest

from streams.durations import UNLIMITED
from streams.kafka.topics import Source, Topics
from streams.settings import Settings, SettingsError


def test_settings_come_from_parcelflow_variables_only() -> None:
    env = {
        "PARCELFLOW_BOOTSTRAP": "127.0.0.1:1234",
        "PARCELFLOW_TOPIC_PREFIX": "replay1",
        "PARCELFLOW_METRICS_PORT": "9200",
        "PARCELFLOW_DATA_DIR": "/var/lib/pf",
        "KAFKA_BOOTSTRAP": "x:1",
    }
    settings = Settings.from_env(env)
    assert settings.bootstrap == "127.0.0.1:1234"
    assert settings.topic_prefix == "replay1"
    assert settings.metrics_port == 9200
    assert settings.data_dir == Path("/var/lib/pf")
    assert Settings.from_env({}) == Settings()


def test_bad_numbers_are_named() -> None:
    with pytest.raises(SettingsError, match="PARCELFLOW_METRICS_PORT"):
        Settings.from_env({"PARCELFLOW_METRICS_PORT": "ninety"})


def test_the_event_loop_is_asyncio_unless_uvloop_is_asked_for() -> None:
    assert Settings.from_env({}).event_loop == "asyncio"
    assert Settings.from_env({"PARCELFLOW_EVENT_LOOP": "uvloop"}).event_loop == "uvloop"
    with pytest.raises(SettingsError, match="PARCELFLOW_EVENT_LOOP must be one of asyncio, uvloop"):
        Settings.from_env({"PARCELFLOW_EVENT_LOOP": "trio"})


def test_overrides_ignore_none() -> None:
    assert Settings().with_overrides(bootstrap=None, topic_prefix="x").topic_prefix == "x"


def test_topic_names_follow_the_prefix() -> None:
    topics = Topics("pf")
    assert topics.source(Source.SORTER) == "pf.scans.sorter"
    assert set(topics.sources) == {"pf.scans.flight", "pf.scans.sorter", "pf.scans.truck"}
    assert topics.deadletter == "pf.deadletter"


@pytest.mark.parametrize(
    "servers", ["127.0.0.1:19092", "kafka", "a:9092, b:9093", "[::1]:9092", "::1", "[fe80::1]", "kafka:0"]
)
def test_bootstrap_servers_the_kafka_client_reads_are_taken(servers: str) -> None:
    assert Settings.from_env({"PARCELFLOW_BOOTSTRAP": servers}).bootstrap == servers


@pytest.mark.parametrize("servers", ["127.0.0.1:kafka", "a:9092,b:99999", "[::1]9092", "[::1", "host:-1", "host:"])
def test_a_bootstrap_port_the_kafka_client_cannot_use_is_named(servers: str) -> None:
    with pytest.raises(SettingsError, match="PARCELFLOW_BOOTSTRAP"):
        Settings.from_env({"PARCELFLOW_BOOTSTRAP": servers})


NOT_DEFAULT: dict[str, Any] = {
    "bootstrap": "kafka-1:9092,[::1]:9093",
    "topic_prefix": "replay.night",
    "app_id": "replay-night",
    "metrics_port": 9321,
    "metrics_host": "0.0.0.0",
    "partitions": 12,
    "replication": 3,
    "data_dir": Path("state/worker-9321"),
    "namespace": "night",
    "log_level": "debug",
    "grace_seconds": 300,
    "retention_seconds": 86_400,
    "session_timeout_seconds": 45,
    "targets_dir": Path("/etc/prometheus/targets"),
    "store": "memory://",
    "source_retention_ms": 30 * 86_400_000,
    "purge_interval_seconds": 5,
    "max_future_seconds": 60,
    "schema_registry_url": "http://127.0.0.1:18081/apis/ccompat/v7",
    "event_loop": "uvloop",
    "max_ahead_scans": 25_000,
}
"""A value other than the default for every field: a field added to Settings must be added here."""


def test_the_round_trip_table_covers_every_field_with_a_value_other_than_the_default() -> None:
    assert list(NOT_DEFAULT) == [f.name for f in fields(Settings)]
    assert [name for name, value in NOT_DEFAULT.items() if getattr(Settings(), name) == value] == []


@pytest.mark.parametrize("name", list(NOT_DEFAULT))
def test_to_env_reads_back_as_the_same_settings_field_by_field(name: str) -> None:
    settings = replace(Settings(), **{name: NOT_DEFAULT[name]})
    assert Settings.from_env(settings.to_env()) == settings


def test_to_env_reads_back_as_the_same_settings_all_fields_at_once() -> None:
    settings = Settings(**NOT_DEFAULT)
    env = settings.to_env()
    assert len(env) == len(fields(Settings)) and all(k.startswith("PARCELFLOW_") for k in env)
    assert Settings.from_env(env) == settings
    assert Settings.from_env(Settings().to_env()) == Settings()


@pytest.mark.parametrize("retention_ms", [UNLIMITED, 1000, 90_000, 7 * 86_400_000, 1_234_567_891_000])
def test_every_whole_second_retention_reads_back(retention_ms: int) -> None:
    settings = Settings(source_retention_ms=retention_ms)
    assert Settings.from_env(settings.to_env()) == settings


@pytest.mark.parametrize(
    "changes",
    [{"topic_prefix": ""}, {"source_retention_ms": 1500}, {"schema_registry_url": "http://registry/"}],
)
def test_a_value_no_variable_can_express_is_refused_not_changed(changes: dict[str, Any]) -> None:
    with pytest.raises(SettingsError):
        replace(Settings(), **changes).to_env()
