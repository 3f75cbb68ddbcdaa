"""Running a simulation: pace the emitted stream by the wall clock, feed the truth and the sinks, report progress."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.ingest.publish import Publisher
from streams.pacing import Pacer
from streams.settings import Settings
from streams.simulate.config import SimConfig
from streams.simulate.disorder import Emission, Emitter
from streams.simulate.model import scan_rows
from streams.simulate.sinks import AvroSink, JsonlSink, KafkaSink, Sink
from streams.simulate.truth import Truth

REPORT_EVERY = 8192
"""Records between progress reports when running flat out."""
MIN_SLEEP_S = 0.002
"""Shorter waits are skipped: the next record is due almost now (saves a syscall per record)."""
MAX_SLEEP_S = 0.25
"""Longest single sleep, so progress keeps moving through quiet simulated hours."""
TRUTH_FILE = "truth.json"


@dataclass(frozen=True, slots=True)
class RunProgress:
    """Where a run is: simulated time reached, records out, wall time spent."""

    sim_ms: int
    start_ms: int
    end_ms: int
    records: int
    wall_s: float

    @property
    def records_per_s(self) -> float:
        """Average emission rate so far (wall clock)."""
        return self.records / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def fraction(self) -> float:
        """Share of the simulated span done."""
        return min(1.0, max(0.0, (self.sim_ms - self.start_ms) / (self.end_ms - self.start_ms)))


ProgressCallback = Callable[[RunProgress], None]


@dataclass(frozen=True)
class RunResult:
    """What a finished run produced."""

    truth: dict[str, Any]
    records: int
    wall_s: float
    late_dropped: int
    files: list[Path]
    truth_path: Path | None
    warnings: list[str] = field(default_factory=list)

    @property
    def records_per_s(self) -> float:
        """Records emitted per wall-clock second over the whole run."""
        return self.records / self.wall_s if self.wall_s > 0 else 0.0


class _Run:
    """State shared by the synchronous and the asynchronous drivers."""

    def __init__(
        self, config: SimConfig, speed: float | None, on_progress: ProgressCallback | None, now: Callable[[], float]
    ) -> None:
        self.config = config
        self.emitter = Emitter(config)
        self.truth = Truth(config)
        self.pacer = Pacer(speed, config.start_ms, now)
        self.on_progress = on_progress
        self.now = now
        self.started = now()
        self.records = 0

    def emissions(self) -> Iterator[Emission]:
        return self.emitter.stream(scan_rows(self.config))

    def report(self, sim_ms: int) -> None:
        if self.on_progress is not None:
            cfg = self.config
            self.on_progress(RunProgress(sim_ms, cfg.start_ms, cfg.end_ms, self.records, self.now() - self.started))

    def result(self, files: list[Path], truth_path: Path | None) -> RunResult:
        truth = self.truth.result()
        if truth_path is not None:
            write_truth(truth_path, truth)
        return RunResult(truth, self.records, self.now() - self.started, self.emitter.late_dropped, files, truth_path)


def run(
    config: SimConfig,
    sinks: Sequence[Sink],
    speed: float | None = None,
    truth_path: Path | None = None,
    on_progress: ProgressCallback | None = None,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], float] = time.monotonic,
) -> RunResult:
    """Run the simulation into synchronous sinks (files, or none); write the truth when a path is given."""
    state = _Run(config, speed, on_progress, now)
    pacer, add = state.pacer, state.truth.add
    writes = [sink.write for sink in sinks]
    paced = pacer.speed is not None
    records = 0
    emission: Emission
    try:
        for emission in state.emissions():
            clock, mark, row = emission
            if paced:
                state.records = records
                _pace_sync(state, clock, sleep)
            add(clock, mark, row)
            for write in writes:
                write(mark, row)
            records += 1
            if not records % REPORT_EVERY:
                state.records = records
                state.report(clock)
        state.records = records
        if pacer.speed is not None:
            _pace_sync(state, config.end_ms, sleep)
    finally:
        files = [path for sink in sinks for path in sink.close()]
    state.report(config.end_ms)
    return state.result(files, truth_path)


def _pace_sync(state: _Run, clock: int, sleep: Callable[[float], None]) -> None:
    wait = state.pacer.wait_s(clock)
    while wait > MIN_SLEEP_S:
        sleep(min(wait, MAX_SLEEP_S))
        state.report(state.pacer.sim_now(clock))
        wait = state.pacer.wait_s(clock)


async def run_async(
    config: SimConfig,
    kafka: KafkaSink,
    sinks: Sequence[Sink] = (),
    speed: float | None = None,
    truth_path: Path | None = None,
    on_progress: ProgressCallback | None = None,
    now: Callable[[], float] = time.monotonic,
) -> RunResult:
    """Run the simulation into Kafka (and any file sinks); returns once the broker confirmed everything."""
    state = _Run(config, speed, on_progress, now)
    pacer, add, send = state.pacer, state.truth.add, kafka.write
    writes = [sink.write for sink in sinks]
    try:
        for clock, mark, row in state.emissions():
            if pacer.speed is not None:
                await _pace_async(state, clock)
            add(clock, mark, row)
            await send(mark, row)
            for write in writes:
                write(mark, row)
            state.records += 1
            if not state.records % REPORT_EVERY:
                state.report(clock)
        await kafka.confirm()
        if pacer.speed is not None:
            await _pace_async(state, config.end_ms)
    finally:
        files = [path for sink in sinks for path in sink.close()]
    state.report(config.end_ms)
    return state.result(files, truth_path)


async def _pace_async(state: _Run, clock: int) -> None:
    wait = state.pacer.wait_s(clock)
    while wait > MIN_SLEEP_S:
        await asyncio.sleep(min(wait, MAX_SLEEP_S))
        state.report(state.pacer.sim_now(clock))
        wait = state.pacer.wait_s(clock)


def file_sinks(config: SimConfig, directory: Path, formats: Sequence[str]) -> list[Sink]:
    """The sinks writing ``formats`` (``jsonl``, ``avro``) into ``directory``."""
    sinks: list[Sink] = []
    for fmt in formats:
        if fmt == "jsonl":
            sinks.append(JsonlSink(directory))
        elif fmt == "avro":
            sinks.append(AvroSink(directory, config.seed))
        else:
            raise ValueError(f"unknown file format {fmt!r} (choose jsonl or avro)")
    return sinks


def simulate_to_files(
    config: SimConfig,
    directory: Path,
    formats: Sequence[str] = ("jsonl",),
    speed: float | None = None,
    truth_path: Path | None = None,
    on_progress: ProgressCallback | None = None,
) -> RunResult:
    """Write a run's events to files in ``directory`` (one per source and format) and ``truth.json`` beside them."""
    sinks = file_sinks(config, directory, formats)
    return run(config, sinks, speed, truth_path or directory / TRUTH_FILE, on_progress)


async def simulate_to_kafka(
    config: SimConfig,
    settings: Settings,
    truth_path: Path = Path(TRUTH_FILE),
    speed: float | None = None,
    directory: Path | None = None,
    formats: Sequence[str] = (),
    on_progress: ProgressCallback | None = None,
) -> RunResult:
    """Send a run's events to the source topics of ``settings`` (and files, if asked); write the truth."""
    sinks = file_sinks(config, directory, formats) if directory is not None else []
    async with Publisher(settings) as publisher:
        result = await run_async(config, KafkaSink(publisher), sinks, speed, truth_path, on_progress)
        result.warnings.extend(publisher.retention_warnings())
        return result


def write_truth(path: Path, truth: dict[str, Any]) -> None:
    """Write the truth document as indented JSON (same run, same bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")
