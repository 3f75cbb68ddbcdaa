"""The worker's :class:`Pipeline`: Faust agents, thin loops over the pure core that update tables, topics, metrics.

The source intake (:mod:`streams.ingest.source_intake`, off Faust's per-message path) reads the three
source topics in batches and hands them to ``forward``: it decodes and validates (dead-lettering
what is bad), counts, and forwards every parcel scan, with its source partition and offset, to the
by-partition topic: partition ``n`` takes partition ``n`` of every source. Two stages follow, so
that no hub — one carries over half the traffic — caps how far the work spreads:

1. ``aggregate_partitions`` runs the first stage (:mod:`streams.aggregate.aggregator`) per by-partition
   partition: visits, dwell, backlog, de-duplication, lateness, and each hub's window partials,
   sent as :class:`~streams.aggregate.windows.Partial` records to the by-hub topic (keyed by hub).
2. ``merge_hubs`` merges them per hub (:mod:`streams.aggregate.partials`), closes the windows on the hub's
   watermark and emits them to the throughput topic.

Each stage keeps its state in a Faust table co-partitioned with its input topic, and the last
input offset it applied beside it; each sends its output before it writes its state, so a crash
in between re-applies a batch whose output is already out (the next stage takes it once).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import faust
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from faust.types import TP, AppT, TableT

from streams.aggregate.aggregator import (
    BatchResult,
    HubAggregator,
    Limits,
    StagedStore,
    applied_key,
    in_sequence,
    process_isolating_failures,
)
from streams.aggregate.observation import Observation, decode_batch, encode, join_batch
from streams.aggregate.partials import HubMerge, decode_partial, encode_partial
from streams.aggregate.windows import Partial, WindowLimits
from streams.events import Reason, ScanEvent
from streams.ingest.ahead import Ahead
from streams.ingest.intake import Rejected, admit, deadletter_headers
from streams.ingest.source_intake import Batch, Delivery, SourceIntake
from streams.kafka import clients
from streams.kafka.admin import GroupOffsets, partition_counts, purge_group_partitions
from streams.kafka.codec import Codec, ThroughputCodec
from streams.kafka.registry import WriterSchemas
from streams.kafka.topics import Source, Topics, copartitioning_problem, first_stage_partition
from streams.settings import Settings
from streams.worker.health import Health, exit_after_failure
from streams.worker.metrics import Metrics
from streams.worker.table_store import TableStore

BATCH_SIZE = 1000
BATCH_WITHIN_SECONDS = 0.2
LAG_INTERVAL_SECONDS = 5.0
AHEAD_INTERVAL_SECONDS = 0.5
"""How often the first stage's committed offsets are read, to tell how far the intake is ahead."""
TICK_INTERVAL_SECONDS = 2.0
HEARTBEAT_SECONDS = 1.0
DEADLETTER_MAX_BYTES = 7 * 1024 * 1024
"""Key + value kept whole in a dead letter (the topic and producer allow 8 MiB; default topics 1 MB)."""

log = logging.getLogger(__name__)


async def track_topics(app: AppT, names: list[str]) -> None:
    """Track every topic the worker writes to in the producer's metadata refreshes (why: ``clients.track_topics``)."""
    await clients.track_topics(clients.faust_kafka_producer(app), names)


def _offset(raw: bytes | None) -> int | None:
    return None if raw is None else int(raw)


def _raw_topic(app: faust.App, *names: str, partitions: int | None = None) -> faust.TopicT:
    return app.topic(
        *names,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )


def _table(app: faust.App, name: str, partitions: int) -> TableT[bytes, bytes]:
    return app.Table(
        name,
        key_type=bytes,  # bytes keys and values: Faust (de)serialises them as raw
        value_type=bytes,
        partitions=partitions,
        options={"driver": "rocksdict"},  # used when the app's store is rocksdb://
    )


