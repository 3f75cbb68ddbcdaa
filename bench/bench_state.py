"""Worker memory with many parcels in flight, and recovery time after SIGKILL.

    .venv/bin/python -m bench.bench_state [--parcels 1000000]

Publishes one ULD_BREAKDOWN per parcel (so every parcel is in a hub and none departed), runs a
worker until it committed everything, reads its RSS, kills it with SIGKILL, starts a new one, and
times how long until the new worker reports the full backlog again (table recovered from the
changelog and processing resumed).
"""

from __future__ import annotations

import argparse
import signal
import tempfile
import time
from pathlib import Path

from streams.network import HUBS
from streams.settings import Settings
from tests.support.broker import unique_name
from tests.support.pipeline import pipeline_done, publish_rows
from tests.support.workers import WorkerProcess, scrape, total, wait_for

from .common import broker, rss_mib, save, table

T0 = 1_795_000_000_000


def breakdowns(parcels: int, start: int = 0) -> list[dict[str, object]]:
    """One first scan per parcel, spread over the hubs and over an hour of event time."""
    rows = []
    for n, i in enumerate(range(start, start + parcels)):
        hub = HUBS[i % len(HUBS)]
        at = T0 + (3_600_000 if start else 0) + (n * 3_600_000) // max(parcels, 1)
        rows.append(
            {
                "event_time": at,
                "hub": hub,
                "read_point": "BD-1",
                "event_type": "ULD_BREAKDOWN",
                "parcel_id": f"M{i:08d}",
                "weight_grams": 400 + i % 900,
                "flight_id": f"CK{i % 97}",
                "event_id": f"m{i}",
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--parcels", type=int, default=1_000_000)
    args = parser.parse_args()
    with broker() as bootstrap, tempfile.TemporaryDirectory(prefix="parcelflow-bench-") as work:
        prefix = unique_name("state")
        settings = Settings(bootstrap=bootstrap, topic_prefix=prefix, app_id=prefix, partitions=6)
        began = time.monotonic()
        publish_rows(settings, breakdowns(args.parcels))
        publish_seconds = time.monotonic() - began

        started: list[WorkerProcess] = []

        def start_worker() -> WorkerProcess:
            # A restart on the same host finds its RocksDB state and reads only the changelog's tail.
            process = WorkerProcess(bootstrap, prefix, Path(work), partitions=6, data_dir=Path(work) / "state")
            started.append(process)
            return process.start()

        began = time.monotonic()
        try:
            worker = start_worker()
            wait_for(lambda: pipeline_done(bootstrap, prefix), timeout=3600, what="the worker to catch up", proc=worker)
            process_seconds = time.monotonic() - began
            wait_for(
                lambda: total(scrape(worker.metrics_port), "parcelflow_backlog_parcels") >= args.parcels,
                timeout=120,
                what="the backlog gauges",
                proc=worker,
            )
            assert worker.process is not None
            rss = rss_mib(worker.process.pid)
            worker.stop(signal.SIGKILL)

            began = time.monotonic()
            restarted = start_worker()
            publish_rows(settings, breakdowns(len(HUBS), start=args.parcels))  # one new parcel per hub
            expected = args.parcels + len(HUBS)
            wait_for(
                lambda: total(scrape(restarted.metrics_port), "parcelflow_backlog_parcels") >= expected,
                timeout=600,
                what="the restarted worker to report the whole backlog",
                proc=restarted,
            )
            recovery_seconds = time.monotonic() - began
            assert restarted.process is not None
            rss_after = rss_mib(restarted.process.pid)
        finally:
            for process in started:
                process.stop()
    figures = {
        "parcels_in_flight": args.parcels,
        "publish_events_per_second": round(args.parcels / publish_seconds),
        "worker_events_per_second": round(args.parcels / process_seconds),
        "worker_rss_mib": round(rss, 1),
        "recovery_seconds": round(recovery_seconds, 1),
        "restarted_worker_rss_mib": round(rss_after, 1),
    }
    print(table([(k, str(v)) for k, v in figures.items()]))
    print(f"targets: RSS <= 1024 MiB with 1M parcels in flight; recovery <= 30 s. Saved {save('state', figures)}")


if __name__ == "__main__":
    main()
