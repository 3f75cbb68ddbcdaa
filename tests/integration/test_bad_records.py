"""One bad scan never stops or blinds the pipeline: a corpus of bad records, then valid scans."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from streams.events import ScanEvent
from streams.kafka.codec import Codec
from streams.kafka.topics import Source, Topics
from streams.settings import Settings
from tests.support.broker import days_ago_ms, unique_name
from tests.support.flows import closing_rows, make_flows
from tests.support.paths import REPO
from tests.support.pipeline import assert_windows_equal_truth, publish_rows, read_all, wait_consumed
from tests.support.workers import WorkerProcess, readiness, scrape, total

pytestmark = pytest.mark.broker

DAY_MS = 86_400_000


def bad_corpus(topics: Topics, now_ms: int) -> list[tuple[str, bytes | None, bytes | None, str]]:
    """(topic, key, value, reason the worker must give) for every kind of bad record."""
    codec = Codec()
    t = now_ms - 3_600_000
    sorted_scan = ScanEvent("b1", t, "LGG", "XB1-I3", "SORTED", "PB1", 480, sorter_id="LGG-XB1", destination="PAR")
    breakdown = ScanEvent("b2", t, "HGH", "BD-1", "ULD_BREAKDOWN", "PB2", 480, flight_id="CK1")
    not_utf8 = codec.encode(dataclasses.replace(sorted_scan, read_point="XXXX")).replace(b"XXXX", b"\xe8\xff\xfe\xfd")
    at = dataclasses.replace
    flight, sorter, truck = (topics.source(s) for s in Source)
    return [
        (sorter, b"k1", b"\x00\x01garbage that is not avro", "undecodable"),
        (flight, b"k2", codec.encode(sorted_scan), "wrong_source"),
        (truck, b"k3", codec.encode(breakdown)[:2] + b"\xff" * 8 + codec.encode(breakdown)[10:], "unknown_schema"),
        (sorter, b"k4", codec.encode(at(sorted_scan, parcel_id=None, weight_grams=None)), "missing_field"),
        (sorter, b"poison", codec.encode(at(sorted_scan, parcel_id="P" * 900_000)), "field_too_long"),
        (sorter, b"k6", codec.encode(at(sorted_scan, read_point="R" * 1_000_000)), "field_too_long"),
        (sorter, b"k7", not_utf8, "undecodable"),
        (sorter, b"k8", codec.encode(at(sorted_scan, event_time_ms=0)), "bad_event_time"),  # 1970
        (sorter, b"k9", codec.encode(at(sorted_scan, event_time_ms=4_070_908_800_000)), "future_event_time"),  # 2099
        (flight, b"k10", codec.encode(at(breakdown, event_time_ms=now_ms + 2 * DAY_MS)), "future_event_time"),
        (truck, b"k11", None, "undecodable"),  # a tombstone: null value
        (truck, b"k12", b"", "undecodable"),
    ]


async def send(
    bootstrap: str, records: list[tuple[str, bytes | None, bytes | None, str]]
) -> list[tuple[str, int, int]]:
    """Send as a foreign producer would: Kafka timestamp = now (the broker refuses far-future ones)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        sent = []
        for topic, key, value, _reason in records:
            meta = await producer.send_and_wait(topic, value=value, key=key)
            sent.append((meta.topic, meta.partition, meta.offset))
        return sent
    finally:
        await producer.stop()


