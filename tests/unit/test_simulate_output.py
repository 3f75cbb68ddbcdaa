"""Files a run writes: byte-identical for a seed, the same events in JSON Lines and Avro."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streams.events import to_mapping, validate
from streams.kafka.topics import Source
from streams.simulate.config import SimConfig
from streams.simulate.disorder import CORRUPT, Emitter
from streams.simulate.model import scan_rows
from streams.simulate.render import JsonLines, corrupt_bytes, corrupt_line
from streams.simulate.rows import to_event, to_row
from streams.simulate.run import simulate_to_files
from tests.support.scans import FIXED_START_MS
from tests.support.simulation import read_avro_dir, read_jsonl_dir

IMPAIRED = SimConfig(
    start_ms=FIXED_START_MS, seed=21, duration_s=3 * 3600, scale=0.03, disorder=0.02, late=0.01, corrupt=0.005
)
FILES = [f"{source.value}.{fmt}" for source in Source for fmt in ("jsonl", "avro")] + ["truth.json"]


def write(config: SimConfig, directory: Path) -> dict[str, bytes]:
    simulate_to_files(config, directory, formats=("jsonl", "avro"))
    return {name: (directory / name).read_bytes() for name in FILES}


@pytest.fixture(scope="module")
def impaired_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("impaired")
    simulate_to_files(IMPAIRED, directory, formats=("jsonl", "avro"))
    return directory


def test_same_seed_writes_byte_identical_files(impaired_dir: Path, tmp_path: Path) -> None:
    first = {name: (impaired_dir / name).read_bytes() for name in FILES}
    again = write(IMPAIRED, tmp_path / "again")
    assert all(first[name] for name in FILES)
    for name in FILES:
        assert again[name] == first[name], f"{name} differs between two runs with the same seed"


def test_another_seed_writes_other_files(impaired_dir: Path, tmp_path: Path) -> None:
    other = write(SimConfig(**{**IMPAIRED.__dict__, "seed": 22}), tmp_path / "other")
    for name in FILES:
        assert other[name] != (impaired_dir / name).read_bytes(), f"{name} is the same for seeds 21 and 22"


def test_jsonl_and_avro_hold_the_same_events(impaired_dir: Path) -> None:
    jsonl, avro = read_jsonl_dir(impaired_dir), read_avro_dir(impaired_dir)
    truth = json.loads((impaired_dir / "truth.json").read_text())
    for source in Source:
        assert jsonl[source].events == avro[source].events
        assert jsonl[source].bad == avro[source].bad
        assert len(jsonl[source].events) == truth["events"]["by_source"][source.value]
    assert sum(f.bad for f in jsonl.values()) == truth["events"]["corrupt"] > 0


def test_impairments_do_not_change_the_events(impaired_dir: Path) -> None:
    clean = SimConfig(**{**IMPAIRED.__dict__, "disorder": 0.0, "late": 0.0, "corrupt": 0.0})
    emitted = read_jsonl_dir(impaired_dir)
    expected = {to_event(row) for row in scan_rows(clean)}
    got = {event for f in emitted.values() for event in f.events}
    dropped = expected - got  # late events whose release fell after the end are not emitted
    assert got <= expected and len(dropped) < 0.001 * len(expected)


def test_fast_json_lines_equal_the_reference_encoding() -> None:
    lines = JsonLines()
    count = 0
    for row in scan_rows(SimConfig(start_ms=FIXED_START_MS, seed=4, duration_s=4 * 3600, scale=0.02)):
        event = validate(to_event(row))
        assert lines.line(row) == json.dumps(to_mapping(event), separators=(",", ":"))
        assert to_row(event) == row
        count += 1
    assert count > 10_000


def test_corrupt_records_never_pass_as_events() -> None:
    from streams.events import InvalidEvent, from_mapping
    from streams.kafka.codec import Codec

    codec, lines = Codec(), JsonLines()
    rows = list(scan_rows(SimConfig(start_ms=FIXED_START_MS, seed=4, duration_s=600, scale=0.05)))[:200]
    for row in rows:
        for mark in range(CORRUPT, CORRUPT + 3):
            with pytest.raises(InvalidEvent):
                codec.decode(corrupt_bytes(mark, row, codec))
            text = corrupt_line(mark, row, lines)
            with pytest.raises((ValueError, InvalidEvent)):  # JSONDecodeError or InvalidEvent
                parsed = json.loads(text)
                if not isinstance(parsed, dict):
                    raise ValueError("not an object")
                from_mapping(parsed)


def test_emitter_is_a_pass_through_without_impairments() -> None:
    config = SimConfig(start_ms=FIXED_START_MS, seed=2, duration_s=1800, scale=0.02)
    rows = list(scan_rows(config))
    assert [(row[1], 0, row) for row in rows] == list(Emitter(config).stream(rows))
