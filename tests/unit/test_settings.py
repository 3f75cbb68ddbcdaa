from __future__ import annotations

from pathlib import Path

import pytest

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
