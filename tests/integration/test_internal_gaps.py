"""Internal records the consumer skipped (Faust can, around a rebalance, and commit past them) are read again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from streams.aggregate.observation import join_batch
from streams.ingest.intake import Admitted, admit
from streams.kafka.clients import partitions_of
from streams.kafka.codec import Codec
from streams.kafka.topics import Topics, first_stage_partition
from streams.settings import Settings
from tests.support.broker import unique_name
from tests.support.flows import closing_rows, make_flows
from tests.support.pipeline import assert_windows_equal_truth, offsets, publish_rows, wait_consumed
from tests.support.workers import WorkerProcess, scrape, total, wait_for

pytestmark = pytest.mark.broker

START_MS = 1_795_000_000_000 - 1_795_000_000_000 % 3_600_000
SCANS_PER_RECORD = 100


async def _forward_by_hand(
    bootstrap: str, prefix: str, partitions: int, since: dict[TopicPartition, int]
) -> dict[TopicPartition, int]:
    """Do what the intake does with the source records after ``since``, and commit the intake past them.

    Returns the offset each by-partition partition had before these records.
    """
    topics = Topics(prefix)
    codec, now_ms = Codec(), int(time.time() * 1000)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await consumer.start()
    await producer.start()
    try:
        by_partition = topics.by_partition(prefix)
        before: dict[TopicPartition, int] = await consumer.end_offsets(await partitions_of(consumer, [by_partition]))
        sources = await partitions_of(consumer, list(topics.sources))
        ends = await consumer.end_offsets(sources)
        consumer.assign(sources)
        for tp in sources:
            consumer.seek(tp, since[tp])
        scans: dict[int, list[bytes]] = {}
        while [tp for tp in sources if await consumer.position(tp) < ends[tp]]:
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                for record in records:
                    admitted = admit(codec, record.value, topics.sources[tp.topic], tp.partition, record.offset, now_ms)
                    if isinstance(admitted, Admitted) and admitted.observation is not None:
                        target = first_stage_partition(tp.partition, partitions)
                        scans.setdefault(target, []).append(admitted.observation)
        for partition, encoded in scans.items():  # in source order, as the intake sends them
            for start in range(0, len(encoded), SCANS_PER_RECORD):
                await producer.send_and_wait(
                    by_partition, join_batch(encoded[start : start + SCANS_PER_RECORD]), partition=partition
                )
        intake = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=Topics.intake_group(prefix))
        await intake.start()
        try:
            intake.assign(list(ends))  # (commits need an assignment; the group has no member now)
            await intake.commit({tp: OffsetAndMetadata(end, "") for tp, end in ends.items()})
        finally:
            await intake.stop()
        return before
    finally:
        await producer.stop()
        await consumer.stop()


async def _skip_one(bootstrap: str, group: str, before: dict[TopicPartition, int]) -> int:
    """Commit the aggregation group one record past where it stood, as Faust does when it skips records."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(list(before))
        skipped = {tp: OffsetAndMetadata(offset + 1, "") for tp, offset in before.items() if ends[tp] > offset + 1}
        consumer.assign(list(skipped))
        await consumer.commit(skipped)
        return len(skipped)
    finally:
        await consumer.stop()


def test_records_skipped_and_committed_past_are_read_again_before_anything_after_them(
    kafka_bootstrap: str, start_worker: Callable[..., WorkerProcess]
) -> None:
    prefix = unique_name("gaps")
    settings = Settings(bootstrap=kafka_bootstrap, topic_prefix=prefix, app_id=prefix, partitions=3)
    flows = make_flows(seed=41, parcels=3000, start_ms=START_MS, disorder=0.02, late=0.0)
    rows = flows.rows + closing_rows(flows)
    half = len(rows) // 2
    publish_rows(settings, rows[:half])
    worker = start_worker(prefix)
    wait_consumed(kafka_bootstrap, prefix, worker)
    worker.stop()

    _low, since = offsets(kafka_bootstrap, list(Topics(prefix).sources))
    publish_rows(settings, rows[half:])
    before = asyncio.run(_forward_by_hand(kafka_bootstrap, prefix, settings.partitions, since))
    # The first new record of each by-partition partition is skipped and committed past: without reading
    # it again its scans are lost, and applying the later ones first would make it look re-delivered.
    assert asyncio.run(_skip_one(kafka_bootstrap, prefix, before)) > 0

    worker = start_worker(prefix)
    wait_for(
        lambda: total(scrape(worker.metrics_port), "parcelflow_internal_gaps_total") > 0,
        timeout=120,
        what="the worker to notice the skipped records",
        proc=worker,
    )
    wait_consumed(kafka_bootstrap, prefix, worker)

    def exact() -> bool:  # the records read again may still be on their way when the group caught up
        try:
            assert_windows_equal_truth(kafka_bootstrap, Topics(prefix).throughput, flows)
        except AssertionError:
            return False
        return True

    deadline = time.monotonic() + 60
    while not exact() and time.monotonic() < deadline:
        time.sleep(1)
    assert_windows_equal_truth(kafka_bootstrap, Topics(prefix).throughput, flows)  # the diff, if still wrong
    assert "reading them again" in worker.log()
