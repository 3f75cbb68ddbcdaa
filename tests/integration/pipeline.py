"""Driving the pipeline from tests: publish rows, wait for a consumer group, read windows."""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from streams.admin import group_caught_up, partitions_of
from streams.codec import ThroughputCodec
from streams.events import from_mapping
from streams.publish import Publisher
from streams.settings import Settings
from streams.topology import Topics
from streams.windows import MINUTE_MS, ClosedWindow, totals
from tests.helpers import Samples, WorkerProcess, wait_for
from tests.integration.flows import Flows


def publish_rows(settings: Settings, rows: Iterable[dict[str, object]]) -> int:
    async def run() -> int:
        async with Publisher(settings) as publisher:
            return await publisher.publish(from_mapping(row) for row in rows)

    return asyncio.run(run())


def wait_consumed(bootstrap: str, prefix: str, worker: WorkerProcess, timeout: float = 240) -> None:
    """Wait until the pipeline's group (app id = prefix) committed every source and by-hub record."""
    topics = [*Topics(prefix).sources, Topics(prefix).by_hub(prefix)]
    wait_for(
        lambda: group_done(bootstrap, prefix, topics),
        timeout=timeout,
        what="the worker to commit every record",
        proc=worker,
    )


def group_done(bootstrap: str, group: str, topics: list[str]) -> bool:
    """Whether the consumer group has committed every record of ``topics`` (False while it can't tell)."""
    try:
        return asyncio.run(group_caught_up(bootstrap, group, topics))
    except KafkaError:
        return False  # e.g. the group coordinator is not available yet


async def _read_all(bootstrap: str, topics: list[str], at_least: int, timeout: float) -> list[ConsumerRecord]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        partitions = await partitions_of(consumer, topics)
        while {tp.topic for tp in partitions} != set(topics) and loop.time() < deadline:
            await asyncio.sleep(0.2)
            partitions = await partitions_of(consumer, topics)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[ConsumerRecord] = []
        while True:
            ends = await consumer.end_offsets(partitions)
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
                for tp, batch in (await consumer.getmany(*partitions, timeout_ms=500)).items():
                    records.extend(r for r in batch if r.offset < ends[tp])
            if len(records) >= at_least or loop.time() > deadline:
                return records
            await asyncio.sleep(0.2)
    finally:
        await consumer.stop()


def read_all(bootstrap: str, topics: list[str], at_least: int = 0, timeout: float = 30) -> list[ConsumerRecord]:
    """Every record of ``topics`` up to their end offsets (waiting, up to ``timeout``, for ``at_least``)."""
    return asyncio.run(_read_all(bootstrap, topics, at_least, timeout))


def read_windows(
    bootstrap: str, topic: str, decode: Callable[[bytes], ClosedWindow] | None = None
) -> list[ClosedWindow]:
    """Every record of the throughput topic, in order (decoded by ``decode``, default our single-object codec)."""
    decode = decode or ThroughputCodec().decode
    return [decode(r.value) for r in read_all(bootstrap, [topic])]


def assert_windows_equal_truth(
    bootstrap: str, throughput_topic: str, flows: Flows, decode: Callable[[bytes], ClosedWindow] | None = None
) -> None:
    """Every closed minute window of the run holds exactly the parcels and grams of the truth."""
    latest = totals(read_windows(bootstrap, throughput_topic, decode))
    got = {(h, f, s): v for (h, f, size, s), v in latest.items() if size == MINUTE_MS and s <= flows.end_ms}
    want = {key: (flows.windows[key], flows.grams[key]) for key in flows.windows}
    missing = want.keys() - got.keys()
    extra = got.keys() - want.keys()
    wrong = {k: (got[k], want[k]) for k in want.keys() & got.keys() if got[k] != want[k]}
    assert not missing and not extra and not wrong, (
        f"{len(missing)} missing, {len(extra)} extra, {len(wrong)} wrong of {len(want)} windows; "
        f"e.g. wrong {list(wrong.items())[:3]}, missing {sorted(missing)[:3]}"
    )


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