def test_bad_records_are_dead_lettered_and_valid_scans_still_equal_the_truth(
    kafka_bootstrap: str, start_worker: Callable[..., WorkerProcess]
) -> None:
    prefix = unique_name("bad")
    topics = Topics(prefix)
    settings = Settings(bootstrap=kafka_bootstrap, topic_prefix=prefix, app_id=prefix, partitions=3)
    flows = make_flows(seed=41, parcels=2000, start_ms=days_ago_ms(2), disorder=0.05, late=0.01)
    publish_rows(settings, [])  # creates the topics (sources with the pipeline's configs)
    corpus = bad_corpus(topics, int(time.time() * 1000))
    positions = asyncio.run(send(kafka_bootstrap, corpus))
    null_key = ScanEvent("b13", days_ago_ms(2), "DXB", "XB1-I3", "SORTED", "PB13", 700, sorter_id="DXB-XB1")
    asyncio.run(send(kafka_bootstrap, [(topics.source(Source.SORTER), None, Codec().encode(null_key), "")]))
    sent = publish_rows(settings, flows.rows + closing_rows(flows))
    flows.windows[("DXB", "sorted", null_key.event_time_ms // 60_000 * 60_000)] += 1  # counted: a key only routes
    flows.grams[("DXB", "sorted", null_key.event_time_ms // 60_000 * 60_000)] += 700

    worker = start_worker(prefix)
    wait_consumed(kafka_bootstrap, prefix, worker)  # past every bad record
    dead = read_all(kafka_bootstrap, [topics.deadletter], at_least=len(corpus), timeout=60)
    by_origin = {
        (h["source_topic"].decode(), int(h["source_partition"]), int(h["source_offset"])): (r, h)
        for r in dead
        for h in [dict(r.headers)]
    }
    for (_topic, key, value, reason), position in zip(corpus, positions, strict=True):
        assert position in by_origin, (reason, position)
        record, headers = by_origin[position]
        assert headers["reason"].decode() == reason, (position, headers["detail"])
        assert record.value == value and record.key == key  # the original bytes, whole
        assert len(headers["detail"]) <= 1000
    assert len(dead) == len(corpus)
    samples = scrape(worker.metrics_port)
    assert total(samples, "parcelflow_invalid_events_total") == len(corpus)
    assert total(samples, "parcelflow_invalid_events_total", reason="future_event_time") == 2
    assert total(samples, "parcelflow_events_total") == sent + 1
    assert_windows_equal_truth(kafka_bootstrap, topics.throughput, flows)
    assert total(samples, "parcelflow_worker_ready") == 1


FAILING_WORKER = """
import sys
import streams.worker.metrics

def broken(self, result):
    raise KeyError("a bug in recording a batch")

streams.worker.metrics.Metrics.record_batch = broken
sys.argv = ["parcelflow", "worker"]
from streams.cli import main
main()
"""


def test_an_agent_that_raises_makes_the_worker_say_so_and_exit(kafka_bootstrap: str, tmp_path: Path) -> None:
    prefix = unique_name("crash")
    settings = Settings(bootstrap=kafka_bootstrap, topic_prefix=prefix, app_id=prefix, partitions=3)
    flows = make_flows(seed=42, parcels=50, start_ms=days_ago_ms(1), disorder=0.0, late=0.0)
    publish_rows(settings, flows.rows)
    worker = WorkerProcess(kafka_bootstrap, prefix, tmp_path)
    log_path = tmp_path / "failing-worker.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", FAILING_WORKER], env=worker.env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
        )
    worker.process = process  # stopped by PID if the test fails early
    answers: list[tuple[int, str]] = []
    try:
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            answers.append(readiness(worker.metrics_port))
            time.sleep(0.2)
        assert process.poll() is not None, "the worker kept running after its agent raised"
        assert process.returncode == 70
        failed = [why for status, why in answers if status == 503 and why.startswith("failed:")]
        assert failed and "KeyError" in failed[0], answers[-5:]  # readiness turned false before the exit
        lines = [line for line in log_path.read_text().splitlines() if "failed: KeyError" in line]
        assert len(lines) == 1 and "aggregate_partitions" in lines[0] and "exits (70)" in lines[0], lines
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


AGGREGATION_BUG = """
import sys
import streams.aggregate.aggregator

original = streams.aggregate.aggregator.HubAggregator._process_hub

def process_hub(self, store, hub, batch, now, result):
    if any(obs.parcel_id == "POISON-AGG" for obs in batch):
        raise OverflowError("a bug that one scan triggers")
    return original(self, store, hub, batch, now, result)

streams.aggregate.aggregator.HubAggregator._process_hub = process_hub
sys.argv = ["parcelflow", "worker"]
from streams.cli import main
main()
"""


def test_a_scan_that_breaks_the_aggregation_is_dead_lettered_and_the_rest_counted(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = unique_name("aggbug")
    topics = Topics(prefix)
    settings = Settings(bootstrap=kafka_bootstrap, topic_prefix=prefix, app_id=prefix, partitions=3)
    flows = make_flows(seed=43, parcels=1500, start_ms=days_ago_ms(2), disorder=0.05, late=0.01)
    poison = {**flows.rows[10], "parcel_id": "POISON-AGG", "event_id": "poison-agg"}
    assert poison["event_type"] in ("ULD_BREAKDOWN", "SORTED", "LOADED")  # a flow scan: it would count
    publish_rows(settings, [*flows.rows[:20], poison, *flows.rows[20:], *closing_rows(flows)])
    worker = WorkerProcess(kafka_bootstrap, prefix, tmp_path)
    with worker.log_path.open("wb") as log:
        worker.process = subprocess.Popen(
            [sys.executable, "-c", AGGREGATION_BUG], env=worker.env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
        )
    try:
        wait_consumed(kafka_bootstrap, prefix, worker)
        dead = read_all(kafka_bootstrap, [topics.deadletter], at_least=1, timeout=60)
        assert len(dead) == 1
        headers = dict(dead[0].headers)
        assert headers["reason"] == b"unprocessable" and b"OverflowError" in headers["detail"]
        assert headers["source_topic"].decode() == topics.by_partition(prefix)
        assert_windows_equal_truth(kafka_bootstrap, topics.throughput, flows)  # every other scan counted once
        assert readiness(worker.metrics_port)[0] == 200
    finally:
        worker.stop()
