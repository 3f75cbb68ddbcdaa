"""Publishing scan events: read JSON Lines / CSV files, validate, send with confirmed delivery."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTimestampError,
    KafkaError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    RecordListTooLargeError,
)

from streams.durations import describe_retention
from streams.errors import ParcelflowError
from streams.events import InvalidEvent, Reason, ScanEvent, from_mapping
from streams.kafka.admin import ensure_topics, topic_retentions
from streams.kafka.clients import Answer, InFlight, ProducerConfig, new_producer
from streams.kafka.codec import Codec
from streams.kafka.registry import confluent_codec
from streams.kafka.topics import Topics
from streams.settings import Settings

FORMATS = ("jsonl", "csv")
PUBLISHER_CLIENT_ID = "parcelflow-publisher"

REFUSALS: tuple[type[KafkaError], ...] = (
    InvalidTimestampError,
    CorruptRecordException,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)
"""Broker answers that refuse the records of a batch (not the connection): their lines are reported, the run goes on."""


class FormatError(ParcelflowError):
    """An input format the publisher does not read."""


class PublishReason(StrEnum):
    """Why publish rejected a valid line: bounded like ``Reason``, kept apart since that one labels a metric."""

    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class LineError:
    """A line of an input file that is not a valid scan event, or that the broker refused."""

    line: int
    reason: Reason | PublishReason
    detail: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason.value}: {self.detail}"


BOM = b"\xef\xbb\xbf"
"""The UTF-8 byte-order mark spreadsheets write before a CSV header: not part of the first field name."""


def format_of(name: str, explicit: str | None = None) -> str:
    """The input format: given explicitly, else from the file suffix (``-`` means JSON Lines)."""
    if explicit:
        if explicit not in FORMATS:
            raise FormatError(f"unknown format {explicit!r} (choose {' or '.join(FORMATS)})")
        return explicit
    return "csv" if name.lower().endswith(".csv") else "jsonl"


def numbered_lines(lines: Iterable[bytes]) -> Iterator[tuple[int, str | LineError]]:
    """Physical lines decoded one by one, so a byte that is not UTF-8 costs its own line only; a leading BOM goes."""
    for number, raw in enumerate(lines, start=1):
        if number == 1:
            raw = raw.removeprefix(BOM)
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            column = len(raw[: exc.start].decode("utf-8")) + 1
            detail = f"not UTF-8: byte 0x{raw[exc.start]:02x} at column {column}"
            yield number, LineError(number, Reason.UNDECODABLE, detail)


def read_jsonl(lines: Iterable[bytes]) -> Iterator[tuple[int, ScanEvent | LineError]]:
    """Parse JSON Lines: one event object per line; blank lines are skipped."""
    for number, line in numbered_lines(lines):
        if isinstance(line, LineError):
            yield number, line
            continue
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, LineError(number, Reason.UNDECODABLE, f"not JSON: {exc.msg} at column {exc.colno}")
            continue
        if not isinstance(row, dict):
            yield number, LineError(number, Reason.UNDECODABLE, "not a JSON object")
            continue
        yield number, _event_or_error(number, row)


def read_csv(lines: Iterable[bytes]) -> Iterator[tuple[int, ScanEvent | LineError]]:
    """Parse CSV with a header row naming the event fields; empty cells are missing values.

    A record is one line (no newlines inside quotes), so a stray quote costs its own line, not the rest of the file.
    """
    header: list[str] | None = None
    header_rejected = 0  # number of the header line when it could not be read
    for number, line in numbered_lines(lines):
        cells = _csv_cells(number, line)
        if isinstance(cells, LineError):
            if header is None and not header_rejected:
                header_rejected = number
            yield number, cells
        elif not cells:
            continue
        elif header is None and not header_rejected:
            header = cells
        elif header is None:
            detail = f"no field names: the header (line {header_rejected}) was rejected"
            yield number, LineError(number, Reason.BAD_FIELD, detail)
        elif len(cells) > len(header):
            yield number, LineError(number, Reason.BAD_FIELD, "more cells than header columns")
        else:
            row: dict[str, object] = dict.fromkeys(header)
            row.update(zip(header, cells, strict=False))
            yield number, _event_or_error(number, row)


def _csv_cells(number: int, line: str | LineError) -> list[str] | LineError:
    """One line's cells; strict, so a quote left open or text after a closing quote is an error, not a guess."""
    if isinstance(line, LineError):
        return line
    try:
        return next(csv.reader([line], strict=True))
    except csv.Error as exc:
        return LineError(number, Reason.UNDECODABLE, f"not CSV: {exc}")


def _event_or_error(number: int, row: dict[str, object]) -> ScanEvent | LineError:
    try:
        return from_mapping(row)
    except InvalidEvent as exc:
        return LineError(number, exc.reason, exc.detail)


