"""The worker's agents in Faust's ``test_context()``: no broker, the memory store, the output topics faked.

``put()`` waits for each record, so every ``take_events`` batch holds one record here: batches of
several records and the read-again after a gap (it seeks the consumer) are left to the broker suite.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import faust
from prometheus_client import CollectorRegistry

from streams.aggregate.aggregator import applied_key
from streams.aggregate.observation import Observation, encode, join_batch
from streams.aggregate.partials import decode_partial
from streams.aggregate.windows import HOUR_MS, MINUTE_MS
from streams.kafka.codec import Codec
from streams.kafka.topics import Source
from streams.settings import Settings
from streams.worker.health import Health
from streams.worker.metrics import Metrics
from streams.worker.pipeline import Pipeline
from streams.worker.table_store import TableStore
from tests.support.producers import Batch, KafkaProducer, Metadata
from tests.support.scans import HOUR_T0


class Topic:
    """An output topic: records kept, each delivered at once."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    async def send(self, **record: Any) -> asyncio.Future[None]:
        self.records.append(record)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class Delivering(KafkaProducer):
    """The aiokafka producer under Faust's: changelog batches on the broker at once."""

    async def send_batch(self, batch: Batch, topic: str, *, partition: int) -> asyncio.Future[Metadata]:
        delivered = await super().send_batch(batch, topic, partition=partition)
        delivered.set_result(Metadata(len(self.sent)))
        return delivered


class Producer:
    def __init__(self) -> None:
        self._producer = Delivering(1000)


def pipeline(tmp_path: Path) -> Pipeline:
    settings = Settings(bootstrap="127.0.0.1:9", topic_prefix="p", app_id="app", partitions=4, grace_seconds=0)
    app = faust.App(settings.app_id, broker="kafka://127.0.0.1:9", store="memory://", datadir=str(tmp_path))
    app.producer = Producer()  # type: ignore[assignment]
    worker = Pipeline(app, settings, Codec(), Metrics.create(CollectorRegistry()), Health())
    worker.register()
    worker.deadletter = Topic()  # type: ignore[assignment]
    worker.by_hub = Topic()  # type: ignore[assignment]
    worker.throughput = Topic()  # type: ignore[assignment]
    return worker


def scans(partition: int, first: int) -> list[Observation]:
    """Three breakdowns at LGG a minute apart, from one flight partition."""
    return [
        Observation("LGG", "ULD_BREAKDOWN", HOUR_T0 + i * MINUTE_MS, 500, Source.FLIGHT, partition, first + i, f"P{i}")
        for i in range(3)
    ]


def by_partition(observations: list[Observation]) -> bytes:
    return join_batch([encode(o) for o in observations])


def records(topic: object) -> list[dict[str, Any]]:
    assert isinstance(topic, Topic)
    return topic.records


async def test_a_by_partition_batch_through_the_first_stage_yields_partials(tmp_path: Path) -> None:
    worker = pipeline(tmp_path)
    async with worker.app.agents["aggregate_partitions"].test_context() as agent, asyncio.timeout(10):
        await agent.put(by_partition(scans(1, 0)), key=b"1", partition=1)
    sent = records(worker.by_hub)
    assert [r["key"] for r in sent] == [b"LGG"]
    partial = decode_partial(sent[0]["value"])
    assert (partial.hub, partial.partition) == ("LGG", 1)
    assert partial.marks == {"flight:1": HOUR_T0 + 2 * MINUTE_MS}  # the source partition's newest event
    assert sorted(partial.windows) == [((MINUTE_MS, "inbound", HOUR_T0 + i * MINUTE_MS), 1, 500) for i in range(3)] + [
        ((HOUR_MS, "inbound", HOUR_T0), 3, 1500)
    ]
    state = TableStore(worker.parcels_table, 1)
    assert state.get(applied_key(1)) == b"0"  # the input offset the partition's state has reached
    assert records(worker.deadletter) == []


async def test_misrouted_and_undecodable_records_are_dead_lettered_not_aggregated(tmp_path: Path) -> None:
    worker = pipeline(tmp_path)
    async with worker.app.agents["aggregate_partitions"].test_context() as agent, asyncio.timeout(10):
        await agent.put(by_partition(scans(2, 0)), key=b"1", partition=1)  # source partition 2 is not 1's
        await agent.put(b"\xff not a batch", key=b"1", partition=1)
    reasons = [r["headers"]["reason"] for r in records(worker.deadletter)]
    assert reasons == [b"misrouted"] * 3 + [b"undecodable"]
    assert records(worker.by_hub) == []
    assert TableStore(worker.parcels_table, 1).get(applied_key(1)) == b"1"  # both records applied


async def test_the_merge_closes_the_windows_the_hub_watermark_passed(tmp_path: Path) -> None:
    worker = pipeline(tmp_path)
    async with worker.app.agents["aggregate_partitions"].test_context() as agent, asyncio.timeout(10):
        await agent.put(by_partition(scans(1, 0)), key=b"1", partition=1)
    async with worker.app.agents["merge_hubs"].test_context() as agent, asyncio.timeout(10):
        for partial in records(worker.by_hub):
            await agent.put(partial["value"], key=partial["key"], partition=0)
    emitted = records(worker.throughput)
    # grace 0 and one source partition: the watermark is its newest event, two minutes in
    assert [r["key"] for r in emitted] == [f"LGG|inbound|60|{HOUR_T0 + i * MINUTE_MS}".encode() for i in range(2)]
    assert [r["timestamp"] for r in emitted] == [(HOUR_T0 + i * MINUTE_MS) / 1000 for i in range(2)]
    assert TableStore(worker.hubs_table, 0).get(applied_key(0)) == b"0"
