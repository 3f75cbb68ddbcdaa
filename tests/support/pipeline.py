"""Driving a running pipeline from tests and benchmarks: publish rows or raw bytes, wait for a consumer
group, read the windows and check them against the truth."""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from streams.aggregate.partials import decode_window, window_key
from streams.aggregate.windows import MINUTE_MS, ClosedWindow, totals, window_start
from streams.events import from_mapping
from streams.ingest.publish import Publisher
from streams.kafka.admin import group_caught_up, pipeline_caught_up
from streams.kafka.clients import partitions_of
from streams.kafka.codec import ThroughputCodec
from streams.kafka.topics import Topics
from streams.settings import Settings
from tests.support.flows import Flows
from tests.support.network import FLOW
from tests.support.workers import Samples, WorkerProcess, scrape, wait_for

WindowKey = tuple[str, str, int]
"""(hub, flow, minute start) of a window of the truth."""


def flow_of(row: dict[str, object]) -> str | None:
    """The flow a truth row counts in, if any."""
    return FLOW.get(str(row["event_type"]))


async def _offsets(bootstrap: str, topics: list[str]) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        partitions = await partitions_of(consumer, topics)
        return await consumer.beginning_offsets(partitions), await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()


def offsets(bootstrap: str, topics: list[str]) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """(low watermarks, end offsets) of every partition of ``topics``."""
    return asyncio.run(_offsets(bootstrap, topics))


def publish_rows(settings: Settings, rows: Iterable[dict[str, object]]) -> int:
    async def run() -> int:
        async with Publisher(settings) as publisher:
            return await publisher.publish(from_mapping(row) for row in rows)

    return asyncio.run(run())


async def send_raw(bootstrap: str, records: list[tuple[str, bytes, str]]) -> list[tuple[str, int, int]]:
    """Send raw bytes (topic, value, why it is bad) past the codec; where each landed."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        sent = []
        for topic, value, _reason in records:
            meta = await producer.send_and_wait(topic, value=value, key=b"corrupt")
            sent.append((meta.topic, meta.partition, meta.offset))
        return sent
    finally:
        await producer.stop()


def wait_consumed(bootstrap: str, prefix: str, worker: WorkerProcess, timeout: float = 240) -> None:
    """Wait until the pipeline (app id = prefix) committed every source and by-hub record."""
    wait_for(
        lambda: pipeline_done(bootstrap, prefix),
        timeout=timeout,
        what="the worker to commit every record",
        proc=worker,
    )


def group_done(bootstrap: str, group: str, topics: list[str]) -> bool:
    """Whether consumer group ``group`` committed every record of ``topics`` (False while it can't tell)."""
    try:
        return asyncio.run(group_caught_up(bootstrap, group, topics))
    except KafkaError:
        return False  # e.g. the group coordinator is not available yet


def pipeline_done(bootstrap: str, prefix: str, app_id: str | None = None) -> bool:
    """Whether the pipeline (app id: ``prefix`` unless given) committed every source and by-hub record.

    False while it can't tell."""
    try:
        return asyncio.run(pipeline_caught_up(bootstrap, prefix, app_id or prefix))
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
    bootstrap: str,
    throughput_topic: str,
    flows: Flows,
    decode: Callable[[bytes], ClosedWindow] | None = None,
    explain: Callable[[list[WindowKey]], str] | None = None,
) -> None:
    """Every closed minute window of the run holds exactly the parcels and grams of the truth.

    ``explain`` (given the wrong or missing windows) adds what the pipeline knew of them to the
    failure message: a failure that is rare needs its evidence in the first report.
    """
    latest = totals(read_windows(bootstrap, throughput_topic, decode))
    got = {(h, f, s): v for (h, f, size, s), v in latest.items() if size == MINUTE_MS and s <= flows.end_ms}
    want = {key: (flows.windows[key], flows.grams[key]) for key in flows.windows}
    missing = want.keys() - got.keys()
    extra = got.keys() - want.keys()
    wrong = {k: (got[k], want[k]) for k in want.keys() & got.keys() if got[k] != want[k]}
    if missing or extra or wrong:
        try:
            detail = explain(sorted(missing | wrong.keys())[:5]) if explain is not None else ""
        except Exception as exc:  # noqa: BLE001 - the evidence is a bonus; the failure is the point
            detail = f"\n(explaining it failed: {type(exc).__name__}: {exc})"
        raise AssertionError(
            f"{len(missing)} missing, {len(extra)} extra, {len(wrong)} wrong of {len(want)} windows; "
            f"e.g. wrong {list(wrong.items())[:3]}, missing {sorted(missing)[:3]}{detail}"
        )


def explain_windows(
    bootstrap: str, prefix: str, flows: Flows, workers: list[WorkerProcess]
) -> Callable[[list[WindowKey]], str]:
    """An ``explain`` for :func:`assert_windows_equal_truth`: every revision emitted of each wrong
    window, its last merged state in the changelog (revision and partials per first-stage
    partition), the hub's source-partition marks, the truth's scans of it, and the live workers'
    duplicate, invalid and late counters and warnings."""

    def explain(keys: list[WindowKey]) -> str:
        lines = ["", "--- what the pipeline knew of these windows ---"]
        emitted = read_all(bootstrap, [Topics(prefix).throughput])
        merged: dict[bytes, bytes | None] = {}
        for record in read_all(bootstrap, [f"{prefix}-hub-windows-changelog"]):
            if record.key is not None:
                merged[record.key.split(b"|", 1)[-1]] = record.value  # keys are stored under their partition
        codec = ThroughputCodec()
        for hub, flow, start in keys:
            revisions = [
                (r.partition, r.offset, w.revision, w.parcels)
                for r in emitted
                for w in [codec.decode(r.value)]
                if (w.hub, w.flow, w.size_ms, w.start_ms) == (hub, flow, MINUTE_MS, start)
            ]
            scans = [
                (index, row["parcel_id"], row["event_time"])
                for index, row in enumerate(flows.rows)
                if row["hub"] == hub
                and flow_of(row) == flow
                and window_start(int(row["event_time"]), MINUTE_MS) == start  # type: ignore[call-overload]
            ]
            truth = flows.windows.get((hub, flow, start))
            lines.append(
                f"{hub} {flow} {start}: truth {truth}, emitted (partition, offset, revision, parcels) {revisions}"
            )
            lines.append(f"  truth scans (row index, parcel, event time) {scans}")
            window = merged.get(window_key(hub, (MINUTE_MS, flow, start)))
            head = merged.get(hub.encode())
            late_truth = {f: n for (h, f), n in flows.late.items() if h == hub}
            lines.append(
                f"  changelog: window (revision, changed, partials) {decode_window(window) if window else None},"
                f" hub head {head!r} (late in the truth {late_truth})"
            )
        for worker in workers:
            try:
                samples = scrape(worker.metrics_port)
            except OSError as exc:
                lines.append(f"worker {worker.metrics_port}: no metrics ({exc})")
                continue
            counters = {
                f"{name}{dict(labels)}": value
                for (name, labels), value in samples.items()
                if name.startswith(
                    ("parcelflow_duplicate", "parcelflow_invalid", "parcelflow_late", "parcelflow_events_total")
                )
                and value
            }
            warnings = [
                line for line in worker.log().splitlines() if "WARN" in line or "ERROR" in line or "CRIT" in line
            ]
            lines.append(f"worker {worker.metrics_port}: {counters}; {len(warnings)} warnings, last: {warnings[-5:]}")
        return "\n".join(lines)

    return explain


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
