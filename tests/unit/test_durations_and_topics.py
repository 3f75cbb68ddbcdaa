from __future__ import annotations

import pytest

from streams.durations import UNLIMITED, DurationError, describe_retention, parse_retention
from streams.kafka.admin import pipeline_topics, topic_configs
from streams.kafka.topics import Topics
from streams.replay.namespaces import Namespace
from streams.settings import Settings, SettingsError


@pytest.mark.parametrize(
    ("text", "ms"),
    [("unlimited", UNLIMITED), ("-1", UNLIMITED), ("Forever", UNLIMITED), ("7d", 604_800_000), ("36h", 129_600_000)],
)
def test_retentions(text: str, ms: int) -> None:
    assert parse_retention(text) == ms


@pytest.mark.parametrize("text", ["", "soon", "0", "-2", "7 days"])
def test_bad_retentions(text: str) -> None:
    with pytest.raises(DurationError, match="retention"):
        parse_retention(text)


@pytest.mark.parametrize(
    ("ms", "text"),
    [(UNLIMITED, "unlimited"), (604_800_000, "7d"), (129_600_000, "36h"), (5_400_000, "90m"), (1500, "1.5s")],
)
def test_retention_for_people(ms: int, text: str) -> None:
    assert describe_retention(ms) == text


def test_source_topics_keep_old_event_times_unless_the_operator_bounds_them() -> None:
    settings = Settings(topic_prefix="pf", app_id="app")
    topics = Topics("pf")
    configs = {name: topic_configs(settings, name) for name in pipeline_topics(settings)}
    for source in topics.sources:
        assert configs[source] == {"retention.ms": "-1"}
    assert configs[topics.by_hub("app")] == {"retention.ms": "-1"}  # internal: purged once committed
    assert configs[topics.throughput] == {"cleanup.policy": "compact"}
    assert configs[topics.deadletter] == {"max.message.bytes": "8454144", "message.timestamp.type": "LogAppendTime"}
    bounded = Settings.from_env({"PARCELFLOW_SOURCE_RETENTION": "30d", "PARCELFLOW_TOPIC_PREFIX": "pf"})
    assert topic_configs(bounded, topics.source(next(iter(topics.sources.values())))) == {"retention.ms": "2592000000"}
    assert topic_configs(bounded, topics.by_hub(bounded.app_id)) == {"retention.ms": "-1"}


def test_replay_namespaces_never_lose_history_to_time_retention() -> None:
    bounded = Settings(source_retention_ms=604_800_000)
    replay = Namespace("last-month").settings(bounded, partitions=6)
    for name in Topics(replay.topic_prefix).sources:
        assert topic_configs(replay, name) == {"retention.ms": "-1"}


def test_retention_settings_are_checked() -> None:
    assert Settings.from_env({}).source_retention_ms == UNLIMITED
    assert Settings.from_env({"PARCELFLOW_PURGE_INTERVAL_SECONDS": "5"}).purge_interval_seconds == 5
    with pytest.raises(SettingsError, match="PARCELFLOW_SOURCE_RETENTION"):
        Settings.from_env({"PARCELFLOW_SOURCE_RETENTION": "a week"})
