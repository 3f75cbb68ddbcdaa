"""Faust agents: thin loops that call the pure core and update tables, topics and metrics.

``count_scans`` reads the three source topics: it decodes and validates (dead-lettering what is
bad), counts, and forwards every parcel scan, re-keyed by hub, with its source partition and
offset. ``aggregate_hubs`` reads that by-hub topic and runs the hub aggregator on a table whose
changelog partition is the by-hub partition of the hub.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

import faust
from faust.types import TP, TableT

from streams.aggregate import HubAggregator, Limits
from streams.codec import Codec, ThroughputCodec
from streams.events import ScanEvent
from streams.intake import Rejected, deadletter_headers, intake
from streams.metrics import Metrics
from streams.observation import Observation, decode_batch, encode_batch, observe
from streams.settings import Settings
from streams.topology import Source, Topics
from streams.windows import WindowLimits

BATCH_SIZE = 1000
BATCH_WITHIN_SECONDS = 0.2
LAG_INTERVAL_SECONDS = 5.0
TICK_INTERVAL_SECONDS = 2.0


class TableStore:
    """One partition of a Faust table as the aggregator's key-value store.

    Writes go to the local store and to the changelog partition given explicitly: the batch
    being processed may hold events of several partitions, so Faust's "current event" cannot
    tell which one a key belongs to. With the RocksDB store the partition's own database is used
    for the same reason.
    """

    def __init__(self, table: TableT[bytes, bytes], partition: int) -> None:
        self.table = table
        self.partition = partition
        store = table.data
        self._db = store._db_for_partition(partition) if hasattr(store, "_db_for_partition") else None  # noqa: SLF001
        self._key_index: dict[bytes, int] = getattr(store, "_key_index", {})  # Faust's key → partition map

    def get(self, key: bytes) -> bytes | None:
        """Current value of ``key``."""
        value = self.table.data.get(key) if self._db is None else self._db.get(key)
        return None if value is None else bytes(value)

    def put(self, key: bytes, value: bytes) -> None:
        """Set ``key`` locally and in its changelog partition."""
        if self._db is None:
            self.table.data[key] = value
        else:
            self._db.put(key, value)
            self._key_index[key] = self.partition  # as Faust's own _set does
        self.table.send_changelog(self.partition, key, value)

    def delete(self, key: bytes) -> None:
        """Remove ``key`` locally and tombstone it in the changelog."""
        if self._db is None:
            self.table.data.pop(key, None)
        else:
            self._db.delete(key)
            self._key_index.pop(key, None)
        self.table.send_changelog(self.partition, key, None, value_serializer="raw")

    def keys(self) -> Iterable[bytes]:
        """Keys held locally for this partition (memory store: every partition this worker owns)."""
        if self._db is None:
            return list(self.table.data.keys())
        return [bytes(k) for k in self._db.keys()]


def _raw_topic(app: faust.App, *names: str, partitions: int | None = None) -> faust.TopicT:
    return app.topic(
        *names,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )


def register_agents(app: faust.App, settings: Settings, codec: Codec, metrics: Metrics) -> None:
    """Register the intake and hub aggregation agents, the state table and the lag timer."""
    topics = Topics(settings.topic_prefix)
    source_of_topic = topics.sources
    source_topic = _raw_topic(app, *source_of_topic)
    deadletter = _raw_topic(app, topics.deadletter)
    by_hub = _raw_topic(app, topics.by_hub(settings.app_id), partitions=settings.partitions)
    throughput = _raw_topic(app, topics.throughput)
    table = app.Table(
        "hub-state",
        key_type=bytes,  # bytes keys and values: Faust (de)serialises them as raw
        value_type=bytes,
        partitions=settings.partitions,
        options={"driver": "rocksdict"},  # used when the app's store is rocksdb://
    )
    limits = Limits(
        WindowLimits(grace_ms=settings.grace_seconds * 1000, retention_ms=settings.retention_seconds * 1000)
    )
    aggregator = HubAggregator(limits)
    throughput_codec = ThroughputCodec()
    processed: dict[TP, int] = {}
    hub_partition: dict[str, int] = {}  # by-hub partition of each hub this worker aggregates

    async def count_scans(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        """Decode each record; count valid scans, forward parcel scans by hub, dead-letter the rest."""
        batches = stream.take_events(BATCH_SIZE, within=BATCH_WITHIN_SECONDS)  # type: ignore[attr-defined]
        async for batch in batches:
            valid: list[tuple[ScanEvent, Source]] = []
            by_hub_batch: dict[str, list[Observation]] = {}
            for event in batch:
                message = event.message
                source = source_of_topic[message.topic]
                processed[message.tp] = message.offset
                result = intake(codec, message.value, source)
                if isinstance(result, Rejected):
                    metrics.invalid.labels(source.value, result.reason.value).inc()
                    await deadletter.send(
                        key=message.key,
                        value=message.value,
                        headers=deadletter_headers(message.topic, message.partition, message.offset, result),
                    )
                    continue
                valid.append((result, source))
                if result.parcel_id is not None:
                    obs = observe(result, source, message.partition, message.offset)
                    by_hub_batch.setdefault(result.hub, []).append(obs)
            for hub, observations in by_hub_batch.items():
                await by_hub.send(key=hub.encode(), value=encode_batch(observations))
            metrics.observe(valid, time.time())
            yield None

    async def aggregate_hubs(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        """Apply parcel scans to each hub's windows and visits; emit the windows that closed."""
        batches = stream.take_events(BATCH_SIZE, within=BATCH_WITHIN_SECONDS)  # type: ignore[attr-defined]
        async for batch in batches:
            by_partition: dict[int, list[Observation]] = {}
            for event in batch:
                by_partition.setdefault(event.message.partition, []).extend(decode_batch(event.message.value))
            for partition, observations in by_partition.items():
                for obs in observations:
                    hub_partition[obs.hub] = partition
                result = aggregator.process(TableStore(table, partition), observations, time.time())
                for window in result.closed:
                    await throughput.send(
                        key=window.key.encode(),
                        value=throughput_codec.encode(window),
                        timestamp=window.start_ms / 1000,
                    )
                metrics.record_batch(result)
            yield None

    async def finalise_dwell() -> None:
        """Observe dwell that became final because source partitions fell silent."""
        stores = {hub: TableStore(table, partition) for hub, partition in hub_partition.items()}
        metrics.record_batch(aggregator.tick(stores.get, time.time()))

    async def report_lag() -> None:
        """Set the consumer lag of the source partitions this worker owns."""
        consumer = app.consumer
        lag: dict[str, int] = {source.value: 0 for source in source_of_topic.values()}
        for tp in consumer.assignment():
            source = source_of_topic.get(tp.topic)
            if source is None:
                continue
            highwater = consumer.highwater(tp)
            if highwater is not None:
                done = processed.get(tp)
                lag[source.value] += max(0, highwater - (done + 1 if done is not None else 0))
        for source_name, value in lag.items():
            metrics.consumer_lag.labels(source_name).set(value)

    async def on_revoked(sender: object, revoked: set[TP], **kwargs: Any) -> None:
        # Indexes of hubs on revoked partitions would go stale; they are rebuilt from the table.
        metrics.forget_hubs(aggregator.hubs)
        aggregator.forget(list(aggregator.hubs))
        hub_partition.clear()
        for tp in revoked:
            processed.pop(tp, None)

    app.agent(source_topic, name="count_scans")(count_scans)
    app.agent(by_hub, name="aggregate_hubs")(aggregate_hubs)
    app.timer(LAG_INTERVAL_SECONDS)(report_lag)
    app.timer(TICK_INTERVAL_SECONDS)(finalise_dwell)
    app.on_partitions_revoked.connect(on_revoked)  # type: ignore[arg-type]
