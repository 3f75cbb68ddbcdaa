"""Replay: republish history with its original event times into a namespace, at a chosen speed.

History comes from archive files or from the source topics between two times. Each source
partition keeps its original order and is written to the same partition number: lateness is
judged per source partition, so this is what makes a replay aggregate exactly like live did.
Partitions are interleaved by timestamp, and pacing keeps the events' relative spacing.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from streams.events import InvalidEvent
from streams.kafka.clients import (
    ConsumerConfig,
    InFlight,
    ProducerConfig,
    await_partitions,
    consumer_client,
    new_producer,
    partitions_of,
)
from streams.kafka.codec import Codec
from streams.kafka.registry import WriterSchemas
from streams.kafka.topics import Source, Topics
from streams.pacing import Pacer
from streams.replay.archive import ArchiveError, archived_files, read_file

REPUBLISH_WINDOW = 10_000
"""Records sent before their confirmations are awaited."""


@dataclass(frozen=True, slots=True)
class ReplayRecord:
    """One record to republish, with where it came from."""

    source: Source
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes


def merge_partitions(streams: Iterable[Iterator[ReplayRecord]]) -> Iterator[ReplayRecord]:
    """Interleave partitions by timestamp without reordering any one of them."""
    return heapq.merge(*streams, key=lambda r: r.timestamp_ms)


class Reframer:
    """Re-encodes replayed records with a codec that writes the namespace's registered schemas (Confluent framing).

    A record that does not decode, or sits on another source's topic, is republished unchanged:
    the namespace's workers then dead-letter it for the same reason as live did.
    """

    def __init__(self, codec: Codec, schemas: WriterSchemas) -> None:
        self.codec = codec
        self.schemas = schemas

    async def __call__(self, record: ReplayRecord) -> bytes:
        """The bytes to republish for ``record``."""
        await self.schemas.prepare(self.codec.schema_ids, [record.value])  # at once for an id already known
        try:
            source, event = self.codec.decode_record(record.value)
        except InvalidEvent:
            return record.value
        if source is not record.source:
            return record.value
        return self.codec.encode_record(source, event)


@dataclass
class ReplayErrors:
    """Archive files that could not be read, when the user chose to skip them."""

    files: list[str] = field(default_factory=list)


def archive_records(
    root: Path,
    codec: Codec,
    from_ms: int | None = None,
    to_ms: int | None = None,
    on_error: str = "stop",
    errors: ReplayErrors | None = None,
) -> Iterator[ReplayRecord]:
    """Records of the archive in [from, to), per partition in offset order, merged by time."""
    by_partition: dict[tuple[Source, int], list[Path]] = {}
    for archived in archived_files(root):
        by_partition.setdefault((archived.source, archived.partition), []).append(archived.path)

    def records_of(source: Source, path: Path) -> Iterator[ReplayRecord]:
        try:
            for record in read_file(path):
                timestamp = record["timestamp"]
                if (from_ms is None or timestamp >= from_ms) and (to_ms is None or timestamp < to_ms):
                    yield ReplayRecord(
                        source,
                        record["partition"],
                        record["offset"],
                        timestamp,
                        record["key"],
                        codec.encode_record(source, record["event"]),
                    )
        except ArchiveError as exc:
            if on_error == "stop":
                raise
            if errors is not None:
                errors.files.append(str(exc))

    def partition_stream(source: Source, paths: list[Path]) -> Iterator[ReplayRecord]:
        # A segment's records are spread over hour files: merging by offset restores the log order.
        return heapq.merge(*(records_of(source, p) for p in paths), key=lambda r: r.offset)

    return merge_partitions(partition_stream(s, paths) for (s, _p), paths in sorted(by_partition.items()))


async def topic_records(
    bootstrap: str, prefix: str, from_ms: int | None, to_ms: int | None
) -> AsyncIterator[ReplayRecord]:
    """Records of the source topics between the offsets of ``from`` and ``to``, merged by time.

    The range is the stretch of each partition's log from the first record stamped at or after
    ``from`` to the first stamped at or after ``to``: every record in between is replayed, as
    live read it (a late record inside the stretch is included whatever its time).
    """
    from aiokafka import TopicPartition

    topics = Topics(prefix)
    async with consumer_client(ConsumerConfig(bootstrap, max_partition_fetch_bytes=4 << 20)) as consumer:
        partitions = [
            (source, tp) for source in Source for tp in await partitions_of(consumer, [topics.source(source)])
        ]
        tps = [tp for _s, tp in partitions]
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        if from_ms is not None:
            found = await consumer.offsets_for_times({tp: from_ms for tp in tps})
            starts = {tp: (found[tp].offset if found[tp] is not None else ends[tp]) for tp in tps}
        if to_ms is not None:
            found = await consumer.offsets_for_times({tp: to_ms for tp in tps})
            ends = {tp: (found[tp].offset if found[tp] is not None else ends[tp]) for tp in tps}
        live = [(s, tp) for s, tp in partitions if starts[tp] < ends[tp]]
        consumer.assign([tp for _s, tp in live])
        for _s, tp in live:
            consumer.seek(tp, starts[tp])
        buffers: dict[TopicPartition, list[ReplayRecord]] = {tp: [] for _s, tp in live}
        source_of = dict((tp, s) for s, tp in live)
        heap: list[tuple[int, int, TopicPartition]] = []
        sequence = 0

        async def refill(tp: TopicPartition) -> None:
            while not buffers[tp] and await consumer.position(tp) < ends[tp]:
                fetched = await consumer.getmany(tp, timeout_ms=500, max_records=5000)
                for m in fetched.get(tp, []):
                    if m.offset < ends[tp]:
                        buffers[tp].append(
                            ReplayRecord(source_of[tp], tp.partition, m.offset, m.timestamp, m.key, m.value or b"")
                        )
                buffers[tp].reverse()  # pop() from the end = oldest first

        for _s, tp in live:
            await refill(tp)
            if buffers[tp]:
                heapq.heappush(heap, (buffers[tp][-1].timestamp_ms, sequence, tp))
                sequence += 1
        while heap:
            _ts, _seq, tp = heapq.heappop(heap)
            yield buffers[tp].pop()
            if not buffers[tp]:
                await refill(tp)
            if buffers[tp]:
                heapq.heappush(heap, (buffers[tp][-1].timestamp_ms, sequence, tp))
                sequence += 1


@dataclass
class ReplayStats:
    """What a replay sent."""

    records: int = 0
    first_ms: int | None = None
    last_ms: int | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        """Records per second so far."""
        return self.records / max(time.monotonic() - self.started, 1e-9)


async def republish(
    records: AsyncIterator[ReplayRecord] | Iterator[ReplayRecord],
    bootstrap: str,
    target_prefix: str,
    speed: float | None,
    on_progress: Callable[[ReplayStats], None] | None = None,
    on_sent: Callable[[ReplayRecord, float], None] | None = None,
    reframe: Callable[[ReplayRecord], Awaitable[bytes]] | None = None,
) -> ReplayStats:
    """Send records to the target namespace's source topics, same partition, original timestamp.

    With ``reframe``, each record's bytes are what it returns (the Confluent framing of a registry).
    """
    topics = Topics(target_prefix)
    pacer: Pacer | None = None  # its origin is the first record's time
    stats = ReplayStats()
    producer = new_producer(ProducerConfig(bootstrap))
    await producer.start()
    await await_partitions(producer, list(topics.sources))
    in_flight: InFlight[ReplayRecord] = InFlight(REPUBLISH_WINDOW)
    last_report = 0.0
    try:
        async for record in _aiter(records):
            if pacer is None:
                pacer = Pacer(speed, record.timestamp_ms)
            wait = pacer.wait_s(record.timestamp_ms)
            if wait > 0:
                await asyncio.sleep(wait)
            future = await producer.send(
                topics.source(record.source),
                value=record.value if reframe is None else await reframe(record),
                key=record.key,
                partition=record.partition,
                timestamp_ms=record.timestamp_ms,
            )
            in_flight.add(future, record)
            if on_sent is not None:
                on_sent(record, time.monotonic())
            stats.records += 1
            stats.first_ms = record.timestamp_ms if stats.first_ms is None else stats.first_ms
            stats.last_ms = record.timestamp_ms
            if in_flight.due:
                await in_flight.settle()
            if on_progress is not None and time.monotonic() - last_report > 0.25:
                last_report = time.monotonic()
                on_progress(stats)
        await in_flight.settle()
    finally:
        await producer.stop()
    if on_progress is not None:
        on_progress(stats)
    return stats


async def _aiter(records: AsyncIterator[ReplayRecord] | Iterator[ReplayRecord]) -> AsyncIterator[ReplayRecord]:
    if isinstance(records, AsyncIterator):
        async for record in records:
            yield record
    else:
        for n, record in enumerate(records):
            yield record
            if n % 1000 == 0:
                await asyncio.sleep(0)  # let the producer send while files are read
