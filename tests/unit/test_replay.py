from __future__ import annotations

import random
from pathlib import Path

import pytest
from fastavro import writer
from hypothesis import given
from hypothesis import strategies as st

from streams.events import to_record
from streams.kafka.codec import Codec
from streams.kafka.topics import Source
from streams.replay.archive import (
    ArchiveError,
    Segment,
    archived_files,
    envelope_schema,
    read_file,
    uncommitted,
    write_files,
)
from streams.replay.namespaces import Namespace, NamespaceError, names_in
from streams.replay.republish import ReplayErrors, ReplayRecord, archive_records, merge_partitions
from tests.support.scans import BREAKDOWN, SORTED

HOUR = 3_600_000
T0 = 1_795_000_000_000 - 1_795_000_000_000 % HOUR


@given(st.lists(st.lists(st.integers(0, 1000), max_size=20), min_size=1, max_size=5))
def test_merge_keeps_each_partition_in_its_own_order(partitions: list[list[int]]) -> None:
    streams = [
        [ReplayRecord(Source.SORTER, p, offset, ts, None, b"") for offset, ts in enumerate(times)]
        for p, times in enumerate(partitions)
    ]
    merged = list(merge_partitions(iter(s) for s in streams))
    assert len(merged) == sum(len(s) for s in streams)
    for p, stream in enumerate(streams):
        assert [r for r in merged if r.partition == p] == stream


def _archive(root: Path, codec: Codec, records: list[tuple[int, int, int]]) -> None:
    """(partition, offset, timestamp) sorter records, one segment per call."""
    segment = Segment()
    for partition, offset, timestamp in records:
        event = to_record(SORTED)
        event["header"]["event_time"] = timestamp
        segment.add(root, Source.SORTER, partition, offset, timestamp, b"P1", event)
    write_files(segment, {s: envelope_schema(s, codec) for s in Source})


def test_archive_files_are_named_by_hour_and_segment_and_replay_in_log_order(tmp_path: Path) -> None:
    codec = Codec()
    # One segment of partition 0 spans two hours, and a late record goes back to the first hour.
    _archive(tmp_path, codec, [(0, 10, T0 + 100), (0, 11, T0 + HOUR + 5), (0, 12, T0 + 200), (1, 3, T0 + 50)])
    _archive(tmp_path, codec, [(0, 13, T0 + HOUR + 9)])
    files = list(archived_files(tmp_path))
    assert sorted((f.partition, f.segment_start) for f in files) == [(0, 10), (0, 10), (0, 13), (1, 3)]
    assert {f.path.parent.name for f in files} == {f"{(T0 // HOUR) % 24:02d}", f"{(T0 // HOUR + 1) % 24:02d}"}
    replayed = list(archive_records(tmp_path, codec))
    assert [(r.partition, r.offset) for r in replayed if r.partition == 0] == [(0, 10), (0, 11), (0, 12), (0, 13)]
    assert all(codec.decode(r.value).event_time_ms == r.timestamp_ms for r in replayed)
    assert [r.offset for r in archive_records(tmp_path, codec, from_ms=T0 + 150, to_ms=T0 + HOUR)] == [12]


def test_uncommitted_segments_are_found_for_deletion(tmp_path: Path) -> None:
    codec = Codec()
    _archive(tmp_path, codec, [(0, 0, T0), (0, 1, T0 + HOUR)])
    _archive(tmp_path, codec, [(0, 2, T0 + 1), (1, 0, T0)])
    files = list(archived_files(tmp_path))
    doomed = uncommitted(files, Source.SORTER, 0, committed=2)
    assert sorted(p.name for p in doomed) == ["sorter-p000-000000000002.avro"]
    assert uncommitted(files, Source.FLIGHT, 0, committed=0) == []


def test_damaged_files_are_named_and_can_be_skipped(tmp_path: Path) -> None:
    codec = Codec()
    _archive(tmp_path, codec, [(0, i, T0 + i) for i in range(2000)])
    _archive(tmp_path, codec, [(1, 0, T0 + 7)])
    damaged = next(f.path for f in archived_files(tmp_path) if f.partition == 0)
    damaged.write_bytes(damaged.read_bytes()[: len(damaged.read_bytes()) // 2])
    with pytest.raises(ArchiveError) as caught:
        list(archive_records(tmp_path, codec))
    assert str(damaged) in str(caught.value) and "at byte" in str(caught.value)
    errors = ReplayErrors()
    rest = list(archive_records(tmp_path, codec, on_error="skip", errors=errors))
    positions = [(r.partition, r.offset) for r in rest]
    assert (1, 0) in positions  # the other partition's file is replayed...
    assert positions[-1][0] == 0 and 0 < positions[-1][1] < 1999  # ...and the damaged one up to the damage
    assert len(errors.files) == 1 and str(damaged) in errors.files[0]


def test_a_foreign_avro_file_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "sorter" / "2026-11-18" / "11"
    folder.mkdir(parents=True)
    path = folder / "sorter-p000-000000000000.avro"
    with path.open("wb") as out:
        writer(out, {"type": "record", "name": "Other", "fields": [{"name": "x", "type": "int"}]}, [{"x": 1}])
    with pytest.raises(ArchiveError, match="not a parcelflow archive file"):
        list(read_file(path))


def test_namespaces() -> None:
    ns = Namespace("incident-42")
    assert (ns.prefix, ns.app_id) == ("replay.incident-42", "replay-incident-42")
    for bad in ("live", "Has Caps", "", "a/b"):
        with pytest.raises(NamespaceError):
            Namespace(bad)
    assert names_in(
        ["replay.a.scans.flight", "replay.a.scans.truck", "parcelflow.scans.flight", "replay.b.scans.flight"]
    ) == ["a", "b"]


def test_breakdown_events_round_trip_through_the_envelope(tmp_path: Path) -> None:
    codec = Codec()
    segment = Segment()
    rng = random.Random(1)
    for offset in range(50):
        record = to_record(BREAKDOWN)
        record["header"]["weight_grams"] = rng.randint(1, 9000)
        segment.add(tmp_path, Source.FLIGHT, 2, offset, BREAKDOWN.event_time_ms, b"P1", record)
    write_files(segment, {s: envelope_schema(s, codec) for s in Source})
    replayed = list(archive_records(tmp_path, codec))
    assert [codec.decode(r.value).weight_grams for r in replayed] == [
        r["event"]["header"]["weight_grams"] for f in archived_files(tmp_path) for r in read_file(f.path)
    ]
