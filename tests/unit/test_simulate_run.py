"""Pacing, progress and the ``parcelflow simulate`` command (files only: no broker)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streams.pacing import Pacer
from streams.simulate.config import SimConfig
from streams.simulate.run import RunProgress, run
from streams.simulate.sinks import JsonlSink
from tests.support.scans import FIXED_START_MS
from tests.support.workers import cli


class FakeClock:
    """A wall clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds
        self.slept += seconds


def test_pacer_maps_simulated_to_wall_time() -> None:
    clock = FakeClock()
    pacer = Pacer(60.0, sim_start_ms=0, now=clock)
    assert pacer.wait_s(60_000) == 1.0  # a simulated minute is a wall second at speed 60
    clock.now += 0.25
    assert pacer.wait_s(60_000) == 0.75
    assert pacer.sim_now(10**9) == 15_000
    assert Pacer(None, 0, clock).wait_s(10**9) == 0.0


def test_a_paced_run_never_emits_ahead_of_the_wall_clock() -> None:
    config = SimConfig(start_ms=FIXED_START_MS, seed=2, duration_s=1800, scale=0.01)
    clock = FakeClock()
    emitted_at: list[tuple[float, int]] = []

    class Recorder:
        def write(self, mark: int, row: tuple) -> None:  # type: ignore[type-arg]
            emitted_at.append((clock.now, row[1]))

        def close(self) -> list[Path]:
            return []

    progress: list[RunProgress] = []
    result = run(config, [Recorder()], speed=60.0, on_progress=progress.append, sleep=clock.sleep, now=clock)
    assert result.records == len(emitted_at) > 100
    start_wall = 1000.0
    for wall, event_ms in emitted_at:
        due = start_wall + (event_ms - config.start_ms) / 1000 / 60
        assert wall >= due - 0.0021  # waits under 2 ms are skipped
    assert clock.slept == pytest.approx(1800 / 60, abs=0.01)  # the whole span, paced
    fractions = [p.fraction for p in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert len(progress) > 50  # reported while waiting, not only every 8192 records


def test_an_unpaced_run_writes_files_and_the_truth(tmp_path: Path) -> None:
    config = SimConfig(start_ms=FIXED_START_MS, seed=2, duration_s=900, scale=0.01)
    result = run(config, [JsonlSink(tmp_path)], truth_path=tmp_path / "t.json")
    assert result.truth == json.loads((tmp_path / "t.json").read_text())
    assert sorted(p.name for p in result.files) == ["flight.jsonl", "sorter.jsonl", "truck.jsonl"]
    lines = sum(len(p.read_text().splitlines()) for p in result.files)
    assert lines == result.records == result.truth["events"]["total"]


def test_cli_simulate_writes_files_and_truth(tmp_path: Path) -> None:
    out = tmp_path / "[bold]out"  # printed literally, not read as Rich markup
    result = cli(
        "simulate", "--out", str(out), "--to", "jsonl", "--to", "avro", "--duration", "30m", "--scale", "0.01",
        "--seed", "9", "--corrupt", "0.01",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    truth = json.loads((out / "truth.json").read_text())
    assert truth["seed"] == 9 and truth["duration_seconds"] == 1800 and truth["events"]["corrupt"] > 0
    assert {p.name for p in out.iterdir()} == {
        "flight.jsonl", "sorter.jsonl", "truck.jsonl", "flight.avro", "sorter.avro", "truck.avro", "truth.json",
    }  # fmt: skip
    assert f"{truth['events']['total']:,} events" in result.stderr
    assert f"truth: {out / 'truth.json'}" in result.stderr


def test_cli_simulate_errors_are_one_line(tmp_path: Path) -> None:
    for args, message in [
        (["--duration", "2x"], "error: cannot read duration '2x'"),
        (["--speed", "fast"], "error: speed must be a number or 'max'"),
        (["--to", "csv"], "error: unknown output 'csv'"),
        (["--late", "1"], "error: late share must be in [0, 1)"),
        (["--start", "2026-11-23"], "error: start '2026-11-23' needs a time zone"),
    ]:
        result = cli("simulate", "--out", str(tmp_path), *args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1 and lines[0].startswith(message), result.stderr
