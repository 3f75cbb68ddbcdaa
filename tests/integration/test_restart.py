"""A worker restarted on its data directory reports the backlog it recovered, before any new scan."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from streams.settings import Settings
from tests.support.broker import unique_name
from tests.support.network import HUBS
from tests.support.pipeline import pipeline_done, publish_rows
from tests.support.workers import WorkerProcess, scrape, total, wait_for

pytestmark = pytest.mark.broker

START_MS = 1_795_000_000_000 - 1_795_000_000_000 % 3_600_000
PARCELS = 900


def arrivals(parcels: int) -> list[dict[str, object]]:
    """One ULD breakdown per parcel, spread over the hubs: every parcel is in a hub, none has left."""
    return [
        {
            "event_time": START_MS + i * 1000,
            "hub": HUBS[i % len(HUBS)],
            "read_point": "BD-1",
            "event_type": "ULD_BREAKDOWN",
            "parcel_id": f"R{i:06d}",
            "weight_grams": 500,
            "flight_id": "CK1",
            "event_id": f"r{i}",
        }
        for i in range(parcels)
    ]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
def test_a_restarted_worker_reports_the_whole_backlog_without_new_scans(
    kafka_bootstrap: str, tmp_path: Path, sig: int
) -> None:
    prefix = unique_name("restart")
    settings = Settings(bootstrap=kafka_bootstrap, topic_prefix=prefix, app_id=prefix, partitions=3)
    publish_rows(settings, arrivals(PARCELS))

    def backlog(worker: WorkerProcess) -> float:
        return total(scrape(worker.metrics_port), "parcelflow_backlog_parcels")

    first = WorkerProcess(kafka_bootstrap, prefix, tmp_path, data_dir=tmp_path / "state")
    restarted = WorkerProcess(kafka_bootstrap, prefix, tmp_path, data_dir=tmp_path / "state")
    try:
        first.start()
        wait_for(lambda: pipeline_done(kafka_bootstrap, prefix), timeout=240, what="the first worker", proc=first)
        wait_for(lambda: backlog(first) == PARCELS, timeout=60, what="the first worker's backlog", proc=first)
        first.stop(sig)
        restarted.start()  # nothing new is published: every partition's state comes from its table
        wait_for(
            lambda: backlog(restarted) == PARCELS, timeout=120, what="the restarted worker's backlog", proc=restarted
        )
        for hub in HUBS:
            assert total(scrape(restarted.metrics_port), "parcelflow_backlog_parcels", hub=hub) == PARCELS / len(HUBS)
    finally:
        first.stop()
        restarted.stop()
