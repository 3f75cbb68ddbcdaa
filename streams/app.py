"""The Faust app, built from settings at the entry point (nothing happens at import time)."""

from __future__ import annotations

import faust
from prometheus_client import CollectorRegistry

from streams.agents import register_agents
from streams.codec import Codec
from streams.metrics import Metrics
from streams.settings import Settings


def build_app(settings: Settings, registry: CollectorRegistry | None = None) -> tuple[faust.App, Metrics]:
    """Create the Faust app with its agents, and the metrics they update."""
    metrics = Metrics.create(registry if registry is not None else CollectorRegistry())
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
    )
    register_agents(app, settings, Codec(), metrics)
    return app, metrics
