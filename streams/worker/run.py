"""Running a worker process: topics, the /metrics endpoint, then the Faust worker loop."""

from __future__ import annotations

import asyncio

import faust
import uvloop
from prometheus_client import CollectorRegistry, ProcessCollector, disable_created_metrics
from rich.console import Console

from streams.kafka.admin import ensure_topics
from streams.settings import Settings
from streams.worker.app import build_app
from streams.worker.health import Health, serve


def run_worker(settings: Settings, console: Console) -> None:
    """Create missing topics, serve /metrics, and run the Faust worker until stopped."""
    asyncio.run(ensure_topics(settings))
    # Faust runs on the loop set here (the worker does not go through Faust's CLI and its --loop).
    asyncio.set_event_loop(uvloop.new_event_loop() if settings.event_loop == "uvloop" else asyncio.new_event_loop())
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created series only add noise to every dashboard query
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)  # process_cpu_seconds_total, process_resident_memory_bytes, ...
    health = Health()
    app, _metrics = build_app(settings, registry, health)
    serve(registry, health, settings.metrics_host, settings.metrics_port)
    console.print(
        f"metrics at http://{settings.metrics_host}:{settings.metrics_port}/metrics (readiness: /ready); "
        f"consuming {settings.topic_prefix}.scans.* from {settings.bootstrap} (namespace {settings.namespace})",
        highlight=False,
        markup=False,
    )
    faust.Worker(app, loglevel=settings.log_level, quiet=True).execute_from_commandline()
