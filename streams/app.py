"""The Faust app, built from settings at the entry point (nothing happens at import time)."""

from __future__ import annotations

import faust
from prometheus_client import CollectorRegistry

from streams.agents import register_agents
from streams.codec import Codec
from streams.health import Health
from streams.metrics import Metrics
from streams.settings import Settings

MAX_REQUEST_BYTES = 8 * 1024 * 1024
"""Producer request limit: a dead letter keeps a record as big as any a default topic accepts, whole."""


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
        producer_max_request_size=MAX_REQUEST_BYTES,
        # Faust logs a partition it stopped fetching (faust-streaming#175/#629) after this long;
        # its default, 5 minutes, hides such a stall for that long.
        stream_processing_timeout=60.0,
    )
    register_agents(app, settings, Codec(), metrics, health)
    return app, metrics
