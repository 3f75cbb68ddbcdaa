"""truth.json: the contract's shape, equal to an independent recomputation, impairments where promised."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streams.events import FLOW_OF_EVENT_TYPE
from streams.network import HUBS
from streams.simulate.config import SimConfig
from streams.simulate.disorder import CORRUPT, DISORDERED, LATE, NORMAL, Emitter
from streams.simulate.model import scan_rows
from streams.simulate.run import simulate_to_files
from streams.simulate.truth import Truth, dwell_summary, nearest_rank
from tests.support.scans import FIXED_START_MS
from tests.support.simulation import read_jsonl_dir, recompute_truth

CONFIG = SimConfig(
    start_ms=FIXED_START_MS,
    seed=8,
    duration_s=5 * 3600,
    scale=0.04,
    disorder=0.05,
    disorder_max_s=30,
    late=0.03,
    late_delay_s=900,
    corrupt=0.02,
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("truth")
    simulate_to_files(CONFIG, directory)
    return directory


@pytest.fixture(scope="module")
def emissions() -> list[tuple[int, int, tuple]]:  # type: ignore[type-arg]
    return list(Emitter(CONFIG).stream(scan_rows(CONFIG)))


def test_truth_has_exactly_the_contract_shape(run_dir: Path) -> None:
    truth = json.loads((run_dir / "truth.json").read_text())
    assert list(truth) == [
        "seed", "start", "duration_seconds", "scale", "window_seconds", "events", "windows", "late", "dwell",
        "backlog_end",
    ]  # fmt: skip
    assert (truth["seed"], truth["start"], truth["duration_seconds"], truth["scale"], truth["window_seconds"]) == (
        8, "2026-11-23T00:00:00Z", 18_000, 0.04, 60,
    )  # fmt: skip
    assert list(truth["events"]) == ["total", "by_source", "corrupt", "late", "out_of_order"]
    assert list(truth["events"]["by_source"]) == ["flight", "sorter", "truck"]
    assert truth["events"]["total"] == sum(truth["events"]["by_source"].values())
    keys = [(w["hub"], w["flow"], w["start_ms"]) for w in truth["windows"]]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert all(list(w) == ["hub", "flow", "start_ms", "parcels", "grams"] for w in truth["windows"])
    assert all(w["start_ms"] % 60_000 == 0 and w["flow"] in ("inbound", "sorted", "outbound") for w in truth["windows"])
    assert all(list(entry) == ["hub", "flow", "parcels", "grams"] for entry in truth["late"])
    assert list(truth["dwell"]) == list(HUBS) == list(truth["backlog_end"])
    for summary in truth["dwell"].values():
        assert list(summary["quantiles"]) == ["0.5", "0.9", "0.95", "0.99"]
        values = list(summary["quantiles"].values())
        assert values == sorted(values) and summary["parcels"] > 0


def test_truth_equals_a_recomputation_from_the_emitted_files(run_dir: Path, emissions: list) -> None:  # type: ignore[type-arg]
    truth = json.loads((run_dir / "truth.json").read_text())
    late_ids = {row[0] for _, mark, row in emissions if mark == LATE}
    expected = recompute_truth(read_jsonl_dir(run_dir), late_ids)
    assert truth["events"]["by_source"] == expected["by_source"]
    assert truth["windows"] == expected["windows"]
    assert truth["late"] == expected["late"]
    assert truth["dwell"] == expected["dwell"]
    assert truth["backlog_end"] == expected["backlog_end"]
    assert truth["events"]["late"] == len(late_ids) == sum(entry["parcels"] for entry in truth["late"])


def test_shares_of_disorder_late_and_corrupt_records_are_as_asked(emissions: list) -> None:  # type: ignore[type-arg]
    valid = [e for e in emissions if e[1] < CORRUPT]
    marks = [mark for _, mark, _ in emissions]
    flow = [e for e in valid if e[2][4] in FLOW_OF_EVENT_TYPE]
    eligible = [e for e in flow if e[2][1] < CONFIG.end_ms - CONFIG.late_delay_ms]
    assert len(valid) > 50_000
    assert marks.count(DISORDERED) / len(valid) == pytest.approx(CONFIG.disorder, rel=0.1)
    assert marks.count(LATE) / len(eligible) == pytest.approx(CONFIG.late, rel=0.1)
    assert (len(emissions) - len(valid)) / len(valid) == pytest.approx(CONFIG.corrupt, rel=0.1)
    assert all(row[4] in FLOW_OF_EVENT_TYPE for _, mark, row in emissions if mark == LATE)


def test_records_are_held_back_exactly_as_the_contract_says(emissions: list) -> None:  # type: ignore[type-arg]
    watermark = clock = 0
    out_of_order = 0
    for emitted_at, mark, row in emissions:
        t = row[1]
        assert emitted_at >= clock and emitted_at >= t  # no record ahead of the simulated clock
        clock = emitted_at
        if mark == NORMAL:
            assert t >= watermark  # otherwise in event-time order
        elif mark == DISORDERED:
            assert watermark - t <= CONFIG.disorder_max_ms  # within any grace >= disorder-max
            out_of_order += t < watermark
        elif mark == LATE:
            assert watermark - t >= CONFIG.late_delay_ms  # far beyond it
        if mark < CORRUPT:
            watermark = max(watermark, t)
    truth = Truth(CONFIG)
    for emission in emissions:
        truth.add(*emission)
    assert truth.result()["events"]["out_of_order"] == out_of_order > 0


def test_late_events_stay_out_of_windows(run_dir: Path, emissions: list) -> None:  # type: ignore[type-arg]
    truth = json.loads((run_dir / "truth.json").read_text())
    flow_events = sum(1 for _, mark, row in emissions if mark < CORRUPT and row[4] in FLOW_OF_EVENT_TYPE)
    in_windows = sum(w["parcels"] for w in truth["windows"])
    assert in_windows + truth["events"]["late"] == flow_events
    assert truth["events"]["late"] > 100


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5], "0.5", 5),
        ([1, 2], "0.5", 1),
        ([1, 2, 3], "0.5", 2),
        (list(range(1, 11)), "0.9", 9),
        (list(range(1, 21)), "0.95", 19),
        (list(range(1, 101)), "0.99", 99),
        (list(range(1, 102)), "0.99", 100),
    ],
)
def test_nearest_rank(values: list[int], q: str, expected: int) -> None:
    assert nearest_rank(values, q) == expected


def test_dwell_summary_of_nothing_is_explicit() -> None:
    assert dwell_summary([]) == {"parcels": 0, "quantiles": dict.fromkeys(("0.5", "0.9", "0.95", "0.99"))}
    assert dwell_summary([3000, 1000, 2000])["quantiles"]["0.5"] == 2.0
