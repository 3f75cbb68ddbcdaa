"""Publish a known mix of scans and corrupt records, run a worker, check /metrics and dead letters."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from streams.events import ScanEvent, to_record
from streams.kafka.codec import Codec
from streams.kafka.topics import Source, Topics
from tests.support.broker import unique_name
from tests.support.pipeline import read_all, send_raw
from tests.support.scan_files import make_scan_file
from tests.support.workers import WorkerProcess, cli, scrape, total, wait_for

pytestmark = pytest.mark.broker


def corrupt_records(topics: Topics) -> list[tuple[str, bytes, str]]:
    """(topic, bytes, reason the worker must give) for every kind of bad record."""
    codec = Codec()
    parcel = ScanEvent("c1", 1_795_000_000_000, "LGG", "BD-1", "ULD_BREAKDOWN", "PC1", 900, flight_id="CK1")
    good_sorter = codec.encode(ScanEvent("c2", 1_795_000_000_000, "LGG", "I", "SORTED", "PC2", 900, sorter_id="S"))
    bad_hub = to_record(ScanEvent("c3", 1_795_000_000_000, "LGG", "I", "SORTED", "PC3", 900, sorter_id="S"))
    bad_hub["header"]["hub"] = "ZZZ"
    flight, sorter, truck = (topics.source(s) for s in Source)
    return [
        (flight, b"\x00\x01garbage that is not avro", "undecodable"),
        (sorter, good_sorter[:-4], "undecodable"),
        (truck, codec.encode(parcel)[:2] + b"\xff" * 8 + codec.encode(parcel)[10:], "unknown_schema"),
        (flight, good_sorter, "wrong_source"),
        (sorter, codec.encode_record(Source.SORTER, bad_hub), "unknown_hub"),
        (truck, b"", "undecodable"),
    ]


def test_publish_worker_metrics_and_deadletters(
    kafka_bootstrap: str, tmp_path: Path, start_worker: Callable[..., WorkerProcess]
) -> None:
    prefix = unique_name("e2e")
    topics = Topics(prefix)
    text, expected = make_scan_file(seed=7)
    scan_file = tmp_path / "scans.jsonl"
    scan_file.write_text(text)
    env = {"PARCELFLOW_PARTITIONS": "3"}

    published = cli("publish", str(scan_file), "--bootstrap", kafka_bootstrap, "--prefix", prefix, env=env)
    assert published.returncode == 2, published.stderr
    reported = {
        int(line.split("line ")[1].split(":")[0]) for line in published.stderr.splitlines() if ": line " in line
    }
    assert reported == expected.bad_lines
    assert f"sent {len(expected.rows)}, rejected {len(expected.bad_lines)}" in published.stderr
    assert "Traceback" not in published.stderr

    corrupt = corrupt_records(topics)
    origins = asyncio.run(send_raw(kafka_bootstrap, corrupt))

    worker = start_worker(prefix)
    events_expected = sum(expected.events_by_hub_source_type().values())

    def all_counted() -> bool:
        samples = scrape(worker.metrics_port)
        return total(samples, "parcelflow_events_total") >= events_expected and total(
            samples, "parcelflow_invalid_events_total"
        ) >= len(corrupt)

    wait_for(all_counted, timeout=90, what="the worker to count every record", proc=worker)
    samples = scrape(worker.metrics_port)

    assert total(samples, "parcelflow_events_total") == events_expected
    for (hub, source, event_type), count in expected.events_by_hub_source_type().items():
        assert total(samples, "parcelflow_events_total", hub=hub, source=source, event_type=event_type) == count
    for (hub, flow), count in expected.parcels_by_hub_flow().items():
        assert total(samples, "parcelflow_flow_parcels_total", hub=hub, flow=flow) == count
    for (hub, flow), grams in expected.grams_by_hub_flow().items():
        kilograms = total(samples, "parcelflow_flow_kilograms_total", hub=hub, flow=flow)
        assert abs(kilograms - grams / 1000) < 0.0005, (hub, flow)  # exact to the gram
    assert total(samples, "parcelflow_flow_parcels_total") == sum(expected.parcels_by_hub_flow().values())
    assert total(samples, "parcelflow_event_delay_seconds_count") == events_expected

    reasons: dict[str, int] = {}
    for _topic, _value, reason in corrupt:
        reasons[reason] = reasons.get(reason, 0) + 1
    assert total(samples, "parcelflow_invalid_events_total") == len(corrupt)
    for reason, count in reasons.items():
        assert total(samples, "parcelflow_invalid_events_total", reason=reason) == count

    letters = read_all(kafka_bootstrap, [topics.deadletter], at_least=len(corrupt))
    assert len(letters) == len(corrupt)
    found = set()
    for letter in letters:
        headers = {k: v.decode() for k, v in letter.headers}
        found.add(
            (
                headers["source_topic"],
                int(headers["source_partition"]),
                int(headers["source_offset"]),
                letter.value,
                headers["reason"],
            )
        )
        assert headers["detail"]
    wanted = {(t, p, o, value, reason) for (t, p, o), (_t, value, reason) in zip(origins, corrupt, strict=True)}
    assert found == wanted
