"""Archive of raw scan events: Avro object container files by source and hour of event time.

Layout: ``<dir>/<source>/<YYYY-MM-DD>/<HH>/<source>-p<partition>-<segment start offset>.avro``.
The archiver reads the source topics in *segments*: it writes every record of a segment into the
files of its (source, hour, partition), renames them into place (write to ``.tmp``, fsync,
rename), and only then commits the consumer offsets. A file is named by the offset its segment
started at — the committed offset — so after a crash the segment is read again from the same
offset and rewritten under the same names; files of a segment that was never committed are
deleted when the partition is assigned. No record is lost or archived twice.

Each record is an envelope holding the Kafka partition, offset, timestamp and key next to the
event itself (read with the current schema of its source); the file embeds that schema.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastavro import parse_schema, reader, writer

from streams.errors import ParcelflowError
from streams.events import InvalidEvent
from streams.kafka.codec import Codec
from streams.kafka.topics import Source, Topics

_NAME = re.compile(r"^(?P<source>[a-z]+)-p(?P<partition>\d+)-(?P<start>\d+)\.avro$")


def envelope_schema(source: Source, codec: Codec) -> dict[str, Any]:
    """Schema of an archived record of ``source``: Kafka position and key around the event."""
    event = {k: v for k, v in codec.readers[source].items() if not k.startswith("__")}
    parsed = parse_schema(
        {
            "type": "record",
            "name": f"Archived{source.value.title()}Scan",
            "namespace": "io.parcelflow.archive",
            "doc": "A scan event as read from its source topic, with its Kafka position.",
            "fields": [
                {"name": "partition", "type": "int"},
                {"name": "offset", "type": "long"},
                {"name": "timestamp", "type": "long", "doc": "Kafka record timestamp (= event time), ms."},
                {"name": "key", "type": ["null", "bytes"]},
                {"name": "event", "type": event},
            ],
        }
    )
    assert isinstance(parsed, dict)
    return parsed


@dataclass(frozen=True, slots=True)
class ArchivedFile:
    """Where one archive file sits and which segment of which partition it holds."""

    path: Path
    source: Source
    partition: int
    segment_start: int


def file_path(root: Path, source: Source, timestamp_ms: int, partition: int, segment_start: int) -> Path:
    """Path of the file for a record's source, event-time hour, partition and segment."""
    hour = datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    name = f"{source.value}-p{partition:03d}-{segment_start:012d}.avro"
    return root / source.value / hour.strftime("%Y-%m-%d") / hour.strftime("%H") / name


def archived_files(root: Path) -> Iterator[ArchivedFile]:
    """Every archive file below ``root``."""
    for path in sorted(root.glob("*/*/*/*.avro")):
        match = _NAME.match(path.name)
        if match and match["source"] in {s.value for s in Source}:
            yield ArchivedFile(path, Source(match["source"]), int(match["partition"]), int(match["start"]))


def uncommitted(files: Iterable[ArchivedFile], source: Source, partition: int, committed: int) -> list[Path]:
    """Files of a partition's segments that started at or after its committed offset."""
    return [f.path for f in files if f.source is source and f.partition == partition and f.segment_start >= committed]


@dataclass
class Segment:
    """Records read since the last commit, grouped by the file they belong in."""

    start: dict[tuple[Source, int], int] = field(default_factory=dict)  # (source, partition) -> first offset
    end: dict[tuple[Source, int], int] = field(default_factory=dict)  # -> next offset to commit
    files: dict[Path, list[dict[str, Any]]] = field(default_factory=dict)
    records: int = 0
    rejected: int = 0

    def add(
        self,
        root: Path,
        source: Source,
        partition: int,
        offset: int,
        timestamp: int,
        key: bytes | None,
        event: dict[str, Any] | None,
    ) -> None:
        """Add one record (``event`` None: it does not decode; it is skipped but its offset counts)."""
        start = self.start.setdefault((source, partition), offset)
        self.end[(source, partition)] = offset + 1
        if event is None:
            self.rejected += 1
            return
        path = file_path(root, source, timestamp, partition, start)
        self.files.setdefault(path, []).append(
            {"partition": partition, "offset": offset, "timestamp": timestamp, "key": key, "event": event}
        )
        self.records += 1


