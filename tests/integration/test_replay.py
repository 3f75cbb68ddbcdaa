"""Archive a simulated live period, replay it from the archive and from the topics, compare."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from streams.aggregate.windows import totals
from streams.durations import UNLIMITED
from streams.kafka.admin import ensure_topics, topic_retentions
from streams.kafka.topics import Topics
from streams.network import HUBS
from streams.replay.archive import ArchiveStats, archived_files, read_file, run_archiver
from streams.replay.republish import ReplayRecord, republish, topic_records
from streams.replay.run import clean_namespace, namespace_sizes, run_replay
from streams.settings import Settings
from streams.simulate import SimConfig, simulate_to_kafka
from tests.support.broker import days_ago_ms, free_port, free_ports, unique_name
from tests.support.paths import REPO
from tests.support.pipeline import pipeline_done, publish_rows, read_windows
from tests.support.workers import WorkerProcess, wait_for

pytestmark = pytest.mark.broker

# History from 30 days ago: older than Kafka's default 7-day retention, and the session broker checks
# retention every second, so a namespace topic that could lose old records fails this test.
CONFIG = SimConfig(
    start_ms=days_ago_ms(30), seed=5, duration_s=2 * 3600, scale=0.05, disorder=0.02, late=0.005, corrupt=0.002
)


async def _archive_everything(bootstrap: str, prefix: str, root: Path, expected: int) -> ArchiveStats:
    stop = asyncio.Event()
    seen = 0

    def on_segment(stats: object) -> None:
        nonlocal seen
        seen = stats.records + stats.rejected  # type: ignore[attr-defined]
        if seen >= expected:
            stop.set()

    task = asyncio.create_task(
        run_archiver(
            bootstrap, prefix, root, f"{prefix}-archive", segment_seconds=1.0, stop=stop, on_segment=on_segment
        )
    )
    await asyncio.wait_for(stop.wait(), timeout=120)
    return await task


def test_replays_from_archive_and_from_topics_equal_live(
    kafka_bootstrap: str, start_worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    live = unique_name("live")
    settings = Settings(
        bootstrap=kafka_bootstrap,
        topic_prefix=live,
        app_id=live,
        partitions=3,
        data_dir=tmp_path / "data",
        targets_dir=tmp_path / "targets",
    )
    result = asyncio.run(simulate_to_kafka(CONFIG, settings, tmp_path / "truth.json"))
    # End of the period: one departure per hub two hours later moves every watermark past it, so
    # every window of the period is closed (which windows near the end closed would otherwise
    # depend on how far the watermark got while partitions interleaved).
    closed_by = publish_rows(
        settings,
        [
            {
                "event_time": CONFIG.end_ms + 7_200_000,
                "hub": hub,
                "event_type": "LOADED",
                "parcel_id": f"END-{hub}",
                "weight_grams": 1,
                "trailer_id": f"{hub}-END",
                "destination": "PAR",
                "read_point": "DOCK-1",
                "event_id": f"end-{hub}",
            }
            for hub in HUBS
        ],
    )
    worker = start_worker(live)
    wait_for(
        lambda: pipeline_done(kafka_bootstrap, live),
        timeout=240,
        what="the live worker to catch up",
        proc=worker,
    )
    live_windows = totals(read_windows(kafka_bootstrap, Topics(live).throughput))
    assert len(live_windows) > 100

    archived = asyncio.run(_archive_everything(kafka_bootstrap, live, tmp_path / "archive", result.records + closed_by))
    # Raw history: everything that decodes is archived (invalid content included); only
    # undecodable bytes are left to the dead-letter topic.
    assert archived.records + archived.rejected == result.records + closed_by
    assert 0 < archived.rejected <= result.truth["events"]["corrupt"]

    names = [f"a{unique_name('x')[-10:]}", f"t{unique_name('x')[-10:]}"]
    try:
        run_replay(
            settings,
            names[0],
            archive_dir=tmp_path / "archive",
            from_ms=None,
            to_ms=None,
            source_prefix=live,
            speed=None,
            on_error="stop",
            workers=1,
            metrics_port=free_port(),
        )
        run_replay(
            settings,
            names[1],
            archive_dir=None,
            from_ms=CONFIG.start_ms,
            to_ms=None,
            source_prefix=live,
            speed=None,
            on_error="stop",
            workers=2,
            metrics_port=free_ports(2),
        )
        for name in names:
            replay = Topics(f"replay.{name}")
            replayed = totals(read_windows(kafka_bootstrap, replay.throughput))
            assert replayed == live_windows, name
            kept = asyncio.run(topic_retentions(settings, [*replay.sources, replay.by_hub(f"replay-{name}")]))
            assert set(kept.values()) == {UNLIMITED} and len(kept) == 4, kept
        assert set(names) <= set(asyncio.run(namespace_sizes(settings)))
    finally:
        for name in names:
            asyncio.run(clean_namespace(settings, name))
    assert not set(names) & set(asyncio.run(namespace_sizes(settings)))


def test_paced_replay_keeps_the_spacing_of_events(kafka_bootstrap: str) -> None:
    source, target = unique_name("pace"), unique_name("paced")
    settings = Settings(bootstrap=kafka_bootstrap, topic_prefix=source, partitions=3)
    start = CONFIG.start_ms
    offsets_s = [0, 1, 5, 9, 10, 30, 31, 60, 90, 119, 120]
    publish_rows(
        settings,
        [
            {
                "event_time": start + s * 1000,
                "hub": "LGG",
                "event_type": "SORTED",
                "parcel_id": f"P{i}",
                "weight_grams": 500,
                "sorter_id": "LGG-XB1",
                "read_point": "SCAN-1",
                "event_id": f"e{i}",
            }
            for i, s in enumerate(offsets_s)
        ],
    )
    asyncio.run(ensure_topics(Settings(bootstrap=kafka_bootstrap, topic_prefix=target, partitions=3)))
    sent: list[tuple[ReplayRecord, float]] = []
    asyncio.run(
        republish(
            topic_records(kafka_bootstrap, source, None, None),
            kafka_bootstrap,
            target,
            60.0,
            on_sent=lambda record, at: sent.append((record, at)),
        )
    )
    assert len(sent) == len(offsets_s)
    first_ts, first_at = sent[0][0].timestamp_ms, sent[0][1]
    drift = [abs((at - first_at) - (r.timestamp_ms - first_ts) / 1000 / 60) for r, at in sent]
    assert max(drift) < 0.1, drift  # stated tolerance: 100 ms on a 2 s replay of 2 minutes at 60x


def test_archiver_killed_mid_run_leaves_no_gap_and_no_duplicate(kafka_bootstrap: str, tmp_path: Path) -> None:
    prefix = unique_name("arch")
    settings = Settings(bootstrap=kafka_bootstrap, topic_prefix=prefix, partitions=3)
    result = asyncio.run(
        simulate_to_kafka(
            SimConfig(start_ms=days_ago_ms(30), seed=9, duration_s=3 * 3600, scale=0.05),
            settings,
            tmp_path / "truth.json",
        )
    )
    root = tmp_path / "archive"
    command = [
        sys.executable,
        "-m",
        "streams.cli",
        "archive",
        str(root),
        "--bootstrap",
        kafka_bootstrap,
        "--prefix",
        prefix,
        "--segment-seconds",
        "0.3",
    ]
    first = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(list(archived_files(root))) >= 3, timeout=60, what="a few archived segments")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    second = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:

        def complete() -> bool:
            try:
                return sum(1 for f in archived_files(root) for _ in read_file(f.path)) >= result.records
            except FileNotFoundError:
                return False  # a segment being replaced or an uncommitted one being deleted: look again

        wait_for(complete, timeout=120, what="the restarted archiver to finish")
        time.sleep(1.5)  # a few more segment rounds: nothing may be added twice
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    positions = [(r["partition"], r["offset"], f.source) for f in archived_files(root) for r in read_file(f.path)]
    assert len(positions) == len(set(positions)) == result.records
    for source in {s for _p, _o, s in positions}:
        for partition in {p for p, _o, s in positions if s is source}:
            offsets = sorted(o for p, o, s in positions if s is source and p == partition)
            assert offsets == list(range(offsets[0], offsets[0] + len(offsets))) and offsets[0] == 0
