"""The source intake's loop against an in-memory consumer: a revocation waits for one batch, not the buffer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata

from streams.settings import Settings
from streams.source_intake import Batch, SourceIntake

TP0 = TopicPartition("p.scans.sorter", 0)
TP1 = TopicPartition("p.scans.sorter", 1)
RECORDS = 3000  # per partition: 6 batches of 1000 in the buffer after one fetch


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
        return set()

    def pause(self, tp: TopicPartition) -> None:
        pass

    def resume(self, tp: TopicPartition) -> None:
        pass

    async def commit(self, due: dict[TopicPartition, OffsetAndMetadata]) -> None:
        self.commits.append(due)


async def test_a_revocation_waits_for_the_batch_in_flight_not_the_whole_buffer() -> None:
    handled: list[Batch] = []
    revoked_after: list[int] = []
    first_batch = asyncio.Event()

    async def handle(batch: Batch) -> None:
        handled.append(batch)
        first_batch.set()
        await asyncio.sleep(0.01)  # the sends of a batch: the loop turns meanwhile

    intake = SourceIntake(Settings(), [TP0.topic], handle, lambda revoked: revoked_after.append(len(handled)))
    consumer = Consumer()
    intake._consumer = consumer  # type: ignore[assignment]  # noqa: SLF001 - the loop, without a broker
    loop = asyncio.create_task(intake._loop())  # noqa: SLF001
    try:
        await asyncio.wait_for(first_batch.wait(), timeout=10)
        consumer.assigned = {TP1}  # the group takes partition 0 away while 5 batches are buffered
        await asyncio.wait_for(intake._revoked({TP0}), timeout=10)  # noqa: SLF001
        assert revoked_after == [1]  # it got in right after the first batch
        # What was delivered of partition 0 is committed on the way out; none of it is taken later.
        of_tp0 = [record.offset for tp, record in handled[0] if tp == TP0]
        assert consumer.commits[-1] == {TP0: OffsetAndMetadata(max(of_tp0) + 1, "")}
        async with asyncio.timeout(10):  # the rest of partition 1 follows
            while sum(len(b) for b in handled) < RECORDS + len(of_tp0):
                await asyncio.sleep(0.01)
        later = [tp for batch in handled[1:] for tp, _record in batch]
        assert later and set(later) == {TP1}
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
