"""One measurement each: the physical limit, parcelflow's workers, the two peers, latency, replay.

Every throughput run reads the same events (the source topics of one prefix) with its own consumer
group and is timed from the first record it processed until the group has committed every record
of its input and internal topics (polled every 0.5 s; all groups commit every 2.8 s), so start-up
(JVM, Faust boot, group join) is not counted, and the time to commit is counted alike for all.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from streams.ingest.publish import Publisher
from streams.kafka.admin import ensure_topics, list_topics
from streams.kafka.clients import ConsumerConfig, consumer_client, partitions_of
from streams.kafka.codec import Codec
from streams.kafka.topics import Topics
from streams.processes import stop_processes
from streams.replay.run import run_replay
from streams.settings import Settings
from streams.simulate import SimConfig, scan_events
from tests.support.broker import free_port, unique_name
from tests.support.paths import REPO
from tests.support.pipeline import group_done, pipeline_done
from tests.support.workers import WorkerProcess, scrape, total

from .common import START_MS
from .stats import cpu_per_event_by_hour, publish_to_count_latencies, quantile

PEERS_VENV = REPO / ".cache" / "bench-peers"
"""The Quix Streams peer's own venv (its confluent-kafka pin differs from parcelflow's)."""

KAFKA_STREAMS_DIR = Path(__file__).resolve().parent / "peers" / "kafka-streams"
POLL_S = 0.5
EVENTS_TOTAL = "parcelflow_events_total"
AGGREGATED = "parcelflow_aggregated_scans_total"
"""Counted by the first aggregation stage, where a scan's cost is: the intake may run ahead of it."""
WATERMARK = "parcelflow_watermark_timestamp_seconds"


@dataclass(frozen=True)
class Throughput:
    """Events processed and the seconds it took (first record → everything committed)."""

    events: int
    seconds: float
    cpu_seconds: tuple[float, ...] = ()
    """CPU time (user + system) of each worker process over the timed span (parcelflow runs)."""

    @property
    def per_s(self) -> float:
        """Events per second."""
        return self.events / self.seconds


def source_sizes(bootstrap: str, prefix: str) -> dict[str, int]:
    """Records in each source topic of ``prefix``."""

    async def run() -> dict[str, int]:
        async with consumer_client(ConsumerConfig(bootstrap)) as consumer:
            partitions = await partitions_of(consumer, list(Topics(prefix).sources))
            ends = await consumer.end_offsets(partitions)
            begins = await consumer.beginning_offsets(partitions)
            sizes: dict[str, int] = {}
            for tp in partitions:
                sizes[tp.topic] = sizes.get(tp.topic, 0) + ends[tp] - begins[tp]
            return sizes

    return asyncio.run(run())


# --- the limit ------------------------------------------------------------------------------------


def raw_aiokafka(bootstrap: str, prefix: str, expected: int) -> Throughput:
    """Consume every source partition with plain aiokafka and Avro-decode each record (no Faust)."""

    async def run() -> Throughput:
        codec = Codec()
        config = ConsumerConfig(bootstrap, offset_reset="earliest", max_poll_records=5000)
        async with consumer_client(config) as consumer:
            partitions = await partitions_of(consumer, list(Topics(prefix).sources))
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            done = 0
            started: float | None = None
            while done < expected:
                batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
                if started is None and batches:
                    started = time.perf_counter()
                for records in batches.values():
                    for record in records:
                        codec.decode_record(record.value)
                    done += len(records)
            assert started is not None
            return Throughput(done, time.perf_counter() - started)

    return asyncio.run(run())


