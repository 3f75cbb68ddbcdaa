"""Old event times never lose data: the broker enforces time retention every second here."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streams.durations import UNLIMITED
from streams.kafka.admin import ensure_topics, topic_retentions
from streams.kafka.topics import Topics
from streams.settings import Settings
from tests.support.broker import RETENTION_CHECK_MS, days_ago_ms, unique_name
from tests.support.flows import closing_rows, make_flows
from tests.support.pipeline import assert_windows_equal_truth, offsets, publish_rows, wait_consumed
from tests.support.workers import WorkerProcess, cli, wait_for

pytestmark = pytest.mark.broker

WEEK_MS = 7 * 86_400_000


async def _committed(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {tp: meta.offset for tp, meta in (await admin.list_consumer_group_offsets(group)).items()}
    finally:
        await admin.close()


def outlive_several_checks() -> None:
    """Sleep through several of the broker's retention checks (nothing to poll: deletion is what must not happen)."""
    time.sleep(5 * RETENTION_CHECK_MS / 1000)


def test_scans_from_30_days_ago_are_kept_aggregated_and_by_hub_is_purged_only_when_committed(
    kafka_bootstrap: str, start_worker: Callable[..., WorkerProcess]
) -> None:
    prefix = unique_name("old")
    settings = Settings(bootstrap=kafka_bootstrap, topic_prefix=prefix, app_id=prefix, partitions=3)
    topics = Topics(prefix)
    flows = make_flows(seed=31, parcels=3000, start_ms=days_ago_ms(30), disorder=0.05, late=0.01)
    sent = publish_rows(settings, flows.rows + closing_rows(flows))

    retentions = asyncio.run(topic_retentions(settings, [*topics.sources, topics.by_hub(prefix)]))
    assert set(retentions.values()) == {UNLIMITED}, retentions
    outlive_several_checks()
    low, end = offsets(kafka_bootstrap, list(topics.sources))
    assert set(low.values()) == {0} and sum(end.values()) == sent  # every 30-day-old record is still there

    worker = start_worker(prefix)
    wait_consumed(kafka_bootstrap, prefix, worker)
    assert_windows_equal_truth(kafka_bootstrap, topics.throughput, flows)

    by_hub = [topics.by_hub(prefix)]

    def purged() -> bool:
        low, end = offsets(kafka_bootstrap, by_hub)
        return sum(end.values()) > 0 and all(low[tp] == end[tp] for tp in end)

    wait_for(purged, timeout=30, what="the worker to purge the committed by-hub records", proc=worker)
    committed = asyncio.run(_committed(kafka_bootstrap, prefix))
    low, end = offsets(kafka_bootstrap, by_hub)
    assert all(0 < low[tp] <= committed[tp] for tp in end if end[tp] > 0), (low, committed)
    outlive_several_checks()
    low, end = offsets(kafka_bootstrap, list(topics.sources))
    assert set(low.values()) == {0} and sum(end.values()) == sent


def test_a_finite_retention_is_the_operators_choice_and_publish_warns(kafka_bootstrap: str, tmp_path: Path) -> None:
    """The control: with 7 days' retention the broker does delete 30-day-old scans, and publish says so."""
    prefix = unique_name("short")
    made = cli("topics", "--bootstrap", kafka_bootstrap, "--prefix", prefix, "--retention", "7d")
    assert made.returncode == 0, made.stderr
    assert f"{prefix}.scans.sorter: created, retention 7d" in made.stderr
    assert f"{prefix}.parcelflow-worker.by-hub: created, retention unlimited" in made.stderr
    assert f"{prefix}.throughput: created, compacted" in made.stderr

    flows = make_flows(seed=32, parcels=200, start_ms=days_ago_ms(30), disorder=0.0, late=0.0)
    path = tmp_path / "old.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in flows.rows))
    published = cli("publish", str(path), "--bootstrap", kafka_bootstrap, "--prefix", prefix)
    assert published.returncode == 0, published.stderr
    assert f"events sent to {prefix}.scans.sorter are older than its retention.ms (7d)" in published.stderr

    topics = list(Topics(prefix).sources)
    wait_for(
        lambda: all(
            low == end for low, end in zip(*(d.values() for d in offsets(kafka_bootstrap, topics)), strict=True)
        ),
        timeout=30,
        what="the broker to delete the records past the 7-day retention",
    )
    assert sum(offsets(kafka_bootstrap, topics)[1].values()) == len(flows.rows)  # they were sent, then deleted


def test_an_old_by_hub_topic_gets_unlimited_retention(kafka_bootstrap: str) -> None:
    prefix = unique_name("upgrade")
    settings = Settings(bootstrap=kafka_bootstrap, topic_prefix=prefix, app_id=prefix, partitions=1)
    by_hub = Topics(prefix).by_hub(prefix)
    asyncio.run(ensure_topics(settings.with_overrides(source_retention_ms=WEEK_MS), [by_hub]))
    asyncio.run(_set_retention(kafka_bootstrap, by_hub, WEEK_MS))  # as an older version left it
    assert asyncio.run(topic_retentions(settings, [by_hub])) == {by_hub: WEEK_MS}
    asyncio.run(ensure_topics(settings))
    wait_for(  # the controller applies a config change a moment after accepting it
        lambda: asyncio.run(topic_retentions(settings, [by_hub])) == {by_hub: UNLIMITED},
        timeout=15,
        what="the by-hub topic's retention to become unlimited",
    )


async def _set_retention(bootstrap: str, topic: str, retention_ms: int) -> None:
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {"retention.ms": str(retention_ms)})]
        )
    finally:
        await admin.close()
