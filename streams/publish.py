"""Publishing scan events: read JSON Lines / CSV files, validate, send with confirmed delivery."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

from aiokafka import AIOKafkaProducer

from streams.admin import ensure_topics
from streams.codec import Codec
from streams.events import InvalidEvent, Reason, ScanEvent, from_mapping
from streams.settings import Settings
from streams.topology import Topics

FORMATS = ("jsonl", "csv")


@dataclass(frozen=True, slots=True)
class LineError:
    """A line of an input file that is not a valid scan event."""

    line: int
    reason: Reason
    detail: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason.value}: {self.detail}"


def format_of(name: str, explicit: str | None = None) -> str:
    """The input format: given explicitly, else from the file suffix (``-`` means JSON Lines)."""
    if explicit:
        if explicit not in FORMATS:
            raise ValueError(f"unknown format {explicit!r} (choose {' or '.join(FORMATS)})")
        return explicit
    return "csv" if name.lower().endswith(".csv") else "jsonl"


def read_jsonl(stream: IO[str]) -> Iterator[tuple[int, ScanEvent | LineError]]:
    """Parse JSON Lines: one event object per line; blank lines are skipped."""
    for number, line in enumerate(stream, start=1):
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


def read_csv(stream: IO[str]) -> Iterator[tuple[int, ScanEvent | LineError]]:
    """Parse CSV with a header row naming the event fields; empty cells are missing values."""
    reader = csv.DictReader(stream)
    for row in reader:
        number = reader.line_num
        if None in row:
            yield number, LineError(number, Reason.BAD_FIELD, "more cells than header columns")
            continue
        yield number, _event_or_error(number, {k: v for k, v in row.items() if k is not None})


def _event_or_error(number: int, row: dict[str, object]) -> ScanEvent | LineError:
    try:
        return from_mapping(row)
    except InvalidEvent as exc:
        return LineError(number, exc.reason, exc.detail)


def read_events(stream: IO[str], fmt: str) -> Iterator[tuple[int, ScanEvent | LineError]]:
    """Events (or errors) of an input stream, with their line numbers."""
    return read_csv(stream) if fmt == "csv" else read_jsonl(stream)


@dataclass
class PublishSummary:
    """What a publish run did: events confirmed by the broker, and lines rejected."""

    sent: int = 0
    errors: list[LineError] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        """How many input lines were not sent."""
        return len(self.errors)


class Publisher:
    """Sends ScanEvents to their source topics with acks=all; key = parcel (or vehicle) id."""

    def __init__(self, settings: Settings, codec: Codec | None = None, linger_ms: int = 5) -> None:
        self.settings = settings
        self.codec = codec or Codec()
        self.topics = Topics(settings.topic_prefix)
        self.linger_ms = linger_ms
        self._producer: AIOKafkaProducer | None = None

    async def __aenter__(self) -> Publisher:
        await ensure_topics(self.settings)
        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=self.linger_ms,
            max_batch_size=256 * 1024,
            client_id="parcelflow-publisher",
        )
        await producer.start()
        self._producer = producer
        return self

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
        future: asyncio.Future[object] = await self.producer.send(
            self.topics.source(event.source),
            value=self.codec.encode(event),
            key=event.key.encode(),
            timestamp_ms=event.event_time_ms,
        )
        return future

    async def send_raw(
        self, topic: str, value: bytes, key: bytes | None, timestamp_ms: int | None
    ) -> asyncio.Future[object]:
        """Queue bytes as they are (replay, tests with corrupt records)."""
        future: asyncio.Future[object] = await self.producer.send(
            topic, value=value, key=key, timestamp_ms=timestamp_ms
        )
        return future

    async def publish(self, events: Iterable[ScanEvent] | AsyncIterator[ScanEvent], window: int = 10_000) -> int:
        """Send events, waiting for confirmation at most ``window`` events behind; return the count."""
        pending: list[asyncio.Future[object]] = []
        sent = 0
        if isinstance(events, AsyncIterator):
            async for event in events:
                pending.append(await self.send(event))
                if len(pending) >= window:
                    sent += await _confirm(pending)
        else:
            for event in events:
                pending.append(await self.send(event))
                if len(pending) >= window:
                    sent += await _confirm(pending)
        return sent + await _confirm(pending)


async def _confirm(pending: list[asyncio.Future[object]]) -> int:
    """Wait for every queued send; raise the first delivery error. Empties ``pending``."""
    results = await asyncio.gather(*pending)
    pending.clear()
    return len(results)


async def publish_stream(
    settings: Settings,
    stream: IO[str],
    fmt: str,
    on_line: Callable[[int], None] | None = None,
) -> PublishSummary:
    """Validate and publish every line of ``stream``; invalid lines are collected, not sent."""
    summary = PublishSummary()

    def valid_events() -> Iterator[ScanEvent]:
        for number, item in read_events(stream, fmt):
            if on_line is not None:
                on_line(number)
            if isinstance(item, LineError):
                summary.errors.append(item)
            else:
                yield item

    async with Publisher(settings) as publisher:
        summary.sent = await publisher.publish(valid_events())
    return summary


def publish_events(settings: Settings, events: Iterable[ScanEvent]) -> int:
    """Synchronous API: validate nothing more, send ``events``, return how many were confirmed."""

    async def run() -> int:
        async with Publisher(settings) as publisher:
            return await publisher.publish(events)

    return asyncio.run(run())


def publish_text(settings: Settings, text: str, fmt: str = "jsonl") -> PublishSummary:
    """Synchronous API: publish JSON Lines or CSV given as a string."""
    return asyncio.run(publish_stream(settings, io.StringIO(text), fmt))
