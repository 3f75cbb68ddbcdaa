"""Driving the pipeline from tests: publish rows, wait for a consumer group, read windows."""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from streams.admin import group_caught_up
from streams.codec import ThroughputCodec
from streams.events import from_mapping
from streams.publish import Publisher
from streams.settings import Settings
from streams.windows import ClosedWindow
from tests.helpers import Samples, unique_name


def publish_rows(settings: Settings, rows: Iterable[dict[str, object]]) -> int:
    async def run() -> int:
        async with Publisher(settings) as publisher:
            return await publisher.publish(from_mapping(row) for row in rows)

    return asyncio.run(run())


def group_done(bootstrap: str, group: str, topics: list[str]) -> bool:
    """Whether the consumer group has committed every record of ``topics`` (False while it can't tell)."""
    try:
        return asyncio.run(group_caught_up(bootstrap, group, topics))
    except KafkaError:
        return False  # e.g. the group coordinator is not available yet


async def _read_windows(bootstrap: str, topic: str) -> list[ClosedWindow]:
    codec = ThroughputCodec()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=unique_name("windows"),
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        partitions = consumer.assignment()
        while not partitions:
            await asyncio.sleep(0.1)
            partitions = consumer.assignment()
        ends = await consumer.end_offsets(list(partitions))
        windows: list[ClosedWindow] = []

        async def behind() -> bool:
            return any([await consumer.position(tp) < end for tp, end in ends.items()])

        while await behind():
            for records in (await consumer.getmany(timeout_ms=500)).values():
                windows.extend(codec.decode(r.value) for r in records)
        return windows
    finally:
        await consumer.stop()


def read_windows(bootstrap: str, topic: str) -> list[ClosedWindow]:
    """Every record of the throughput topic, in order."""
    return asyncio.run(_read_windows(bootstrap, topic))


def bucket_of(value: float, bounds: list[float]) -> int:
    """Index of the histogram bucket (upper bounds, +Inf last) that holds ``value``."""
    return bisect.bisect_left(bounds, value)


def histogram_quantile_bucket(samples: Samples, name: str, q: float, **labels: str) -> tuple[int, list[float]]:
    """The bucket holding the q-quantile of a scraped histogram, like PromQL's histogram_quantile."""
    wanted = set(labels.items())
    cumulative = sorted(
        (float(dict(lab)["le"]), value)
        for (n, lab), value in samples.items()
        if n == f"{name}_bucket" and wanted <= lab
    )
    total = cumulative[-1][1]
    rank = q * total
    for index, (_le, count) in enumerate(cumulative):
        if count >= rank:
            return index, [le for le, _ in cumulative]
    raise AssertionError("empty histogram")
