"""The Faust app, built from settings at the entry point (nothing happens at import time)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from prometheus_client import CollectorRegistry

from streams.ingest.source_intake import COMMIT_INTERVAL_SECONDS
from streams.kafka.codec import Codec
from streams.settings import Settings
from streams.worker.health import Health
from streams.worker.metrics import Metrics
from streams.worker.pipeline import Pipeline

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 8 * 1024 * 1024
"""Producer request limit: a dead letter keeps a record as big as any a default topic accepts, whole."""


class _Consumer(faust_aiokafka.Consumer):
    """Faust's consumer, but a stream partition with nothing committed is read again from its start.

    After a rebalance Faust seeks each stream partition to its committed offset, which re-reads
    what its fetcher fetched and dropped while its flow was suspended. aiokafka's
    ``seek_to_committed`` leaves a partition with no committed offset (or 0) where the fetch got
    to, so those records were lost: internal records forwarded by another worker while
    this one recovered, right after a pipeline started.
    """

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed = await super().seek_to_committed()
        acking = self.app.topics.acks_enabled_for  # stream topics; changelogs are Faust's recovery's
        for tp, offset in committed.items():
            if not offset and acking(tp.topic):
                log.info("%s[%d] has no committed offset: read from its start", tp.topic, tp.partition)
                await self.seek(tp, 0)  # below the log start, aiokafka resets to the earliest
        return committed


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


def build_app(
    settings: Settings, registry: CollectorRegistry | None = None, health: Health | None = None
) -> tuple[faust.App, Metrics]:
    """Create the Faust app with its agents, and the metrics they update."""
    metrics = Metrics.create(registry if registry is not None else CollectorRegistry())
    health = health if health is not None else Health()
    metrics.worker_ready.set_function(health.ready)
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.bootstrap}",
        store=settings.store,
        datadir=str(settings.data_dir / settings.app_id),
        web_enabled=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        key_serializer="raw",
        value_serializer="raw",
        table_standby_replicas=0,
        # A worker killed with SIGKILL holds its partitions until its session times out (Faust's
        # default is 60 s); 10 s with 3 s heartbeats lets a replacement take over quickly.
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=3.0,
        # The intake's cadence, not Faust's 2.8 s: records pass two internal topics, and each
        # stage's commit trails the one before, so what is done is committed about a second later.
        broker_commit_interval=COMMIT_INTERVAL_SECONDS,
        producer_max_request_size=MAX_REQUEST_BYTES,
        # Faust logs a partition it stopped fetching (faust-streaming#175/#629) after this long;
        # its default, 5 minutes, hides such a stall for that long.
        stream_processing_timeout=60.0,
    )
    app.transport = _Transport(app.conf.broker_consumer, app)
    Pipeline(app, settings, Codec(), metrics, health).register()
    return app, metrics