class Pipeline:
    """The worker's intake, its two aggregation stages, their tables, the timers and the heartbeat.

    Built on a Faust app (its topics and tables are declared on it at once); :meth:`register`
    adds the agents, the intake task and the timers. What the stages share between batches (the
    first stage's aggregators, the merge, the hubs whose gauges were set, the intake's progress)
    lives in attributes; what must survive a restart lives in the two tables.
    """

    def __init__(self, app: faust.App, settings: Settings, codec: Codec, metrics: Metrics, health: Health) -> None:
        self.app = app
        self.settings = settings
        self.codec = codec
        self.metrics = metrics
        self.health = health
        self.topics = topics = Topics(settings.topic_prefix)
        self.source_of_topic = topics.sources
        self.deadletter = _raw_topic(app, topics.deadletter)
        self.by_partition_name = topics.by_partition(settings.app_id)
        self.by_partition = _raw_topic(app, self.by_partition_name, partitions=settings.partitions)
        self.by_hub_name = topics.by_hub(settings.app_id)
        self.by_hub = _raw_topic(app, self.by_hub_name, partitions=settings.partitions)
        self.throughput = _raw_topic(app, topics.throughput)
        # first stage: visits and window partials per partition
        self.parcels_table = _table(app, "partition-state", settings.partitions)
        self.hubs_table = _table(app, "hub-windows", settings.partitions)  # second stage: merged windows per hub
        self.limits = Limits(
            WindowLimits(grace_ms=settings.grace_seconds * 1000, retention_ms=settings.retention_seconds * 1000)
        )
        self.aggregators: dict[int, HubAggregator] = {}  # first stage, per by-partition partition
        self.merge = HubMerge(self.limits.windows)
        self.hubs_seen: set[str] = set()  # hubs whose gauges this worker set
        self.max_future_ms = settings.max_future_seconds * 1000
        self.throughput_codec = ThroughputCodec()
        # no registry: Confluent records are undecodable
        self.schemas = WriterSchemas.from_settings(settings, health)
        self.processed: dict[TopicPartition, int] = {}  # last source offset taken, for the lag
        # (internal topic, partition) -> offset last sought back to
        self.gaps_reported: dict[tuple[str, int], int] = {}
        # scans this intake forwarded that the first stage has not committed
        self.ahead = Ahead(settings.max_ahead_scans)
        self.first_stage_offsets = GroupOffsets(settings.bootstrap, settings.app_id)
        self.intake = SourceIntake(
            settings, list(self.source_of_topic), self.forward, self.intake_revoked, held=lambda: self.ahead.full
        )

    def register(self) -> None:
        """Add the intake task, the two agents, the timers and the revocation handler to the app."""
        app, settings = self.app, self.settings
        app.task(self.consume_sources)
        app.agent(self.by_partition, name="aggregate_partitions")(self.aggregate_partitions)
        app.agent(self.by_hub, name="merge_hubs")(self.merge_hubs)
        app.timer(LAG_INTERVAL_SECONDS)(self.guarded("the lag timer", self.report_lag))
        app.timer(AHEAD_INTERVAL_SECONDS)(self.guarded("the intake's bound timer", self.follow_first_stage))
        app.timer(TICK_INTERVAL_SECONDS)(self.guarded("the dwell timer", self.finalise_dwell))
        app.timer(settings.purge_interval_seconds)(
            self.guarded("the internal topics' purge timer", self.purge_internal)
        )
        app.timer(HEARTBEAT_SECONDS)(self.heartbeat)
        app.on_partitions_revoked.connect(self.on_revoked)  # type: ignore[arg-type]

    async def dead_letter(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None, rejected: Rejected
    ) -> Awaitable[object]:
        """Send a dead letter; the result is its delivery, to await before the record is acked."""
        headers = deadletter_headers(topic, partition, offset, rejected)
        if len(key or b"") + len(value or b"") > DEADLETTER_MAX_BYTES:
            # Bigger than any record a default topic accepts: keep the start, say how big it was.
            headers["original_size"] = str(len(key or b"") + len(value or b"")).encode()
            key, value = (key or b"")[:1024], (value or b"")[: DEADLETTER_MAX_BYTES - 1024]
        return await self.deadletter.send(key=key, value=value, headers=headers)

    async def forward(self, batch: Batch) -> Delivery:
        """Decode each record; count valid scans, forward parcel scans by partition, dead-letter the rest.

        Returns the delivery of every forwarded and dead-lettered record (it raises if one failed):
        the intake commits the batch's offsets only once it is done.
        """
        now = time.time()
        now_ms = int(now * 1000)
        valid: list[tuple[ScanEvent, Source]] = []
        by_partition_batch: dict[int, list[bytes]] = {}
        sent: list[Awaitable[object]] = []
        await self.schemas.prepare(self.codec.schema_ids, [record.value for _tp, record in batch])
        for tp, record in batch:
            source = self.source_of_topic[tp.topic]
            self.processed[tp] = record.offset
            result = admit(self.codec, record.value, source, tp.partition, record.offset, now_ms, self.max_future_ms)
            if isinstance(result, Rejected):
                self.metrics.invalid.labels(source.value, result.reason.value).inc()
                sent.append(
                    await self.dead_letter(tp.topic, tp.partition, record.offset, record.key, record.value, result)
                )
                continue
            valid.append((result.event, source))
            if result.observation is not None:
                partition = first_stage_partition(tp.partition, self.settings.partitions)
                by_partition_batch.setdefault(partition, []).append(result.observation)
        for partition, encoded in by_partition_batch.items():
            joined = join_batch(encoded)
            delivery = await self.by_partition.send(key=str(partition).encode(), value=joined, partition=partition)
            sent.append(self.forwarded(delivery, partition, len(encoded)))
        self.metrics.observe(valid, now)
        return asyncio.gather(*sent)

    async def forwarded(self, delivery: Awaitable[Any], partition: int, scans: int) -> None:
        """Once a by-partition record is on the broker, count its scans as ahead of the first stage."""
        self.ahead.forwarded(partition, (await delivery).offset, scans)

    def intake_revoked(self, revoked: set[TopicPartition]) -> None:
        """Forget the progress of the source partitions the intake gave up."""
        for tp in revoked:
            self.processed.pop(tp, None)

    async def consume_sources(self) -> None:
        """The source intake, for the worker's lifetime (a failure ends the worker)."""
        try:
            await track_topics(
                self.app,
                [
                    self.by_partition_name,
                    self.by_hub_name,
                    self.topics.throughput,
                    self.topics.deadletter,
                    *(t.changelog_topic.get_topic_name() for t in (self.parcels_table, self.hubs_table)),
                ],
            )
            problem = copartitioning_problem(
                await partition_counts(self.settings.bootstrap, list(self.source_of_topic))
            )
            if problem is not None:
                raise RuntimeError(problem)
            await self.intake.run()
        except Exception as exc:  # noqa: BLE001 - a bug or a broker that refuses us: say so and exit
            await self.fail("the source intake", exc)
        finally:
            await self.first_stage_offsets.close()

    def aggregator_of(self, partition: int) -> HubAggregator:
        """The first stage's aggregator of a by-partition partition (its state is read from the table)."""
        aggregator = self.aggregators.get(partition)
        if aggregator is None:
            aggregator = self.aggregators[partition] = HubAggregator(self.limits, partition)
            # Every hub of the partition at once: its parcels count in the backlog before new scans.
            self.report_backlog(aggregator.restore(TableStore(self.parcels_table, partition)).backlog)
        return aggregator

    def report_backlog(self, hubs: Iterable[str]) -> None:
        """Set the backlog gauge of ``hubs``: this worker's parcels in each, over its partitions."""
        backlog = {hub: sum(a.backlog(hub) for a in self.aggregators.values()) for hub in hubs}
        if backlog:
            self.hubs_seen.update(backlog)
            self.metrics.record_batch(BatchResult(backlog=backlog))

    async def aggregate(
        self, partition: int, store: StagedStore, records: list[tuple[int, list[Observation]]], now: float
    ) -> BatchResult:
        """Apply a partition's records; a scan the aggregation fails on (a bug) is dead-lettered."""
        result, failures = process_isolating_failures(self.aggregator_of(partition), store, records, now)
        for failure in failures:
            obs, error = failure.observation, failure.error
            log.error("aggregating a scan at by-partition %d@%d failed: %r", partition, failure.offset, error)
            rejected = Rejected(Reason.UNPROCESSABLE, f"aggregating failed: {type(error).__name__}: {error}")
            self.metrics.invalid.labels(obs.source.value, rejected.reason.value).inc()
            await (
                await self.dead_letter(
                    self.by_partition_name, partition, failure.offset, obs.hub.encode(), encode(obs), rejected
                )
            )
        return result

    async def decode_internal(self, message: Any, decode: Callable[[bytes], Any], what: str) -> Any | None:
        """An internal record's content, or None once it is dead-lettered (not written by parcelflow)."""
        try:
            return decode(message.value)
        except Exception as exc:  # noqa: BLE001 - whatever the bytes hold
            rejected = Rejected(Reason.UNDECODABLE, f"not {what}: {type(exc).__name__}: {exc}")
            await (
                await self.dead_letter(
                    message.topic, message.partition, message.offset, message.key, message.value, rejected
                )
            )
            return None

    async def routed(self, partition: int, message: Any, observations: list[Observation]) -> list[Observation]:
        """The scans that belong to this first-stage partition; the others are dead-lettered as misrouted."""
        partitions = self.settings.partitions
        wrong = [o for o in observations if first_stage_partition(o.partition, partitions) != partition]
        if not wrong:
            return observations
        for obs in wrong:
            rejected = Rejected(
                Reason.MISROUTED, f"scan of source partition {obs.partition} in by-partition partition {partition}"
            )
            self.metrics.invalid.labels(obs.source.value, rejected.reason.value).inc()
            await (
                await self.dead_letter(
                    message.topic, partition, message.offset, obs.hub.encode(), encode(obs), rejected
                )
            )
        return [o for o in observations if first_stage_partition(o.partition, partitions) == partition]

    async def in_order(self, topic: str, partition: int, applied: int | None, messages: list[Any]) -> list[Any]:
        """The messages to apply now: after ``applied``, in offset order, without a gap (see ``in_sequence``).

        Faust's consumer can skip records of an internal topic around a rebalance (and commit past
        them). Then the partition is read again from the first skipped record; if the records are
        gone (deleted before they were applied), that is logged as an error and the rest is applied.
        """
        keep, resume = in_sequence([m.offset for m in messages], applied)
        if resume is not None:
            tp = TP(topic, partition)
            try:
                earliest = (await self.app.consumer.earliest_offsets(tp)).get(tp, 0)
            except Exception as exc:  # noqa: BLE001 - a broker hiccup must not end the worker: read again
                log.warning("%s[%d]: could not read the earliest offset: %s", topic, partition, exc)
                earliest = 0
            if earliest > resume:
                log.error(
                    "%s[%d]: records %d to %d are gone before they were applied", topic, partition, resume, earliest - 1
                )
                self.metrics.internal_gaps.inc()
                keep, resume = in_sequence([m.offset for m in messages], earliest - 1)
            if resume is not None:
                await self.read_again(tp, resume)
        first: dict[int, Any] = {}
        for message in messages:
            first.setdefault(message.offset, message)  # a repeat within the batch is left out
        return [first[offset] for offset in keep]

    async def read_again(self, tp: TP, offset: int) -> None:
        """Seek an internal topic's partition back to the first record its consumer skipped."""
        if self.gaps_reported.get((tp.topic, tp.partition)) != offset:
            self.gaps_reported[(tp.topic, tp.partition)] = offset
            log.warning(
                "%s[%d]: the consumer skipped records from offset %d; reading them again",
                tp.topic,
                tp.partition,
                offset,
            )
            self.metrics.internal_gaps.inc()
        try:
            await clients.faust_read_again(self.app, tp, offset)
        except Exception as exc:  # noqa: BLE001 - e.g. the partition just moved away: its new owner reads it
            log.warning("%s[%d]: could not seek to %d: %s", tp.topic, tp.partition, offset, exc)

    async def batches_in_order(
        self, stream: faust.StreamT[bytes], state: TableT[bytes, bytes], topic: str
    ) -> AsyncIterator[dict[int, tuple[TableStore, list[Any]]]]:
        """Batches of an internal topic: per partition, its table store and the messages to apply, in order."""
        batches = stream.take_events(BATCH_SIZE, within=BATCH_WITHIN_SECONDS)  # type: ignore[attr-defined]
        async for batch in batches:
            messages_of: dict[int, list[Any]] = {}
            for event in batch:
                messages_of.setdefault(event.message.partition, []).append(event.message)
            ready: dict[int, tuple[TableStore, list[Any]]] = {}
            for partition, messages in messages_of.items():
                store = TableStore(state, partition)
                keep = await self.in_order(topic, partition, _offset(store.get(applied_key(partition))), messages)
                if keep:
                    ready[partition] = (store, keep)
            yield ready

    async def written(self, staged: list[tuple[StagedStore, TableStore]], sent: list[Awaitable[object]]) -> None:
        """The output on the broker first, then the state that made it (a failure raises)."""
        await asyncio.gather(*sent)
        for stage, _store in staged:
            stage.commit()
        await asyncio.gather(*(store.written() for _stage, store in staged))

    async def aggregate_partitions(self, stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        """First stage: apply parcel scans to visits and window partials; send the partials by hub."""
        try:
            async for ready in self.batches_in_order(stream, self.parcels_table, self.by_partition_name):
                now = time.time()
                staged: list[tuple[StagedStore, TableStore]] = []
                sent: list[Awaitable[object]] = []
                for partition, (store, messages) in ready.items():
                    records: list[tuple[int, list[Observation]]] = []
                    for message in messages:
                        observations = await self.decode_internal(message, decode_batch, "a by-partition batch")
                        if observations is not None:
                            records.append((message.offset, await self.routed(partition, message, observations)))
                    stage = StagedStore(store)
                    result = await self.aggregate(partition, stage, records, now)
                    # Written last: the position the partition's state has reached.
                    stage.put(applied_key(partition), str(messages[-1].offset).encode())
                    staged.append((stage, store))
                    for partial in result.partials:
                        sent.append(await self.by_hub.send(key=partial.hub.encode(), value=encode_partial(partial)))
                    self.hubs_seen.update(result.backlog)
                    for hub in result.backlog:  # this worker's parcels in the hub, over its partitions
                        result.backlog[hub] = sum(a.backlog(hub) for a in self.aggregators.values())
                    self.metrics.record_batch(result)
                await self.written(staged, sent)
                # Taken: the intake's bound need not wait for the commit (other workers' via their commits).
                self.ahead.committed({p: messages[-1].offset + 1 for p, (_store, messages) in ready.items()})
                yield None
        except Exception as exc:  # noqa: BLE001 - a bug: say so and exit, never stall silently
            await self.fail("the first aggregation stage (aggregate_partitions)", exc)

    async def merge_hubs(self, stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        """Second stage: merge each hub's partials, emit the windows its watermark closed."""
        try:
            async for ready in self.batches_in_order(stream, self.hubs_table, self.by_hub_name):
                staged: list[tuple[StagedStore, TableStore]] = []
                emitted: list[Awaitable[object]] = []
                for partition, (store, messages) in ready.items():
                    partials: list[Partial] = []
                    for message in messages:
                        partial = await self.decode_internal(message, decode_partial, "a window partial")
                        if partial is not None:
                            partials.append(partial)
                    stage = StagedStore(store)
                    result = self.merge.apply(stage, partials)
                    stage.put(applied_key(partition), str(messages[-1].offset).encode())
                    staged.append((stage, store))
                    self.hubs_seen.update(result.watermark_ms)
                    await self.schemas.frame_output(self.throughput_codec, self.topics.throughput)
                    for window in result.closed:
                        emitted.append(
                            await self.throughput.send(
                                key=window.key.encode(),
                                value=self.throughput_codec.encode(window),
                                timestamp=window.start_ms / 1000,
                            )
                        )
                    self.metrics.record_batch(result)
                await self.written(staged, emitted)
                yield None
        except Exception as exc:  # noqa: BLE001 - a bug: say so and exit, never stall silently
            await self.fail("the hub merge agent (merge_hubs)", exc)

    async def fail(self, what: str, exc: Exception) -> None:
        """Readiness false, one clear line, exit non-zero; meanwhile this agent takes nothing more."""
        exit_after_failure(what, exc, self.health, log.critical)
        await asyncio.Event().wait()

    def guarded(self, what: str, timer: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """A timer whose failure ends the worker (Faust would log it and go on without it)."""

        async def run() -> None:
            try:
                await timer()
            except Exception as exc:  # noqa: BLE001 - a bug: say so and exit
                await self.fail(what, exc)

        run.__name__ = run.__qualname__ = timer.__name__  # Faust names timers by their function
        return run

    async def heartbeat(self) -> None:
        """The event loop turns: readiness stays true while this runs."""
        self.health.beat()

    async def finalise_dwell(self) -> None:
        """Observe dwell that became final because source partitions fell silent; report restored backlogs."""
        self.restore_partitions()
        now = time.time()
        for partition, aggregator in list(self.aggregators.items()):
            store = TableStore(self.parcels_table, partition)
            self.metrics.record_batch(aggregator.tick(lambda _hub, store=store: store, now))  # type: ignore[misc]
            await store.written()  # none today: ticks only read

    def restore_partitions(self) -> None:
        """Index the first-stage partitions assigned since the last rebalance, once their tables are recovered.

        So the backlog of their hubs is reported at once, not when each partition next gets a scan.
        """
        app = self.app
        tables: Any = app.tables  # Faust's TableManager; its recovery is not on the abstract type
        if app.rebalancing or not tables.recovery.completed.is_set():
            return  # a table being recovered would be read half-way
        for tp in sorted(app.consumer.assignment()):
            if tp.topic == self.by_partition_name:
                self.aggregator_of(tp.partition)  # restored when first made

    async def report_lag(self) -> None:
        """Set the consumer lag of the source partitions this worker owns."""
        if not self.intake.running:
            return
        consumer = self.intake.consumer
        lag: dict[str, int] = {source.value: 0 for source in self.source_of_topic.values()}
        for tp in consumer.assignment():
            source = self.source_of_topic.get(tp.topic)
            if source is None:
                continue
            highwater = consumer.highwater(tp)
            if highwater is not None:
                done = self.processed.get(tp)
                lag[source.value] += max(0, highwater - (done + 1 if done is not None else 0))
        for source_name, value in lag.items():
            self.metrics.consumer_lag.labels(source_name).set(value)
        self.metrics.intake_held.inc(self.intake.take_held_seconds())

    async def follow_first_stage(self) -> None:
        """Take what the first stage committed off the scans the intake is ahead by (it waits above a bound)."""
        pending = self.ahead.partitions()
        if pending:
            try:
                committed = await self.first_stage_offsets.committed(
                    [TopicPartition(self.by_partition_name, p) for p in pending]
                )
            except KafkaError as exc:  # e.g. the coordinator moving: the next round reads them
                log.warning("could not read the first stage's committed offsets: %s", exc)
                return
            self.ahead.committed({tp.partition: offset for tp, offset in committed.items()})
        self.metrics.intake_ahead.set(self.ahead.scans)

    async def purge_internal(self) -> None:
        """Delete the internal records the group has committed: the topics keep the rest whatever their age."""
        for name, state in ((self.by_partition_name, self.parcels_table), (self.by_hub_name, self.hubs_table)):
            owned = [
                TopicPartition(tp.topic, tp.partition) for tp in self.app.consumer.assignment() if tp.topic == name
            ]
            # Never past what the state has applied: Faust may have committed past records it skipped.
            applied = {tp: _offset(TableStore(state, tp.partition).get(applied_key(tp.partition))) for tp in owned}
            below = {tp: -1 if offset is None else offset + 1 for tp, offset in applied.items()}
            try:
                await purge_group_partitions(self.settings.bootstrap, self.settings.app_id, owned, below)
            except KafkaError as exc:  # e.g. a leader moving: the next round purges it
                log.warning("could not purge %s: %s", name, exc)

    async def on_revoked(self, sender: object, revoked: set[TP], **kwargs: Any) -> None:
        """In-memory state of revoked partitions would go stale; it is read again from the tables."""
        self.metrics.forget_hubs(sorted(self.hubs_seen))
        self.hubs_seen.clear()
        self.aggregators.clear()
        self.merge.forget(self.merge.hubs)
