"""Faust agents: thin loops that call the pure intake and update metrics and topics."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import faust
from faust.types import EventT

from streams.codec import Codec
from streams.intake import Rejected, deadletter_headers, intake
from streams.metrics import Metrics
from streams.topology import Topics

BATCH_SIZE = 1000
BATCH_WITHIN_SECONDS = 0.2


def register_intake(app: faust.App, topics: Topics, codec: Codec, metrics: Metrics) -> None:
    """Register the agent that consumes the three source topics and counts valid scans."""
    source_of_topic = topics.sources
    source_topic = app.topic(
        *source_of_topic, key_type=bytes, value_type=bytes, value_serializer="raw", key_serializer="raw"
    )
    deadletter = app.topic(
        topics.deadletter, key_type=bytes, value_type=bytes, value_serializer="raw", key_serializer="raw"
    )

    async def count_scans(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        """Decode each record; count valid scans, send the rest to the dead-letter topic."""
        batches = stream.take_events(BATCH_SIZE, within=BATCH_WITHIN_SECONDS)  # type: ignore[attr-defined]
        async for batch in batches:
            now = time.time()
            for event in batch:
                await _handle(event, now)
            yield None

    async def _handle(event: EventT[bytes], now: float) -> None:
        message = event.message
        source = source_of_topic[message.topic]
        result = intake(codec, message.value, source)
        if isinstance(result, Rejected):
            metrics.invalid.labels(source.value, result.reason.value).inc()
            await deadletter.send(
                key=message.key,
                value=message.value,
                headers=deadletter_headers(message.topic, message.partition, message.offset, result),
            )
        else:
            metrics.observe(result, source, now)

    app.agent(source_topic, name="count_scans")(count_scans)
