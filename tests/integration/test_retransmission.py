"""A scan counts once: a file published twice, and scanners retransmitting 5 % of their scans."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from streams.kafka.topics import Topics
from streams.settings import Settings
from tests.support.broker import days_ago_ms, unique_name
from tests.support.flows import Flows, closing_rows, make_flows
from tests.support.network import FLOW
from tests.support.pipeline import assert_windows_equal_truth, publish_rows, wait_consumed
from tests.support.workers import WorkerProcess, cli, scrape, total

pytestmark = pytest.mark.broker


def _counted_flow_scans(flows: Flows) -> int:
    return sum(flows.windows.values()) + sum(flows.late.values())


def test_a_file_published_twice_counts_once(
    kafka_bootstrap: str, start_worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    prefix = unique_name("twice")
    flows = make_flows(seed=51, parcels=2000, start_ms=days_ago_ms(2), disorder=0.05, late=0.01)
    path = tmp_path / "scans.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in flows.rows + closing_rows(flows)))
    for attempt in ("first", "again, as after a partial failure"):
        published = cli("publish", str(path), "--bootstrap", kafka_bootstrap, "--prefix", prefix, timeout=300)
        assert published.returncode == 0, (attempt, published.stderr)
    worker = start_worker(prefix)
    wait_consumed(kafka_bootstrap, prefix, worker)
    assert_windows_equal_truth(kafka_bootstrap, Topics(prefix).throughput, flows)
    samples = scrape(worker.metrics_port)
    repeated = total(samples, "parcelflow_duplicate_events_total", kind="event_id")
    assert repeated == _counted_flow_scans(flows) + len(closing_rows(flows))  # every flow scan of the second copy
    assert total(samples, "parcelflow_duplicate_events_total", kind="redelivery") == 0
    # The second copy comes after the first's end, so it would be late, not in windows: counted once
    # also means it is not counted as late either.
    assert total(samples, "parcelflow_late_events_total") == sum(flows.late.values())


def test_retransmitted_scans_count_once(kafka_bootstrap: str, start_worker: Callable[..., WorkerProcess]) -> None:
    prefix = unique_name("retx")
    settings = Settings(bootstrap=kafka_bootstrap, topic_prefix=prefix, app_id=prefix, partitions=3)
    flows = make_flows(seed=52, parcels=3000, start_ms=days_ago_ms(2), disorder=0.05, late=0.01)
    rng = random.Random(52)
    rows: list[dict[str, object]] = []
    pending: list[tuple[int, dict[str, object]]] = []  # (position to re-send at, row)
    for index, row in enumerate(flows.rows):
        rows.append(row)
        if rng.random() < 0.05:  # the scanner did not get its ack and sends the scan again, a little later
            pending.append((index + rng.randrange(1, 200), row))
        rows.extend(r for at, r in pending if at == index)
        pending = [(at, r) for at, r in pending if at != index]
    rows.extend(r for _at, r in pending)
    retransmitted = len(rows) - len(flows.rows)
    publish_rows(settings, rows + closing_rows(flows))
    worker = start_worker(prefix)
    wait_consumed(kafka_bootstrap, prefix, worker)
    assert_windows_equal_truth(kafka_bootstrap, Topics(prefix).throughput, flows)
    samples = scrape(worker.metrics_port)
    assert retransmitted > 100
    repeated = total(samples, "parcelflow_duplicate_events_total", kind="event_id")
    expected = sum(1 for row in _resent(rows, flows.rows) if row["event_type"] in FLOW)
    assert repeated == expected
    late = total(samples, "parcelflow_late_events_total")
    assert late == sum(flows.late.values())  # a retransmitted late scan is not late twice


def _resent(rows: list[dict[str, object]], originals: list[dict[str, object]]) -> list[dict[str, object]]:
    """The rows sent a second time (same event id as one sent before)."""
    seen: set[object] = set()
    again = []
    for row in rows:
        if row["event_id"] in seen:
            again.append(row)
        seen.add(row["event_id"])
    assert len(originals) == len({r["event_id"] for r in originals})
    return again
