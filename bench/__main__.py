"""parcelflow benchmarks: the physical limit, parcelflow's workers, two peers, latency and replay.

    .venv/bin/python -m bench                          # everything, 3 repetitions, 1 h of simulated network
    .venv/bin/python -m bench --duration 1h --repeat 1 --skip peers,replay
    .venv/bin/python -m bench --only limit,parcelflow
    .venv/bin/python -m bench --only scaleout --repeat 1   # 1, 2 and 4 workers on 12 source partitions: CPU balance
    .venv/bin/python -m bench --only registry --repeat 3   # Confluent wire format vs single-object (not in the default)
    KAFKA_BOOTSTRAP=127.0.0.1:9092 .venv/bin/python -m bench   # use a running broker

Installs bench/requirements.txt (Quix Streams) into the running interpreter's environment and builds
the Kafka Streams peer (bench/peers/kafka-streams, `mvn -q package`, cached in its target/) when
needed. Publishes the simulated events once to a fresh topic prefix; every throughput figure is
then measured on those same events, each repetition running every benchmark in turn, so the
ratios compare figures taken side by side. Prints a table of medians and ratios and writes
bench/results/bench-<UTC time>.json. Without KAFKA_BOOTSTRAP a broker is started and stopped here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streams.settings import Settings
from streams.simulate import SimConfig, simulate_to_kafka
from streams.simulate.config import parse_duration
from tests.support.broker import unique_name

from . import runs
from .agreement import compare
from .common import RESULTS, START_MS, broker, schema_registry
from .profile import summarise
from .stats import median

GROUPS = ("limit", "parcelflow", "scaleout", "peers", "latency", "replay", "profile", "registry")
DEFAULT_GROUPS = tuple(g for g in GROUPS if g != "registry")
"""``registry`` starts a schema registry (Java 21+) and publishes the events a second time: asked for by name."""
SCALE_OUT_PARTITIONS = 12
SCALE_OUT_WORKERS = (1, 2, 4)
SINGLE_OBJECT_RUN = "parcelflow, 1 worker, single-object"
CONFLUENT_RUN = "parcelflow, 1 worker, Confluent wire format + registry"
REQUIREMENTS = Path(__file__).resolve().parent / "requirements.txt"
PEER_REQUIREMENTS = Path(__file__).resolve().parent / "requirements-peers.txt"


def install_requirements() -> None:
    """Quix Streams for the peer, in a venv of its own (a no-op when present).

    quixstreams pins confluent-kafka below the version parcelflow needs, so installing it into the
    project's venv would downgrade that; the peer runs as a subprocess anyway.
    """
    python = runs.PEERS_VENV / "bin" / "python"
    stamp = runs.PEERS_VENV / ".requirements"
    wanted = PEER_REQUIREMENTS.read_text()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return
    print(f"installing the Quix Streams peer into {runs.PEERS_VENV}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(runs.PEERS_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(PEER_REQUIREMENTS)], check=True)
    stamp.write_text(wanted)


def install_profiler() -> None:
    """py-spy (a sampling profiler shipped as a wheel) next to this interpreter."""
    if not (Path(sys.executable).parent / "py-spy").exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)], check=True)


def parse_groups(text: str) -> set[str]:
    groups = {g.strip() for g in text.split(",") if g.strip()}
    unknown = groups - set(GROUPS)
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {sorted(unknown)}; choose from {', '.join(GROUPS)}")
    return groups


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        default=",".join(DEFAULT_GROUPS),
        help=f"comma-separated subset of {', '.join(GROUPS)} (default: all but registry)",
    )
    parser.add_argument("--skip", default="", help="comma-separated benchmarks to leave out")
    parser.add_argument("--duration", default="1h", help="simulated span of the events (default 1h)")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of each throughput figure (median)")
    parser.add_argument(
        "--latency-rates", default="5000,2000", help="events/s of the latency runs (the target is at 5000)"
    )
    parser.add_argument("--latency-seconds", type=float, default=25.0)
    parser.add_argument("--latency-scrape-ms", type=float, default=50.0, help="how often /metrics is scraped")
    args = parser.parse_args()
    selected = parse_groups(args.only) - parse_groups(args.skip)
    if "peers" in selected:
        install_requirements()
        runs.kafka_streams_classpath()  # build before anything is timed
    if "limit" in selected:
        runs.kafka_streams_classpath()

    config = SimConfig(start_ms=START_MS, seed=args.seed, duration_s=parse_duration(args.duration), scale=args.scale)
    report: dict[str, Any] = {
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "broker": "KAFKA_BOOTSTRAP" if os.environ.get("KAFKA_BOOTSTRAP") else "started by the bench",
        "events": {"seed": args.seed, "duration_s": config.duration_s, "scale": args.scale},
        "repeat": args.repeat,
        "runs": {},
    }
    samples: dict[str, list[float]] = report["runs"]
    with contextlib.ExitStack() as stack:
        bootstrap = stack.enter_context(broker())
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="parcelflow-bench-")))
        registry = stack.enter_context(schema_registry()) if "registry" in selected else None
        prefix = unique_name("bench")
        settings = Settings(bootstrap=bootstrap, topic_prefix=prefix, app_id=prefix, partitions=6)
        print(f"publishing {args.duration} of simulated network (scale {args.scale}) to {prefix}.scans.*", flush=True)
        produced = asyncio.run(simulate_to_kafka(config, settings, workdir / "truth.json"))
        sizes = runs.source_sizes(bootstrap, prefix)
        events = sum(sizes.values())
        report["events"].update(count=events, publish_events_per_s=round(produced.records_per_s))
        print(f"{events} events ({produced.records_per_s:,.0f}/s published)", flush=True)

        measurements: list[tuple[str, str, Callable[[], runs.Throughput]]] = []
        if "limit" in selected:
            measurements += [
                ("limit", "aiokafka consume + Avro decode", lambda: runs.raw_aiokafka(bootstrap, prefix, events)),
                ("limit", "kafka-consumer-perf-test", lambda: runs.consumer_perf_test(bootstrap, prefix, sizes)),
            ]
        if "parcelflow" in selected:
            measurements += [
                (
                    "parcelflow",
                    "parcelflow, 1 worker",
                    lambda: runs.parcelflow_workers(bootstrap, prefix, events, 1, workdir),
                ),
                (
                    "parcelflow",
                    "parcelflow, 2 workers",
                    lambda: runs.parcelflow_workers(bootstrap, prefix, events, 2, workdir),
                ),
            ]
        if registry is not None:
            # The same events again, in the Confluent wire format with registered schemas; both runs use a
            # worker with the registry set (it reads both framings), so only the framing differs.
            framed = replace(settings, topic_prefix=unique_name("benchsr"), schema_registry_url=registry)
            print(f"publishing them in the Confluent wire format to {framed.topic_prefix}.scans.*", flush=True)
            asyncio.run(simulate_to_kafka(config, framed, workdir / "truth-registry.json"))
            assert sum(runs.source_sizes(bootstrap, framed.topic_prefix).values()) == events
            report["registry"] = {"url": registry}
            measurements += [
                (
                    "registry",
                    SINGLE_OBJECT_RUN,
                    lambda: runs.parcelflow_workers(bootstrap, prefix, events, 1, workdir, registry=registry),
                ),
                (
                    "registry",
                    CONFLUENT_RUN,
                    lambda: runs.parcelflow_workers(
                        bootstrap, framed.topic_prefix, events, 1, workdir, registry=registry
                    ),
                ),
            ]
        if "scaleout" in selected:
            # The same events again, on 12 source partitions: the workers share them (and the hubs).
            wide = replace(settings, topic_prefix=unique_name("benchwide"), partitions=SCALE_OUT_PARTITIONS)
            print(f"publishing them on {SCALE_OUT_PARTITIONS} partitions to {wide.topic_prefix}.scans.*", flush=True)
            asyncio.run(simulate_to_kafka(config, wide, workdir / "truth-wide.json"))
            assert sum(runs.source_sizes(bootstrap, wide.topic_prefix).values()) == events
            for n in SCALE_OUT_WORKERS:
                measurements.append(
                    (
                        "scaleout",
                        scale_out_run(n),
                        functools.partial(
                            runs.parcelflow_workers,
                            bootstrap,
                            wide.topic_prefix,
                            events,
                            n,
                            workdir,
                            partitions=SCALE_OUT_PARTITIONS,
                        ),
                    )
                )
        # The peers' windows close on their stream time, which runs ahead when partitions are read at
        # different speeds (always, from a backlog): with a 120 s grace they drop most events as late.
        # The timed peer runs therefore use a grace longer than the events' span, so they aggregate
        # every event, like parcelflow; one run each with 120 s grace checks their windows below.
        no_drop_ms = (config.duration_s + 3600) * 1000
        if "peers" in selected:
            measurements += [
                (
                    "peers",
                    "Quix Streams peer",
                    lambda: runs.quix_streams(bootstrap, prefix, events, workdir, no_drop_ms),
                ),
                (
                    "peers",
                    "Kafka Streams peer",
                    lambda: runs.kafka_streams(bootstrap, prefix, events, workdir, no_drop_ms),
                ),
            ]
        for repetition in range(1, args.repeat + 1):
            for _group, name, measure in measurements:
                result = measure()
                samples.setdefault(name, []).append(round(result.per_s))
                cpu = ""
                if result.cpu_seconds:
                    report.setdefault("cpu_seconds", {}).setdefault(name, []).append(list(result.cpu_seconds))
                    cpu = ", CPU s per worker " + " ".join(f"{c:.1f}" for c in result.cpu_seconds)
                print(
                    f"[{repetition}/{args.repeat}] {name}: {result.per_s:,.0f} events/s ({result.seconds:.1f} s{cpu})",
                    flush=True,
                )

        if "peers" in selected:
            for name, run in (("Quix Streams", runs.quix_streams), ("Kafka Streams", runs.kafka_streams)):
                stem = "quixg" if name == "Quix Streams" else "kstreamsg"
                result = run(bootstrap, prefix, events, workdir, 120_000, stem)
                report.setdefault("peers_with_120s_grace", {})[name] = round(result.per_s)
                print(f"{name} peer with 120 s grace (drops late events): {result.per_s:,.0f} events/s", flush=True)
        if {"parcelflow", "peers"} <= selected:
            report["agreement"] = [a.__dict__ for a in compare(bootstrap, prefix)]
            for a in report["agreement"]:
                print(f"agreement: {a}", flush=True)
        if "profile" in selected:
            install_profiler()
            RESULTS.mkdir(exist_ok=True)
            collapsed = RESULTS / f"worker-pyspy-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.txt"
            result = runs.parcelflow_workers(bootstrap, prefix, events, 1, workdir, profile_to=collapsed)
            report["profile"] = {"events_per_s_under_py_spy": round(result.per_s), **summarise(collapsed.read_text())}
            print(f"profile (1 worker under py-spy, {result.per_s:,.0f} events/s):", flush=True)
            print(json.dumps(report["profile"], indent=1), flush=True)
        if "latency" in selected:
            report["latency"] = []
            for rate in [float(r) for r in args.latency_rates.split(",")]:
                lat = runs.latency(
                    bootstrap,
                    workdir / f"latency-{rate:.0f}",
                    rate,
                    args.latency_seconds,
                    args.latency_scrape_ms / 1000,
                )
                report["latency"].append(lat.__dict__)
                print(
                    f"latency: p50 {lat.p50 * 1000:.0f} ms, p99 {lat.p99 * 1000:.0f} ms at {lat.rate:,.0f} events/s",
                    flush=True,
                )
        if "replay" in selected:
            rep = runs.replay(bootstrap, prefix)
            report["replay"] = {
                "events": rep.events,
                "seconds": round(rep.seconds, 1),
                "events_per_s": round(rep.per_s),
                "cpu_us_per_event_by_hour": {str(h): round(us, 1) for h, us in rep.cpu_us_by_hour.items()},
            }
            print(f"replay: {rep.events} events in {rep.seconds:.1f} s", flush=True)

    report["table"] = rows = summary(report)
    print()
    width = max((len(r[0]) for r in rows), default=0)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"bench-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


def scale_out_run(workers: int) -> str:
    """Name of a scale-out run."""
    return f"parcelflow, {workers} worker{'s' if workers > 1 else ''}, {SCALE_OUT_PARTITIONS} partitions"


def busiest_share(cpu: list[float]) -> float:
    """The busiest worker's CPU time over the mean of all workers' (1.0 = perfectly even)."""
    return max(cpu) / (sum(cpu) / len(cpu)) if sum(cpu) > 0 else 0.0


def summary(report: dict[str, Any]) -> list[tuple[str, str]]:
    """Table rows: medians of every figure, then the ratios the targets are about."""
    runs_: dict[str, list[float]] = report["runs"]
    med = {name: median(values) for name, values in runs_.items()}
    rows = [
        (f"{name} (events/s)", f"{value:,.0f}   runs: {', '.join(f'{v:,.0f}' for v in runs_[name])}")
        for name, value in med.items()
    ]
    one = med.get("parcelflow, 1 worker")

    def ratio(label: str, other: str, target: str) -> None:
        if one is not None and other in med:
            rows.append((label, f"{one / med[other]:.2f}x   {target}".rstrip()))

    if one is not None:
        rows.append(("parcelflow per worker vs 30k/s", f"{one / 30_000:.2f}x   (reported)"))
    two = med.get("parcelflow, 2 workers")
    if one is not None and two is not None:
        rows.append(("2 workers / 1 worker", f"{two / one:.2f}x"))
    ratio("parcelflow / aiokafka consume+decode", "aiokafka consume + Avro decode", "(goal >= 0.5)")
    ratio("parcelflow / kafka-consumer-perf-test", "kafka-consumer-perf-test", "")
    # The targets of issue 12: the same-run ratios to the peers decide, not the absolute figure.
    ratio("parcelflow / Quix Streams", "Quix Streams peer", "(target >= 2.0)")
    ratio("parcelflow / Kafka Streams", "Kafka Streams peer", "(target >= 0.5)")
    single = med.get(scale_out_run(1))
    for n in SCALE_OUT_WORKERS:
        name = scale_out_run(n)
        if name not in med or single is None:
            continue
        shares = [busiest_share(cpu) for cpu in report.get("cpu_seconds", {}).get(name, [])]
        rows.append(
            (
                f"scale-out, {n} worker{'s' if n > 1 else ''} on {SCALE_OUT_PARTITIONS} partitions",
                f"{med[name] / single:.2f}x the events/s of 1 worker; busiest worker's CPU / mean"
                f" {median(shares):.2f}x (runs: {', '.join(f'{s:.2f}' for s in shares)}; target <= 1.3)",
            )
        )
    for lat in report.get("latency", []):
        rows.append(
            (
                f"publish->metric latency at {lat['rate']:,.0f}/s, 1 worker",
                f"p50 {lat['p50'] * 1000:,.0f} ms, p99 {lat['p99'] * 1000:,.0f} ms, max {lat['max'] * 1000:,.0f} ms"
                f" over {lat['seconds']:.0f} s; p50 by fifth of the run "
                + ", ".join(f"{p * 1000:,.0f}" for p in lat["p50_by_fifth"])
                + " ms (target p99 <= 1000 ms at 5000/s)",
            )
        )
    for name, per_s in report.get("peers_with_120s_grace", {}).items():
        rows.append((f"{name} peer, 120 s grace, 1 run (events/s)", f"{per_s:,.0f}   (drops events it sees as late)"))
    for a in report.get("agreement", []):
        rows.append(
            (
                f"{a['peer']} windows vs parcelflow's",
                f"{a['equal']} of {a['common']} closed windows both emitted are equal;"
                f" peer counted {a['parcels_share']:.1%} of parcelflow's parcels in them",
            )
        )
    confluent, single = med.get(CONFLUENT_RUN), med.get(SINGLE_OBJECT_RUN)
    if confluent is not None and single is not None:
        rows.append(("Confluent wire format / single-object, 1 worker", f"{confluent / single:.2f}x   (same events)"))
    if "replay" in report:
        rep = report["replay"]
        per_s = rep["events_per_s"]
        rows.append(
            ("replay, 2 workers (measured)", f"{rep['events']:,} events in {rep['seconds']} s = {per_s:,} events/s")
        )
        rows.append(("replay of 10 M events (extrapolated)", f"{10_000_000 / per_s / 60:.0f} min at the measured rate"))
        by_hour = {int(h): us for h, us in rep.get("cpu_us_per_event_by_hour", {}).items()}
        if len(by_hour) >= 2:
            first, last = min(by_hour), max(by_hour)
            rows.append(
                (
                    "replay, workers' CPU per event by event-time hour",
                    f"hour {first}: {by_hour[first]:,.0f} us, hour {last}: {by_hour[last]:,.0f} us ="
                    f" {by_hour[last] / by_hour[first]:.2f}x (target <= 1.2); all hours: "
                    + ", ".join(f"{us:,.0f}" for _h, us in sorted(by_hour.items())),
                )
            )
    return rows


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"bench took {time.monotonic() - started:.0f} s")