def consumer_perf_test(bootstrap: str, prefix: str, sizes: dict[str, int]) -> Throughput:
    """Kafka's own ConsumerPerformance over the three topics in turn: messages / fetch time (no decode)."""
    events = 0
    fetch_ms = 0.0
    for topic, size in sizes.items():
        done = subprocess.run(
            ["java", "-Xmx512m", "-cp", kafka_streams_classpath(), "org.apache.kafka.tools.ConsumerPerformance"]
            + ["--bootstrap-server", bootstrap, "--topic", topic, "--messages", str(size)]
            + ["--group", unique_name("perf"), "--timeout", "60000"],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        rows = list(csv.reader(io.StringIO(done.stdout.strip()), skipinitialspace=True))
        header, values = rows[-2], rows[-1]
        row = dict(zip([h.strip() for h in header], values, strict=True))
        events += int(row["data.consumed.in.nMsg"])
        fetch_ms += float(row["fetch.time.ms"])
    return Throughput(events, fetch_ms / 1000)


# --- consumer groups run as processes ---------------------------------------------------------------


def wait_group(
    group: str,
    caught_up: Callable[[], bool],
    first_at: Callable[[], float | None],
    alive: Callable[[], bool],
    timeout: float,
) -> float:
    """Wall seconds from the first processed record until ``group`` has committed everything (``caught_up``)."""
    deadline = time.monotonic() + timeout
    started: float | None = None
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"a process of group {group} stopped")
        if started is None:
            started = first_at()
        if started is not None and caught_up():
            assert started is not None
            return time.time() - started
        time.sleep(POLL_S if started is not None else 0.1)
    raise TimeoutError(f"group {group} did not catch up within {timeout:.0f} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14 and 15


def parcelflow_workers(
    bootstrap: str,
    prefix: str,
    events: int,
    workers: int,
    workdir: Path,
    profile_to: Path | None = None,
    registry: str | None = None,
    partitions: int = 6,
) -> Throughput:
    """Full parcelflow workers (decode, validate, windows, dwell, backlog, metrics) on the events.

    ``partitions`` is the partition count of the worker's own topics (it must equal the sources').
    Each worker's CPU time is taken when the first event is counted and again when everything is
    committed, so start-up is not in it.
    """
    app_id = unique_name(f"pf{workers}")
    processes = []
    spy: subprocess.Popen[bytes] | None = None
    try:
        for n in range(workers):
            process = WorkerProcess(
                bootstrap, prefix, workdir / f"{app_id}-{n}", app_id=app_id, registry=registry, partitions=partitions
            )
            (workdir / f"{app_id}-{n}").mkdir(parents=True)
            processes.append(process)
        for process in processes:
            process.start()
        if profile_to is not None:  # sample the first worker with py-spy, without pausing it
            assert processes[0].process is not None
            spy = subprocess.Popen(
                [str(Path(sys.executable).parent / "py-spy"), "record", "--nonblocking", "--format", "raw"]
                + ["--rate", "200", "-o", str(profile_to), "--pid", str(processes[0].process.pid)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

        pids = [p.process.pid for p in processes if p.process is not None]
        cpu_at_start: list[float] = []

        def first_at() -> float | None:
            counted = sum(total(scrape(p.metrics_port), EVENTS_TOTAL) for p in processes)
            if counted == 0:
                return None
            cpu_at_start.extend(cpu_seconds(pid) for pid in pids)
            return time.time()

        seconds = wait_group(
            app_id,
            lambda: pipeline_done(bootstrap, prefix, app_id),
            first_at,
            lambda: all(p.process is not None and p.process.poll() is None for p in processes),
            timeout=1800,
        )
        used = tuple(cpu_seconds(pid) - before for pid, before in zip(pids, cpu_at_start, strict=True))
        return Throughput(events, seconds, used)
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        for process in processes:
            process.stop()


class PeerProcess:
    """A peer subprocess whose stdout announces ``first <unix time>``; stopped by PID."""

    def __init__(self, command: list[str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}
            )

    def first_at(self) -> float | None:
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("first "):
                return float(line.split()[1])
        return None

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        stop_processes([self.process])

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:]


def quix_streams(
    bootstrap: str, prefix: str, events: int, workdir: Path, grace_ms: int = 120_000, stem: str = "quix"
) -> Throughput:
    """The Quix Streams peer (bench/peers/quix_throughput.py) on the events."""
    group = unique_name(stem)
    output = f"{prefix}.{group}.windows"
    peer = PeerProcess(
        [str(PEERS_VENV / "bin" / "python"), "-m", "bench.peers.quix_throughput", "--bootstrap", bootstrap]
        + ["--prefix", prefix]
        + ["--group", group, "--output", output, "--state-dir", str(workdir / group), "--grace-ms", str(grace_ms)],
        workdir / f"{group}.log",
    )

    def topics() -> list[str] | None:
        names = asyncio.run(list_topics(Settings(bootstrap=bootstrap)))
        repartition = [t for t in names if t.startswith("repartition") and group in t]
        return [*Topics(prefix).sources, *repartition] if repartition else None

    try:

        def caught_up() -> bool:
            names = topics()
            return names is not None and group_done(bootstrap, group, names)

        return Throughput(events, wait_group(group, caught_up, peer.first_at, peer.alive, timeout=1800))
    except Exception as exc:
        raise RuntimeError(f"{exc}\n{peer.tail()}") from None
    finally:
        peer.stop()


def kafka_streams_classpath() -> str:
    """Runtime classpath of the Kafka Streams peer (and Kafka's tools), built if missing or stale."""
    jar = KAFKA_STREAMS_DIR / "target" / "parcelflow-bench-kafka-streams-1.jar"
    sources = [KAFKA_STREAMS_DIR / "pom.xml", *KAFKA_STREAMS_DIR.glob("src/**/*.java")]
    if not jar.exists() or any(s.stat().st_mtime > jar.stat().st_mtime for s in sources):
        subprocess.run(["mvn", "-B", "-q", "package"], cwd=KAFKA_STREAMS_DIR, check=True)
    return f"{jar}{os.pathsep}{KAFKA_STREAMS_DIR / 'target' / 'libs'}/*"


def kafka_streams(
    bootstrap: str, prefix: str, events: int, workdir: Path, grace_ms: int = 120_000, stem: str = "kstreams"
) -> Throughput:
    """The Kafka Streams peer (bench/peers/kafka-streams, one stream thread) on the events."""
    app_id = unique_name(stem)
    output = f"{prefix}.{app_id}.windows"
    command = ["java", "-Xmx1g", "-cp", kafka_streams_classpath(), "io.parcelflow.bench.ThroughputWindows"]
    command += [bootstrap, prefix, app_id, output, str(REPO / "schemas"), str(workdir / app_id), str(grace_ms)]
    peer = PeerProcess(command, workdir / f"{app_id}.log")
    topics = [*Topics(prefix).sources, f"{app_id}-hub-flow-repartition"]
    try:
        caught_up = lambda: group_done(bootstrap, app_id, topics)  # noqa: E731
        return Throughput(events, wait_group(app_id, caught_up, peer.first_at, peer.alive, 1800))
    except Exception as exc:
        raise RuntimeError(f"{exc}\n{peer.tail()}") from None
    finally:
        peer.stop()


# --- latency -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Latency:
    """Publish→metric latency of a paced run."""

    rate: float
    seconds: float
    events: int
    counted: int
    p50: float
    p99: float
    max: float
    scrape_interval: float
    scrape_p50: float
    p50_by_fifth: list[float]  # p50 of each fifth of the run, in publish order: a rising trend = a queue


class Scraper(threading.Thread):
    """Scrapes one worker's count of scans aggregated every ``interval`` seconds into (time, count) pairs."""

    def __init__(self, port: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self.durations: list[float] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            began = time.monotonic()
            count = total(scrape(self.port), AGGREGATED)
            self.samples.append((time.monotonic(), count))
            self.durations.append(time.monotonic() - began)
            self.stopping.wait(self.interval)


def latency(bootstrap: str, workdir: Path, rate: float, seconds: float, scrape_s: float = 0.02) -> Latency:
    """One worker; parcel scans published at ``rate``/s with event time = now; when does /metrics count them.

    Counted means taken by the first aggregation stage (``parcelflow_aggregated_scans_total``),
    after the intake and the by-partition topic: hence parcel scans only, which all get there.
    """
    prefix = unique_name("latency")
    settings = Settings(bootstrap=bootstrap, topic_prefix=prefix, app_id=prefix, partitions=6)
    asyncio.run(ensure_topics(settings))
    wanted = int(rate * seconds)
    events = []
    for event in scan_events(SimConfig(start_ms=START_MS, seed=2, duration_s=6 * 3600, scale=1.0)):
        if event.parcel_id is None:
            continue
        events.append(event)
        if len(events) == wanted + 1:
            break
    workdir.mkdir(parents=True, exist_ok=True)
    worker = WorkerProcess(bootstrap, prefix, workdir, app_id=prefix, partitions=6)
    scraper = Scraper(worker.metrics_port, scrape_s)
    published: list[tuple[float, int]] = []

    async def publish() -> None:
        async with Publisher(settings) as publisher:
            now_ms = int(time.time() * 1000)
            await (await publisher.send(replace(events[0], event_time_ms=now_ms)))  # warm-up: wait until counted
            deadline = time.monotonic() + 120
            while total(scrape(worker.metrics_port), AGGREGATED) < 1:
                if time.monotonic() > deadline:
                    raise TimeoutError("the worker never counted the warm-up event")
                await asyncio.sleep(0.1)
            scraper.start()
            tick = 0.01
            per_tick = rate * tick
            began = time.monotonic()
            sent = 0
            pending = []
            while sent < wanted:
                due = min(wanted, int((time.monotonic() - began) / tick * per_tick) + 1)
                now_ms = int(time.time() * 1000)
                while sent < due:
                    sent += 1
                    pending.append(await publisher.send(replace(events[sent], event_time_ms=now_ms)))
                published.append((time.monotonic(), sent))
                await asyncio.sleep(max(0.0, began + (sent / rate) - time.monotonic()))
            await asyncio.gather(*pending)

    try:
        worker.start()
        asyncio.run(publish())
        deadline = time.monotonic() + 60
        while (not scraper.samples or scraper.samples[-1][1] - 1 < wanted) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        scraper.stopping.set()
        if scraper.is_alive():
            scraper.join(timeout=5)
        worker.stop()
    counts = [(at, count - 1) for at, count in scraper.samples]  # the warm-up event was counted before
    lat = publish_to_count_latencies(published, counts)
    span = published[-1][0] - published[0][0] if len(published) > 1 else 0.0
    return Latency(
        rate=wanted / span if span else 0.0,
        seconds=span,
        events=wanted,
        counted=len(lat),
        p50=quantile(lat, 0.5),
        p99=quantile(lat, 0.99),
        max=max(lat),
        scrape_interval=scrape_s,
        scrape_p50=quantile(scraper.durations, 0.5),
        p50_by_fifth=[quantile(lat[i * len(lat) // 5 : (i + 1) * len(lat) // 5], 0.5) for i in range(5)],
    )


# --- replay --------------------------------------------------------------------------------------


class ProgressSampler(threading.Thread):
    """Scrapes workers every ``interval`` s: (CPU seconds, scans aggregated, newest watermark ms), summed/newest.

    Progress is what the first aggregation stage has taken, not what the intake has counted: the
    intake can run far ahead (its by-partition records wait on the broker), and CPU spent on that
    backlog would be charged to the few events the intake counts at the end of a replay.
    """

    def __init__(self, ports: list[int], interval: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.ports = ports
        self.interval = interval
        self.samples: list[tuple[float, float, float]] = []
        self.events = 0.0  # counted by the intakes at the last sample
        self.stopping = threading.Event()

    def us_per_event_by_hour(self, start_ms: int) -> dict[int, float]:
        """CPU µs per event in each hour of event time, from the CPU per scan aggregated.

        Scaled by scans per event over the run (flight and truck movements without a parcel are
        events the first stage never sees), so the figures are per event and their ratios unchanged.
        """
        per_scan = cpu_per_event_by_hour(self.samples, start_ms)
        scans_per_event = self.samples[-1][1] / self.events if self.samples and self.events else 1.0
        return {hour: us * scans_per_event for hour, us in per_scan.items()}

    def run(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                scraped = [scrape(port) for port in self.ports]
            except OSError:  # a worker not serving yet (or stopping): the next scrape counts it
                continue
            watermarks = [v for s in scraped for (name, _l), v in s.items() if name == WATERMARK]
            scans = sum(total(s, AGGREGATED) for s in scraped)
            if watermarks and scans > 0:
                cpu = sum(total(s, "process_cpu_seconds_total") for s in scraped)
                self.samples.append((cpu, scans, max(watermarks) * 1000))
                self.events = sum(total(s, EVENTS_TOTAL) for s in scraped)


@dataclass(frozen=True)
class Replay(Throughput):
    """A replay's throughput, and its workers' CPU µs per event in each hour of event time."""

    cpu_us_by_hour: dict[int, float] = field(default_factory=dict)


def replay(bootstrap: str, prefix: str, workers: int = 2, start_ms: int = START_MS) -> Replay:
    """``run_replay`` of every record of ``prefix`` at full speed, with ``workers`` workers.

    The workers are scraped every second for their CPU time, events and watermark, which gives the
    CPU cost per event in each hour of event time (hour 0 begins at ``start_ms``): a cost that grows
    with the state a long replay keeps shows as later hours costing more.
    """
    metrics_port = free_port()
    sampler = ProgressSampler([metrics_port + n for n in range(workers)])
    with tempfile.TemporaryDirectory(prefix="parcelflow-bench-replay-") as tmp:
        settings = Settings(
            bootstrap=bootstrap, data_dir=Path(tmp) / "data", targets_dir=Path(tmp) / "targets", partitions=6
        )
        began = time.monotonic()
        sampler.start()
        try:
            stats = run_replay(
                settings,
                unique_name("r").removeprefix("t-"),
                archive_dir=None,
                from_ms=None,
                to_ms=None,
                source_prefix=prefix,
                speed=None,
                on_error="stop",
                workers=workers,
                metrics_port=metrics_port,
            )
        finally:
            sampler.stopping.set()
            sampler.join(timeout=10)
        return Replay(stats.records, time.monotonic() - began, cpu_us_by_hour=sampler.us_per_event_by_hour(start_ms))