def read_events(lines: Iterable[bytes], fmt: str) -> Iterator[tuple[int, ScanEvent | LineError]]:
    """Events (or errors) of an input read as bytes (a file opened ``rb``, stdin's buffer), with their line numbers."""
    return read_csv(lines) if fmt == "csv" else read_jsonl(lines)


@dataclass
class Delivery:
    """What the broker did with numbered events: how many it confirmed, and the lines it refused."""

    sent: int = 0
    refused: list[LineError] = field(default_factory=list)


@dataclass
class PublishSummary:
    """What a publish run did: events confirmed by the broker, and lines rejected."""

    sent: int = 0
    errors: list[LineError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        """How many input lines were not sent."""
        return len(self.errors)


class Publisher:
    """Sends ScanEvents to their source topics with acks=all; key = parcel (or vehicle) id.

    With a schema registry in the settings, the schemas are registered under the topics' subjects on
    entering, and records are written in the Confluent wire format (a refusal raises SchemaRefused).
    """

    def __init__(
        self,
        settings: Settings,
        codec: Codec | None = None,
        linger_ms: int = 5,
        producer_factory: Callable[[], AIOKafkaProducer] | None = None,
    ) -> None:
        self.settings = settings
        self.codec = codec or Codec()
        self.topics = Topics(settings.topic_prefix)
        self.linger_ms = linger_ms
        self._new_producer = producer_factory or self._kafka_producer
        self._producer: AIOKafkaProducer | None = None
        self.retention_ms: dict[str, int] = {}
        self._deleted_before: dict[str, int] = {}  # topic → event times before this are past its retention
        self.beyond_retention: Counter[str] = Counter()

    async def __aenter__(self) -> Publisher:
        await ensure_topics(self.settings)
        if self.settings.schema_registry_url is not None:  # register our schemas, write the Confluent format
            await asyncio.to_thread(confluent_codec, self.settings, None, self.codec)
        self.retention_ms = await topic_retentions(self.settings, list(self.topics.sources))
        now_ms = int(time.time() * 1000)
        self._deleted_before = {topic: now_ms - ms for topic, ms in self.retention_ms.items() if ms >= 0}
        await self._start_producer()
        return self

    def _kafka_producer(self) -> AIOKafkaProducer:
        return new_producer(ProducerConfig(self.settings.bootstrap, PUBLISHER_CLIENT_ID, self.linger_ms))

    async def _start_producer(self) -> None:
        producer = self._new_producer()
        await producer.start()
        self._producer = producer

    async def _restart_producer(self) -> None:
        """Start over with a new producer id: the broker keeps the old one's sequence, which a refused batch broke."""
        await self.producer.stop()
        self._producer = None
        await self._start_producer()

    @property
    def producer(self) -> AIOKafkaProducer:
        """The started producer (only inside ``async with``)."""
        if self._producer is None:
            raise RuntimeError("use the Publisher inside 'async with'")
        return self._producer

    async def __aexit__(self, *exc: object) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def send(self, event: ScanEvent) -> asyncio.Future[object]:
        """Queue one event; the returned future resolves when the broker confirmed it."""
        self._count_retention(event, 1)
        return await self._produce(event)

    async def _produce(self, event: ScanEvent) -> asyncio.Future[object]:
        future: asyncio.Future[object] = await self.producer.send(
            self.topics.source(event.source),
            value=self.codec.encode(event),
            key=event.key.encode(),
            timestamp_ms=event.event_time_ms,
        )
        return future

    def _count_retention(self, event: ScanEvent, change: int) -> None:
        topic = self.topics.source(event.source)
        if event.event_time_ms < self._deleted_before.get(topic, -1):
            self.beyond_retention[topic] += change

    async def send_raw(
        self, topic: str, value: bytes, key: bytes | None, timestamp_ms: int | None
    ) -> asyncio.Future[object]:
        """Queue bytes as they are (replay, tests with corrupt records)."""
        future: asyncio.Future[object] = await self.producer.send(
            topic, value=value, key=key, timestamp_ms=timestamp_ms
        )
        return future

    async def publish(self, events: Iterable[ScanEvent] | AsyncIterator[ScanEvent], window: int = 10_000) -> int:
        """Send events, waiting for confirmation at most ``window`` behind; return the count, or raise the first error.

        For events without lines to name (simulator, tests); ``publish_lines`` reports refused lines and goes on.
        """
        in_flight: InFlight[ScanEvent] = InFlight(window)
        if isinstance(events, AsyncIterator):
            async for event in events:
                await in_flight.send(self.send(event), event)
        else:
            for event in events:
                await in_flight.send(self.send(event), event)
        await in_flight.settle()
        return in_flight.confirmed

    async def publish_lines(self, lines: Iterable[tuple[int, ScanEvent]], window: int = 10_000) -> Delivery:
        """Send numbered events; one the broker refuses becomes an error for its line, every other is confirmed."""
        delivery = Delivery()

        async def settle(answers: list[Answer[_Line]]) -> None:
            await self._settle(answers, delivery)

        in_flight: InFlight[_Line] = InFlight(window, settle)
        for line, event in lines:
            await in_flight.send(self.send(event), _Line(line, event))
        await in_flight.settle()
        return delivery

    async def _settle(self, answers: list[Answer[_Line]], delivery: Delivery) -> None:
        """Count the records the broker holds; those a refusal took down are sent again alone."""
        suspects = []
        for answer in answers:
            if answer.error is None:
                delivery.sent += 1
            elif isinstance(answer.error, (*REFUSALS, OutOfOrderSequenceNumber)):
                suspects.append(answer.item)
            else:
                raise answer.error  # not about the records (broker unreachable, not authorized, ...): the run ends
        if suspects:
            await self._resend_alone(suspects, delivery)

    async def _resend_alone(self, suspects: list[_Line], delivery: Delivery) -> None:
        """Send each suspect on its own, in line order, so that a refusal is one record's and names its line.

        The broker refuses a whole batch for one bad record, and the idempotent producer's later batches to
        that partition then fail out of sequence. Order on the partition is kept when the producer had
        written to it before; if the refused batch was its first there, later batches were accepted and
        the refused batch's other records arrive after them.
        """
        for item in suspects:
            try:
                await self._deliver_alone(item.event)
            except REFUSALS as exc:
                self._count_retention(item.event, -1)
                detail = refusal_detail(exc, item.event.event_time_ms, int(time.time() * 1000))
                delivery.refused.append(LineError(item.line, PublishReason.REFUSED, detail))
            else:
                delivery.sent += 1
        await self._restart_producer()  # a refusal may have left a partition out of sequence

    async def _deliver_alone(self, event: ScanEvent) -> None:
        try:
            await (await self._produce(event))
        except OutOfOrderSequenceNumber:  # a refusal before it on its partition: a new producer id starts over
            await self._restart_producer()
            await (await self._produce(event))

    def retention_warnings(self) -> list[str]:
        """One line per source topic that was sent events older than its time retention."""
        return [
            f"{count:,} events sent to {topic} are older than its retention.ms "
            f"({describe_retention(self.retention_ms[topic])}): Kafka deletes them at its next retention check. "
            "Keep history with unlimited retention (parcelflow topics --retention unlimited for new topics, "
            "or alter retention.ms of this one)"
            for topic, count in sorted(self.beyond_retention.items())
            if count > 0
        ]


@dataclass(frozen=True, slots=True)
class _Line:
    """A sent event and the line it came from, kept until the broker answered."""

    line: int
    event: ScanEvent


def refusal_detail(exc: KafkaError, event_time_ms: int, now_ms: int) -> str:
    """The broker's reason in words; for a refused timestamp, how far the event time is from this clock and why."""
    description = str(getattr(exc, "description", "")).rstrip(".")
    detail = f"broker: {type(exc).__name__}" + (f" ({description})" if description else "")
    if isinstance(exc, InvalidTimestampError):
        hours = (event_time_ms - now_ms) / 3_600_000
        if hours >= 0:
            detail += (
                f"; event time {hours:.1f} h ahead of this machine's clock, and the broker accepts at most "
                "message.timestamp.after.max.ms (1 h by default) ahead of its own"
            )
        else:
            detail += (
                f"; event time {-hours:.1f} h behind this machine's clock, and the broker accepts at most "
                "message.timestamp.before.max.ms behind its own"
            )
    return detail


async def publish_stream(
    settings: Settings,
    stream: Iterable[bytes],
    fmt: str,
    on_line: Callable[[int], None] | None = None,
) -> PublishSummary:
    """Validate and publish every line of ``stream``; invalid lines are collected, not sent."""
    summary = PublishSummary()

    def valid_events() -> Iterator[tuple[int, ScanEvent]]:
        for number, item in read_events(stream, fmt):
            if on_line is not None:
                on_line(number)
            if isinstance(item, LineError):
                summary.errors.append(item)
            else:
                yield number, item

    events = valid_events()
    first = next(events, None)
    if first is None:
        return summary  # nothing to send: the input is checked without contacting Kafka
    async with Publisher(settings) as publisher:
        delivery = await publisher.publish_lines(itertools.chain([first], events))
        summary.warnings = publisher.retention_warnings()
    summary.sent = delivery.sent
    summary.errors = sorted(summary.errors + delivery.refused, key=lambda error: error.line)
    return summary


def publish_events(settings: Settings, events: Iterable[ScanEvent]) -> int:
    """Synchronous API: validate nothing more, send ``events``, return how many were confirmed."""

    async def run() -> int:
        async with Publisher(settings) as publisher:
            return await publisher.publish(events)

    return asyncio.run(run())


def publish_text(settings: Settings, text: str, fmt: str = "jsonl") -> PublishSummary:
    """Synchronous API: publish JSON Lines or CSV given as a string."""
    return asyncio.run(publish_stream(settings, io.BytesIO(text.encode("utf-8")), fmt))
