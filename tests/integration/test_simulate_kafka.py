"""``parcelflow simulate --to kafka`` on the real broker sends exactly what the files of the same seed hold."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pytest

from streams.events import InvalidEvent, Reason, ScanEvent
from streams.kafka.codec import Codec
from streams.kafka.topics import Source, Topics
from tests.support.broker import unique_name
from tests.support.pipeline import read_all
from tests.support.simulation import read_jsonl_dir
from tests.support.workers import cli

pytestmark = pytest.mark.broker

RUN = [
    "--seed", "12", "--duration", "90m", "--scale", "0.02", "--disorder", "0.02", "--late", "0.01",
    "--late-delay", "600", "--corrupt", "0.01",
]  # fmt: skip


def read_topic(bootstrap: str, topic: str) -> list[tuple[bytes, bytes, int, int]]:
    """Every record of a topic as (key, value, timestamp, partition)."""
    return [(r.key, r.value, r.timestamp, r.partition) for r in read_all(bootstrap, [topic])]


def test_simulate_to_kafka_sends_what_the_files_hold(kafka_bootstrap: str, tmp_path: Path) -> None:
    prefix = unique_name("sim")
    sent = cli(
        "simulate", "--to", "kafka", "--bootstrap", kafka_bootstrap, "--prefix", prefix,
        "--truth", str(tmp_path / "kafka-truth.json"), *RUN, timeout=300,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    assert f"sent to {prefix}.scans.* on {kafka_bootstrap}" in sent.stderr
    written = cli("simulate", "--to", "jsonl", "--out", str(tmp_path / "files"), *RUN)
    assert written.returncode == 0, written.stderr
    assert (tmp_path / "kafka-truth.json").read_bytes() == (tmp_path / "files" / "truth.json").read_bytes()

    files = read_jsonl_dir(tmp_path / "files")
    codec = Codec()
    topics = Topics(prefix)
    reasons: Counter[Reason] = Counter()
    assert sum(len(f.events) for f in files.values()) > 5000
    for source in Source:
        records = read_topic(kafka_bootstrap, topics.source(source))
        expected = files[source]
        assert len(records) == len(expected.events) + expected.bad
        by_key: dict[bytes, list[ScanEvent]] = defaultdict(list)
        partition_of_key: dict[bytes, int] = {}
        bad = 0
        for key, value, timestamp, partition in records:
            assert partition_of_key.setdefault(key, partition) == partition  # one key, one partition
            try:
                event = codec.decode(value, source)
            except InvalidEvent as exc:
                bad += 1
                reasons[exc.reason] += 1
                continue
            assert key == event.key.encode() and timestamp == event.event_time_ms
            by_key[key].append(event)
        assert bad == expected.bad
        assert Counter(e for events in by_key.values() for e in events) == Counter(expected.events)
        wanted: dict[bytes, list[ScanEvent]] = defaultdict(list)
        for event in expected.events:
            wanted[event.key.encode()].append(event)
        assert by_key == wanted  # per key, the same order as in the file
    assert {Reason.UNDECODABLE, Reason.UNKNOWN_HUB} <= set(reasons)
