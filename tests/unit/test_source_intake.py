"""The source intake's loop on an in-memory consumer: deliveries settle in order; a revocation waits for them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata

from streams.ingest.source_intake import MAX_IN_FLIGHT, Batch, Delivery, SourceIntake
from streams.settings import Settings

TP0 = TopicPartition("p.scans.sorter", 0)
TP1 = TopicPartition("p.scans.sorter", 1)
RECORDS = 10_000  # per partition: 20 batches of 1000 in the buffer after one fetch


@dataclass(frozen=True)
class Record:
    offset: int
    timestamp: int


class Consumer:
    """What the intake's loop uses of an AIOKafkaConsumer: one fetch of everything, then nothing."""

    def __init__(self) -> None:
        self.assigned = {TP0, TP1}
        self.fetched = False
        self.commits: list[dict[TopicPartition, OffsetAndMetadata]] = []
        self.paused_partitions: set[TopicPartition] = set()

    async def getmany(self, timeout_ms: int) -> dict[TopicPartition, list[Record]]:
        if self.fetched:
            await asyncio.sleep(timeout_ms / 1000)
            return {}
        self.fetched = True
        return {tp: [Record(o, 1_000 + o) for o in range(RECORDS)] for tp in (TP0, TP1)}

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def highwater(self, tp: TopicPartition) -> int:
        return RECORDS

    async def position(self, tp: TopicPartition) -> int:
        return RECORDS if self.fetched else 0

    def paused(self) -> set[TopicPartition]:
        return set(self.paused_partitions)

    def pause(self, tp: TopicPartition) -> None:
        self.paused_partitions.add(tp)

    def resume(self, tp: TopicPartition) -> None:
        self.paused_partitions.discard(tp)

    async def commit(self, due: dict[TopicPartition, OffsetAndMetadata]) -> None:
        self.commits.append(due)


async def test_a_revocation_waits_for_the_batch_in_flight_not_the_whole_buffer() -> None:
    handled: list[Batch] = []
    revoked_after: list[int] = []
    first_batch = asyncio.Event()

    async def handle(batch: Batch) -> Delivery:
        handled.append(batch)
        first_batch.set()
        return asyncio.sleep(0.01)  # the sends of a batch: the loop turns meanwhile

    intake = SourceIntake(Settings(), [TP0.topic], handle, lambda revoked: revoked_after.append(len(handled)))
    consumer = Consumer()
    intake._consumer = consumer  # noqa: SLF001 - the loop, without a broker
    loop = asyncio.create_task(intake._loop())  # noqa: SLF001
    try:
        await asyncio.wait_for(first_batch.wait(), timeout=10)
        consumer.assigned = {TP1}  # the group takes partition 0 away while many batches are buffered
        await asyncio.wait_for(intake._revoked({TP0}), timeout=10)  # noqa: SLF001
        # It got in once the batches on their way were delivered, long before the buffer was drained.
        assert revoked_after and revoked_after[0] <= MAX_IN_FLIGHT + 1
        before = revoked_after[0]
        # What was delivered of partition 0 is committed on the way out; none of it is taken later.
        of_tp0 = [record.offset for batch in handled[:before] for tp, record in batch if tp == TP0]
        assert consumer.commits[-1] == {TP0: OffsetAndMetadata(max(of_tp0) + 1, "")}
        async with asyncio.timeout(10):  # the rest of partition 1 follows
            while sum(len(b) for b in handled) < RECORDS + len(of_tp0):
                await asyncio.sleep(0.01)
        later = [tp for batch in handled[before:] for tp, _record in batch]
        assert later and set(later) == {TP1}
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)


async def test_offsets_are_committed_only_up_to_the_oldest_batch_not_yet_delivered() -> None:
    deliveries: list[asyncio.Future[object]] = []

    async def handle(batch: Batch) -> Delivery:
        deliveries.append(asyncio.get_running_loop().create_future())
        return deliveries[-1]

    intake = SourceIntake(Settings(), [TP0.topic], handle)
    consumer = Consumer()
    intake._consumer = consumer  # noqa: SLF001 - the loop, without a broker
    loop = asyncio.create_task(intake._loop())  # noqa: SLF001
    try:
        async with asyncio.timeout(10):  # batches are handled while earlier ones are on their way...
            while len(deliveries) < MAX_IN_FLIGHT + 1:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert len(deliveries) == MAX_IN_FLIGHT + 1  # ...but no more than that many
        deliveries[1].set_result(None)  # the second is on the broker, the first is not
        await asyncio.sleep(0.05)
        await intake._commit()  # noqa: SLF001
        assert consumer.commits == []  # nothing is committed past an undelivered batch
        deliveries[0].set_result(None)
        async with asyncio.timeout(10):
            while len(deliveries) < MAX_IN_FLIGHT + 3:
                await asyncio.sleep(0.01)
        await intake._commit()  # noqa: SLF001
        assert consumer.commits[-1] == {TP0: OffsetAndMetadata(1000, ""), TP1: OffsetAndMetadata(1000, "")}
        deliveries[2].set_exception(RuntimeError("broker refused"))
        with pytest.raises(RuntimeError, match="broker refused"):  # the intake fails: the worker exits
            await asyncio.wait_for(loop, timeout=10)
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)


async def test_while_downstream_is_behind_nothing_new_is_taken_but_what_was_delivered_is_committed() -> None:
    handled: list[Batch] = []
    behind = False

    async def handle(batch: Batch) -> Delivery:
        handled.append(batch)
        return asyncio.sleep(0)

    intake = SourceIntake(Settings(), [TP0.topic], handle, held=lambda: behind)
    consumer = Consumer()
    intake._consumer = consumer  # noqa: SLF001 - the loop, without a broker
    loop = asyncio.create_task(intake._loop())  # noqa: SLF001
    try:
        async with asyncio.timeout(10):
            while len(handled) < 3:
                await asyncio.sleep(0)
        behind = True
        taken = len(handled)
        last = {tp: record.offset + 1 for batch in handled for tp, record in batch}
        async with asyncio.timeout(10):  # the loop goes on turning: it commits what was delivered...
            while not consumer.commits or {tp: m.offset for tp, m in consumer.commits[-1].items()} != last:
                await asyncio.sleep(0.01)
        assert len(handled) == taken  # ...and takes nothing new
        assert consumer.paused() == {TP0, TP1}  # nor fetches, while it keeps polling (and its group)
        assert intake.take_held_seconds() > 0 and intake.take_held_seconds() == 0  # reported once
        behind = False
        async with asyncio.timeout(10):  # fetching resumes, and the rest follows
            while sum(len(b) for b in handled) < 2 * RECORDS or consumer.paused():
                await asyncio.sleep(0.01)
        times = [record.timestamp for batch in handled for _tp, record in batch]
        assert times == sorted(times)  # held or not, in event-time order
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