def write_files(segment: Segment, schemas: dict[Source, dict[str, Any]]) -> None:
    """Write every file of a segment durably: temp file, fsync, atomic rename."""
    for path, records in segment.files.items():
        source = Source(path.name.split("-p", 1)[0])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".avro.tmp")
        with tmp.open("wb") as out:
            writer(out, schemas[source], records, codec="deflate")
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)


@dataclass
class ArchiveStats:
    """What an archiver run did."""

    records: int = 0
    rejected: int = 0
    files: int = 0
    segments: int = 0


async def run_archiver(
    bootstrap: str,
    prefix: str,
    root: Path,
    group: str,
    segment_seconds: float = 5.0,
    segment_records: int = 200_000,
    stop: asyncio.Event | None = None,
    on_segment: Callable[[ArchiveStats], None] | None = None,
    registry_url: str | None = None,
) -> ArchiveStats:
    """Archive the source topics of ``prefix`` until ``stop`` is set (or forever).

    Records in the Confluent wire format are decoded with writer schemas fetched from
    ``registry_url`` (waiting while it cannot be reached, as the worker does).
    """
    from aiokafka import ConsumerRebalanceListener, TopicPartition

    from streams.kafka.clients import ConsumerConfig, new_consumer
    from streams.kafka.registry import SchemaRegistry, WriterSchemas
    from streams.worker.health import Health

    codec = Codec()
    writers = WriterSchemas(SchemaRegistry(registry_url) if registry_url else None, Health())
    topics = Topics(prefix)
    source_of = topics.sources
    schemas = {source: envelope_schema(source, codec) for source in Source}
    stats = ArchiveStats()
    consumer = new_consumer(
        ConsumerConfig(bootstrap, group_id=group, offset_reset="earliest", max_partition_fetch_bytes=4 * 1024 * 1024)
    )

    class DropUncommitted(ConsumerRebalanceListener):  # type: ignore[misc]
        async def on_partitions_revoked(self, revoked: Any) -> None:
            return None

        async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
            existing = list(archived_files(root))
            for tp in assigned:
                committed = await consumer.committed(tp) or 0
                for path in uncommitted(existing, source_of[tp.topic], tp.partition, committed):
                    path.unlink(missing_ok=True)

    consumer.subscribe(list(source_of), listener=DropUncommitted())
    try:
        await consumer.start()
        while stop is None or not stop.is_set():
            segment = Segment()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + segment_seconds
            while segment.records < segment_records and loop.time() < deadline:
                batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
                await writers.prepare(codec.schema_ids, [m.value for messages in batch.values() for m in messages])
                for tp, messages in batch.items():
                    source = source_of[tp.topic]
                    for m in messages:
                        try:
                            _writer, event = codec.decode_record(m.value) if m.value else (None, None)
                        except InvalidEvent:
                            event = None
                        segment.add(root, source, tp.partition, m.offset, m.timestamp, m.key, event)
                if stop is not None and stop.is_set():
                    break
            if not segment.end:
                continue
            write_files(segment, schemas)
            await consumer.commit(
                {TopicPartition(topics.source(s), p): offset for (s, p), offset in segment.end.items()}
            )
            stats.records += segment.records
            stats.rejected += segment.rejected
            stats.files += len(segment.files)
            stats.segments += 1
            if on_segment is not None:
                on_segment(stats)
    finally:
        await consumer.stop()
    return stats


def read_file(path: Path) -> Iterator[dict[str, Any]]:
    """Records of one archive file, in offset order (raises ArchiveError naming file and byte)."""
    with path.open("rb") as data:
        try:
            avro = reader(data)
            name = avro.writer_schema.get("name", "") if isinstance(avro.writer_schema, dict) else ""
            if not str(name).startswith("io.parcelflow.archive.Archived"):
                raise ArchiveError(path, f"not a parcelflow archive file (its schema is {name or 'unnamed'})", 0)
            for record in avro:
                assert isinstance(record, dict)
                yield record
        except ArchiveError:
            raise
        except Exception as exc:  # fastavro raises EOFError, ValueError, zlib.error, ... on damage
            raise ArchiveError(path, f"{type(exc).__name__}: {exc}", data.tell()) from None


class ArchiveError(ParcelflowError):
    """An archive file that cannot be read (truncated, wrong schema), named with the problem."""

    def __init__(self, path: Path, problem: str, offset: int | None = None) -> None:
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"{path}{where}: {problem}")
        self.path = path
