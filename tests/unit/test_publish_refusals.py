"""Publisher.publish_lines against a fake producer that fails batches the way aiokafka does on Kafka 4."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict

import pytest
from aiokafka.errors import InvalidTimestampError, KafkaConnectionError, OutOfOrderSequenceNumber

from streams.events import ScanEvent
from streams.ingest import publish
from streams.ingest.publish import Delivery, LineError, Publisher, PublishReason, refusal_detail
from streams.settings import Settings

HOUR_MS = 3_600_000
NOW_MS = int(time.time() * 1000) // HOUR_MS * HOUR_MS - HOUR_MS
FUTURE_MS = NOW_MS + 48 * HOUR_MS  # beyond message.timestamp.after.max.ms (1 h)


class FakeBroker:
    """One topic: a batch with a timestamp over the limit is refused whole, as Kafka does.

    Like Kafka, it keeps each producer id's next sequence per partition once that producer wrote
    there; a batch that does not continue it fails out of sequence. A producer's first batch on a
    partition is accepted at any sequence.
    """

    def __init__(self, partitions: int = 2, batch: int = 3, connection_lost: bool = False) -> None:
        self.partitions = partitions
        self.batch = batch
        self.connection_lost = connection_lost
        self.logs: dict[int, list[str]] = defaultdict(list)
        self.next_sequence: dict[tuple[int, int], int] = {}
        self.producers = 0

    def append(self, producer: int, partition: int, first: int, batch: list[tuple[str, int]]) -> Exception | None:
        if self.connection_lost:
            return KafkaConnectionError("connection lost")  # type: ignore[no-any-return]  # aiokafka.errors is untyped
        if self.next_sequence.get((producer, partition), first) != first:
            return OutOfOrderSequenceNumber()  # type: ignore[no-any-return]  # aiokafka.errors is untyped
        if any(timestamp > time.time() * 1000 + HOUR_MS for _, timestamp in batch):
            return InvalidTimestampError()  # type: ignore[no-any-return]  # aiokafka.errors is untyped
        self.logs[partition].extend(key for key, _ in batch)
        self.next_sequence[producer, partition] = first + len(batch)
        return None


class FakeProducer:
    """An idempotent producer: per-partition batches, each numbered on from the last one it drained."""

    def __init__(self, broker: FakeBroker) -> None:
        broker.producers += 1
        self.id = broker.producers
        self.broker = broker
        self.queues: dict[int, list[tuple[str, int, asyncio.Future[None]]]] = defaultdict(list)
        self.sequence: Counter[int] = Counter()

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        for partition in list(self.queues):
            self._drain(partition)

    async def send(self, topic: str, value: bytes, key: bytes, timestamp_ms: int) -> asyncio.Future[None]:
        partition = int(key.decode()[1:]) % self.broker.partitions  # key P<n>
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.queues[partition].append((key.decode(), timestamp_ms, future))
        if len(self.queues[partition]) >= self.broker.batch:
            self._drain(partition)
        else:
            asyncio.get_running_loop().call_later(0.002, self._drain, partition)  # linger
        await asyncio.sleep(0)  # let answers arrive while sending, as aiokafka does when it waits
        return future

    def _drain(self, partition: int) -> None:
        batch = self.queues.pop(partition, [])
        if not batch:
            return
        first = self.sequence[partition]
        self.sequence[partition] += len(batch)
        error = self.broker.append(self.id, partition, first, [(key, timestamp) for key, timestamp, _ in batch])
        for *_, future in batch:
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)


def scan(line: int, event_time_ms: int = NOW_MS) -> tuple[int, ScanEvent]:
    return line, ScanEvent(f"e{line}", event_time_ms, "LGG", "XB1-I3", "SORTED", f"P{line}", 480, sorter_id="S1")


async def publish_with(broker: FakeBroker, *runs: list[tuple[int, ScanEvent]], window: int = 10_000) -> Delivery:
    total = Delivery()
    async with Publisher(Settings(), producer_factory=lambda: FakeProducer(broker)) as publisher:
        for lines in runs:
            delivery = await publisher.publish_lines(lines, window=window)
            total.sent += delivery.sent
            total.refused += delivery.refused
    return total


@pytest.fixture(autouse=True)
def no_admin(monkeypatch: pytest.MonkeyPatch) -> None:
    async def ensure_topics(settings: Settings) -> list[str]:
        return []

    async def topic_retentions(settings: Settings, topics: object) -> dict[str, int]:
        return {}

    monkeypatch.setattr(publish, "ensure_topics", ensure_topics)
    monkeypatch.setattr(publish, "topic_retentions", topic_retentions)


def by_partition(lines: list[int], partitions: int = 2) -> dict[int, list[str]]:
    logs: dict[int, list[str]] = defaultdict(list)
    for line in lines:
        logs[line % partitions].append(f"P{line}")
    return logs


async def test_a_refused_line_is_named_and_every_other_line_is_delivered_once_in_order() -> None:
    broker = FakeBroker()
    lines = [scan(n, FUTURE_MS if n == 15 else NOW_MS) for n in range(1, 41)]
    delivery = await publish_with(broker, lines)
    assert [(e.line, e.reason) for e in delivery.refused] == [(15, PublishReason.REFUSED)]
    assert delivery.refused[0].detail.startswith("broker: InvalidTimestampError")
    assert delivery.sent == 39
    assert broker.logs == by_partition([n for n in range(1, 41) if n != 15])
    assert broker.producers > 1  # a new producer id after the refusal broke the old one's sequence


async def test_refused_lines_in_several_windows_and_partitions() -> None:
    broker = FakeBroker(partitions=3, batch=4)
    bad = {4, 5, 17, 30, 31, 32, 58}
    lines = [scan(n, FUTURE_MS if n in bad else NOW_MS) for n in range(1, 61)]
    delivery = await publish_with(broker, lines[:10], lines[10:], window=7)
    assert sorted(e.line for e in delivery.refused) == sorted(bad)
    assert delivery.sent == 60 - len(bad)
    delivered = sorted(key for log in broker.logs.values() for key in log)
    assert delivered == sorted(f"P{n}" for n in range(1, 61) if n not in bad)  # each exactly once


async def test_a_refusal_in_a_producers_first_batch_loses_no_other_line() -> None:
    broker = FakeBroker()
    delivery = await publish_with(broker, [scan(1, FUTURE_MS), *(scan(n) for n in range(2, 20))])
    assert [e.line for e in delivery.refused] == [1] and delivery.sent == 18
    assert sorted(key for log in broker.logs.values() for key in log) == sorted(f"P{n}" for n in range(2, 20))


async def test_every_line_refused_is_every_line_named() -> None:
    broker = FakeBroker()
    delivery = await publish_with(broker, [scan(n, FUTURE_MS) for n in range(1, 13)])
    assert [e.line for e in delivery.refused] == list(range(1, 13)) and delivery.sent == 0
    assert not broker.logs


async def test_an_error_that_is_not_about_the_records_ends_the_run() -> None:
    with pytest.raises(KafkaConnectionError):
        await publish_with(FakeBroker(connection_lost=True), [scan(n) for n in range(1, 5)])


async def test_plain_publish_still_raises_the_first_refusal() -> None:
    async with Publisher(Settings(), producer_factory=lambda: FakeProducer(FakeBroker())) as publisher:
        with pytest.raises(InvalidTimestampError):
            await publisher.publish([scan(1)[1], scan(2, FUTURE_MS)[1]])


def test_refusal_detail_says_how_far_the_event_time_is_and_which_limit() -> None:
    ahead = refusal_detail(InvalidTimestampError(), NOW_MS + 48 * HOUR_MS, NOW_MS)
    assert ahead == (
        "broker: InvalidTimestampError (The timestamp of the message is out of acceptable range); "
        "event time 48.0 h ahead of this machine's clock, and the broker accepts at most "
        "message.timestamp.after.max.ms (1 h by default) ahead of its own"
    )
    behind = refusal_detail(InvalidTimestampError(), NOW_MS - 30 * 24 * HOUR_MS, NOW_MS)
    assert "event time 720.0 h behind" in behind and "message.timestamp.before.max.ms" in behind
    assert str(LineError(3, PublishReason.REFUSED, "x")) == "line 3: refused: x"
