"""Simulator throughput: events/s generated, written to JSON Lines, to Avro files and sent to Kafka.

    python -m bench.bench_simulate                       # 6 h of the network at scale 1; Kafka: 1 h
    python -m bench.bench_simulate --duration 1d --kafka-duration 2h
    KAFKA_BOOTSTRAP=127.0.0.1:9092 python -m bench.bench_simulate   # use a running broker
    python -m bench.bench_simulate --no-kafka

Each output is measured next to a baseline of the same configuration measured in the same process:
the events generated (model + impairment stage) and thrown away. Without KAFKA_BOOTSTRAP a broker is
started with infra/kafka/kafka.sh in a temporary directory and stopped by PID afterwards. The figures
are printed as a table and written to bench/results/simulate-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from streams.settings import Settings
from streams.simulate.config import SimConfig, parse_duration
from streams.simulate.disorder import Emitter
from streams.simulate.model import scan_rows
from streams.simulate.run import simulate_to_files, simulate_to_kafka
from tests.support.broker import free_port, unique_name
from tests.support.paths import KAFKA_SH

from .common import START_MS

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Figure:
    output: str
    events: int
    seconds: float
    baseline_per_s: float

    @property
    def per_s(self) -> float:
        return self.events / self.seconds


def baseline(config: SimConfig) -> tuple[int, float]:
    """Generate the run's records and drop them: the cost every output pays."""
    started = time.perf_counter()
    count = 0
    for _ in Emitter(config).stream(scan_rows(config)):
        count += 1
    return count, time.perf_counter() - started


def to_files(config: SimConfig, fmt: str, directory: Path) -> tuple[int, float]:
    result = simulate_to_files(config, directory / fmt, formats=(fmt,))
    return result.records, result.wall_s


def to_kafka(config: SimConfig, bootstrap: str, directory: Path) -> tuple[int, float]:
    settings = Settings.from_env().with_overrides(bootstrap=bootstrap, topic_prefix=unique_name("bench"))
    result = asyncio.run(simulate_to_kafka(config, settings, directory / "kafka-truth.json"))
    return result.records, result.wall_s  # wall time from the first event to the last confirmation


class Broker:
    """A throwaway local broker, unless KAFKA_BOOTSTRAP names one."""

    def __init__(self, directory: Path) -> None:
        self.flags = ["--dir", str(directory / "kafka"), "--port", str(free_port())]
        self.flags += ["--controller-port", str(free_port())]
        self.started = False

    def __enter__(self) -> str:
        existing = os.environ.get("KAFKA_BOOTSTRAP")
        if existing:
            return existing
        done = subprocess.run([str(KAFKA_SH), "start", *self.flags], capture_output=True, text=True, timeout=300)
        self.started = True
        if done.returncode != 0:
            raise SystemExit(f"the Kafka broker did not start:\n{done.stderr[-2000:]}")
        return done.stdout.strip().splitlines()[-1]

    def __exit__(self, *exc: object) -> None:
        if self.started:
            subprocess.run([str(KAFKA_SH), "stop", *self.flags[:2]], timeout=120, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", default="6h", help="simulated span for the file outputs")
    parser.add_argument("--kafka-duration", default="1h", help="simulated span for Kafka (slower)")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-kafka", action="store_true")
    args = parser.parse_args()
    files_config = SimConfig(
        start_ms=START_MS, seed=args.seed, duration_s=parse_duration(args.duration), scale=args.scale
    )
    kafka_config = SimConfig(
        start_ms=START_MS, seed=args.seed, duration_s=parse_duration(args.kafka_duration), scale=args.scale
    )

    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="parcelflow-bench-") as tmp:
        directory = Path(tmp)
        events, seconds = baseline(files_config)
        figures.append(Figure("generate only", events, seconds, events / seconds))
        for fmt in ("jsonl", "avro"):
            events, seconds = to_files(files_config, fmt, directory)
            figures.append(Figure(f"{fmt} files", events, seconds, figures[0].per_s))
            for path in (directory / fmt).iterdir():
                path.unlink()  # keep the temporary disk use to one output at a time
        if not args.no_kafka:
            with Broker(directory) as bootstrap:
                events, seconds = baseline(kafka_config)
                kafka_baseline = events / seconds
                figures.append(Figure("generate only (Kafka span)", events, seconds, kafka_baseline))
                events, seconds = to_kafka(kafka_config, bootstrap, directory)
                figures.append(Figure("kafka (acks=all)", events, seconds, kafka_baseline))

    print(f"{'output':<28}{'events':>12}{'seconds':>10}{'events/s':>12}{'baseline/s':>12}{'of baseline':>13}")
    for f in figures:
        print(
            f"{f.output:<28}{f.events:>12,}{f.seconds:>10.1f}{f.per_s:>12,.0f}{f.baseline_per_s:>12,.0f}"
            f"{f.per_s / f.baseline_per_s:>12.0%}"
        )
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = {
        "when": stamp,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "files": {"duration_s": files_config.duration_s, "scale": args.scale, "seed": args.seed},
        "kafka": None if args.no_kafka else {"duration_s": kafka_config.duration_s, "scale": args.scale},
        "figures": [
            {
                "output": f.output,
                "events": f.events,
                "seconds": round(f.seconds, 3),
                "events_per_s": round(f.per_s),
                "baseline_events_per_s": round(f.baseline_per_s),
            }
            for f in figures
        ],  # fmt: skip
    }
    path = RESULTS / f"simulate-{stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


if __name__ == "__main__":
    main()
