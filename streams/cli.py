"""The ``parcelflow`` command line: worker, publish, topics, simulate."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from streams.errors import ParcelflowError
from streams.events import ms_to_datetime
from streams.kafka.topics import Topics
from streams.settings import Settings, SettingsError, bootstrap_servers, registry_url

if TYPE_CHECKING:
    from streams.simulate.run import RunProgress

cli = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="parcelflow: real-time parcel flows per hub.",
)
err = Console(stderr=True, soft_wrap=True)

Bootstrap = Annotated[
    str | None, typer.Option("--bootstrap", "-b", help="Kafka bootstrap servers (env PARCELFLOW_BOOTSTRAP).")
]
Prefix = Annotated[str | None, typer.Option("--prefix", help="Topic prefix (env PARCELFLOW_TOPIC_PREFIX).")]
SchemaRegistryUrl = Annotated[
    str | None,
    typer.Option(
        "--schema-registry",
        help="Confluent-compatible schema registry URL: write the Confluent wire format with registered schemas "
        "(env PARCELFLOW_SCHEMA_REGISTRY_URL).",
    ),
]


class CliError(ParcelflowError):
    """An error the user can act on: printed as one line, exit status 1."""


def _settings(
    bootstrap: str | None, prefix: str | None, schema_registry: str | None = None, **more: object
) -> Settings:
    try:
        url = registry_url(schema_registry, "--schema-registry")
        servers = None if bootstrap is None else bootstrap_servers(bootstrap, "--bootstrap")
        return Settings.from_env().with_overrides(
            bootstrap=servers, topic_prefix=prefix, schema_registry_url=url, **more
        )
    except SettingsError as exc:
        raise CliError(str(exc)) from None


def _say(message: str) -> None:
    """Print one line literally: names, paths and file contents in it are never read as Rich markup."""
    err.print(Text(message), highlight=False)


def _warn(message: str) -> None:
    err.print(Text.assemble(("warning: ", "yellow"), message), highlight=False)


def _fail(message: str) -> None:
    err.print(Text.assemble(("error: ", "red"), message), highlight=False)
    sys.exit(1)


@cli.command()
def worker(
    bootstrap: Bootstrap = None,
    prefix: Prefix = None,
    metrics_port: Annotated[int | None, typer.Option(help="Port of /metrics (env PARCELFLOW_METRICS_PORT).")] = None,
    metrics_host: Annotated[str | None, typer.Option(help="Address of /metrics (env PARCELFLOW_METRICS_HOST).")] = None,
    schema_registry: SchemaRegistryUrl = None,
) -> None:
    """Run a stream worker: consume scans, count per hub and flow, serve /metrics."""
    from streams.worker.run import run_worker

    settings = _settings(bootstrap, prefix, schema_registry, metrics_port=metrics_port, metrics_host=metrics_host)
    run_worker(settings, err)


@cli.command()
def topics(
    bootstrap: Bootstrap = None,
    prefix: Prefix = None,
    retention: Annotated[
        str | None,
        typer.Option(
            help="Time retention of new source topics: 'unlimited' (default) or e.g. 30d "
            "(env PARCELFLOW_SOURCE_RETENTION). Kafka deletes by record timestamp = event time."
        ),
    ] = None,
) -> None:
    """Create the pipeline's topics (sources, dead letters, throughput, internal) if missing; show their retention."""
    from streams.durations import DurationError, describe_retention, parse_retention
    from streams.kafka.admin import ensure_topics, pipeline_topics, topic_configs, topic_retentions

    try:
        retention_ms = None if retention is None else parse_retention(retention)
    except DurationError as exc:
        raise CliError(f"--retention: {exc}") from None
    settings = _settings(bootstrap, prefix, source_retention_ms=retention_ms)
    created = asyncio.run(ensure_topics(settings))
    names = pipeline_topics(settings)
    kept = asyncio.run(topic_retentions(settings, names))
    sources = set(Topics(settings.topic_prefix).sources)
    for name in names:
        compacted = topic_configs(settings, name).get("cleanup.policy") == "compact"
        keeps = "compacted" if compacted else f"retention {describe_retention(kept[name])}"
        line = f"{name}: {'created' if name in created else 'exists'}, {keeps}"
        if name in sources and name not in created and kept[name] != settings.source_retention_ms:
            line += " (an existing topic keeps its retention: alter retention.ms to change it)"
        _say(line)


@cli.command()
def publish(
    file: Annotated[str, typer.Argument(help="JSON Lines or CSV file of scan events; '-' reads stdin.")],
    fmt: Annotated[str | None, typer.Option("--format", "-f", help="jsonl or csv (default: from the suffix).")] = None,
    bootstrap: Bootstrap = None,
    prefix: Prefix = None,
    show_errors: Annotated[int, typer.Option(help="How many rejected lines to list.")] = 20,
    schema_registry: SchemaRegistryUrl = None,
) -> None:
    """Validate and publish scan events; bad lines are reported by number and not sent."""
    from streams.ingest.publish import FormatError, format_of, publish_stream

    settings = _settings(bootstrap, prefix, schema_registry)
    try:
        kind = format_of(file, fmt)
    except FormatError as exc:
        raise CliError(str(exc)) from None
    stream: IO[bytes]  # bytes, decoded line by line: a byte that is not UTF-8 rejects its line, not the run
    if file == "-":
        stream, total = sys.stdin.buffer, None
    else:
        path = Path(file)
        if not path.is_file():
            raise CliError(f"{file}: no such file")
        with path.open("rb") as counting:
            total = sum(1 for _ in counting)
        stream = path.open("rb")
    with stream, _progress() as progress:
        task = progress.add_task("publishing", total=total)

        def on_line(number: int) -> None:
            if number % 1000 == 0:
                progress.update(task, completed=number)

        summary = asyncio.run(publish_stream(settings, stream, kind, on_line))
        progress.update(task, completed=total or 1, total=total or 1)
    for error in summary.errors[:show_errors]:
        err.print(Text.assemble((f"{file}:", "yellow"), f" {error}"), highlight=False)
    if summary.rejected > show_errors:
        _say(f"... and {summary.rejected - show_errors} more rejected lines")
    for warning in summary.warnings:
        _warn(warning)
    _say(f"sent {summary.sent}, rejected {summary.rejected}")
    if summary.rejected:
        raise typer.Exit(2)


@cli.command()
def archive(
    directory: Annotated[Path, typer.Argument(help="Folder of the archive (Avro files by source/day/hour).")],
    bootstrap: Bootstrap = None,
    prefix: Prefix = None,
    group: Annotated[str | None, typer.Option(help="Consumer group (default <prefix>-archive).")] = None,
    segment_seconds: Annotated[
        float, typer.Option(help="Seconds per segment: files closed, then offsets committed.")
    ] = 5.0,
    schema_registry: SchemaRegistryUrl = None,
) -> None:
    """Archive the raw scan events of the source topics until stopped (Ctrl-C)."""
    from streams.replay.archive import ArchiveStats, run_archiver

    settings = _settings(bootstrap, prefix, schema_registry)
    group_id = group or f"{settings.topic_prefix}-archive"
    _say(f"archiving {settings.topic_prefix}.scans.* into {directory} (group {group_id}); Ctrl-C stops")

    def report(stats: ArchiveStats) -> None:
        _say(
            f"archived {stats.records} records in {stats.files} files ({stats.segments} segments, "
            f"{stats.rejected} undecodable skipped)"
        )

    async def until_signal() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await run_archiver(
            settings.bootstrap,
            settings.topic_prefix,
            directory,
            group_id,
            segment_seconds,
            stop=stop,
            on_segment=report,
            registry_url=settings.schema_registry_url,
        )

    asyncio.run(until_signal())
    _say("stopped; everything archived is in closed files and committed")


replay_cli = typer.Typer(no_args_is_help=True, help="Replay history into an isolated namespace.")
cli.add_typer(replay_cli, name="replay")


def _speed(text: str) -> float | None:
    from streams.pacing import SpeedError, parse_speed

    try:
        return parse_speed(text)
    except SpeedError as exc:
        raise CliError(f"--speed: {exc}") from None


def _time(text: str | None, option: str) -> int | None:
    from streams.events import InvalidEvent, parse_event_time

    if text is None:
        return None
    try:
        return parse_event_time(text)
    except InvalidEvent as exc:
        raise CliError(f"{option}: {exc.detail}") from None


@replay_cli.command("run")
def replay_run(
    name: Annotated[str, typer.Argument(help="Namespace: topics replay.NAME.*, consumer group replay-NAME.")],
    archive_dir: Annotated[
        Path | None, typer.Option("--archive", help="Replay archive files from this folder.")
    ] = None,
    from_: Annotated[str | None, typer.Option("--from", help="Start (ISO 8601 with zone) of the time range.")] = None,
    to: Annotated[str | None, typer.Option("--to", help="End (exclusive) of the time range.")] = None,
    source_prefix: Annotated[str | None, typer.Option(help="Topic prefix to read history from (topics).")] = None,
    speed: Annotated[str, typer.Option(help="'max', or N for N× real time (1 = real time).")] = "max",
    on_error: Annotated[str, typer.Option(help="On a bad archive file: 'stop', or 'skip' it.")] = "stop",
    workers: Annotated[int, typer.Option(help="Workers to start for the namespace (0: start none).")] = 1,
    metrics_port: Annotated[int, typer.Option(help="Port of the first replay worker's /metrics.")] = 9200,
    bootstrap: Bootstrap = None,
    schema_registry: SchemaRegistryUrl = None,
) -> None:
    """Republish history with its event times into namespace NAME and aggregate it there."""
    from streams.replay.run import run_replay

    if on_error not in ("stop", "skip"):
        raise CliError("--on-error must be 'stop' or 'skip'")
    if archive_dir is not None and source_prefix is not None:
        raise CliError("history comes from --archive or from the topics of --source-prefix, not both")
    if archive_dir is not None and not archive_dir.is_dir():
        raise CliError(f"{archive_dir}: no such archive folder")
    settings = _settings(bootstrap, None, schema_registry)
    with _progress() as progress:
        run_replay(
            settings,
            name,
            archive_dir=archive_dir,
            from_ms=_time(from_, "--from"),
            to_ms=_time(to, "--to"),
            source_prefix=source_prefix or settings.topic_prefix,
            speed=_speed(speed),
            on_error=on_error,
            workers=workers,
            metrics_port=metrics_port,
            progress=progress,
            console=err,
        )


@replay_cli.command("list")
def replay_list(bootstrap: Bootstrap = None) -> None:
    """List replay namespaces and how many records their source topics hold."""
    from streams.replay.run import namespace_sizes

    for name, records in asyncio.run(namespace_sizes(_settings(bootstrap, None))).items():
        print(f"{name}\t{records}")


@replay_cli.command("clean")
def replay_clean(
    name: Annotated[str, typer.Argument(help="Namespace to delete.")],
    bootstrap: Bootstrap = None,
) -> None:
    """Delete a replay namespace: its topics, internal topics and scrape targets."""
    from streams.replay.run import clean_namespace

    deleted = asyncio.run(clean_namespace(_settings(bootstrap, None), name))
    _say(f"deleted {len(deleted)} topics of replay {name}")


OUTPUTS = ("jsonl", "avro", "kafka")
SIM_START = "yesterday"
"""The simulator's default start, 00:00 UTC of the previous day. Not a fixed date: a fixed one ages
past every topic's time retention (Kafka deletes by record timestamp). Day-aligned, it keeps windows
aligned, stays in the past for runs of up to a day and is the same all day; with ``--start`` and
``--seed`` given, a run is byte-identical whenever it is made."""


@cli.command()
def simulate(
    to: Annotated[
        list[str] | None, typer.Option("--to", help="jsonl, avro or kafka; repeat for several (default: jsonl).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Directory for the event files (one per source) and truth.json.")] = Path(
        "out"
    ),
    truth: Annotated[
        Path | None, typer.Option(help="Ground-truth file (default: OUT/truth.json, or ./truth.json for Kafka only).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Same seed and options, same events, byte for byte.")] = 1,
    start: Annotated[
        str,
        typer.Option(
            help="Simulated start: ISO 8601 with a zone, 'now', 'now-24h', 'today' or 'yesterday' (00:00 UTC)."
        ),
    ] = SIM_START,
    duration: Annotated[str, typer.Option(help="Simulated span, e.g. 90s, 45m, 6h, 2d.")] = "1h",
    scale: Annotated[float, typer.Option(help="Volume multiplier (1 ≈ 4 M events per simulated day).")] = 1.0,
    speed: Annotated[str, typer.Option(help="Simulated seconds per wall-clock second (1, 60, …) or 'max'.")] = "max",
    disorder: Annotated[float, typer.Option(help="Share of events emitted out of order.")] = 0.0,
    disorder_max: Annotated[float, typer.Option(help="Largest out-of-order delay, simulated seconds.")] = 60.0,
    late: Annotated[float, typer.Option(help="Share of flow events emitted --late-delay late.")] = 0.0,
    late_delay: Annotated[float, typer.Option(help="Delay of late events, simulated seconds.")] = 1800.0,
    corrupt: Annotated[float, typer.Option(help="Share of extra corrupt records.")] = 0.0,
    bootstrap: Bootstrap = None,
    prefix: Prefix = None,
    schema_registry: SchemaRegistryUrl = None,
) -> None:
    """Generate the hub network's scan events (files or Kafka) and the ground truth of the run."""
    from streams.pacing import SpeedError, parse_speed
    from streams.simulate.config import ConfigError, SimConfig, parse_duration, parse_start
    from streams.simulate.run import TRUTH_FILE, simulate_to_files, simulate_to_kafka

    outputs = list(dict.fromkeys(to or ["jsonl"]))
    unknown = [o for o in outputs if o not in OUTPUTS]
    if unknown:
        raise CliError(f"unknown output {unknown[0]!r} (choose from {', '.join(OUTPUTS)})")
    try:
        config = SimConfig(
            seed=seed,
            start_ms=parse_start(start),
            duration_s=parse_duration(duration),
            scale=scale,
            disorder=disorder,
            disorder_max_s=disorder_max,
            late=late,
            late_delay_s=late_delay,
            corrupt=corrupt,
        )
        pace = parse_speed(speed)
    except (ConfigError, SpeedError) as exc:
        raise CliError(str(exc)) from None
    formats = [o for o in outputs if o != "kafka"]
    truth_path = truth or (out / TRUTH_FILE if formats else Path(TRUTH_FILE))
    with _sim_progress() as progress:
        task = progress.add_task("simulating", total=1000, sim="", rate="", records="")

        def on_progress(state: RunProgress) -> None:
            progress.update(
                task,
                completed=state.fraction * 1000,
                sim=ms_to_datetime(state.sim_ms).strftime("%Y-%m-%d %H:%M:%SZ"),
                rate=f"{state.records_per_s:,.0f} rec/s",
                records=f"{state.records:,} records",
            )

        if "kafka" in outputs:
            from aiokafka.errors import InvalidTimestampError

            settings = _settings(bootstrap, prefix, schema_registry)
            try:
                result = asyncio.run(
                    simulate_to_kafka(
                        config, settings, truth_path, pace, out if formats else None, formats, on_progress
                    )
                )
            except InvalidTimestampError:
                raise CliError(
                    "the broker refused the event times (Kafka rejects timestamps more than "
                    "log.message.timestamp.after.max.ms ahead of its clock, 1 h by default): "
                    "for times after now use a finite --speed, e.g. --start now --speed 1"
                ) from None
        else:
            result = simulate_to_files(config, out, formats, pace, truth_path, on_progress)
    events = result.truth["events"]
    sources = ", ".join(f"{name} {count:,}" for name, count in events["by_source"].items())
    _say(
        f"simulated {config.start_iso} + {config.duration_s:,} s: {events['total']:,} events ({sources}), "
        f"{events['corrupt']:,} corrupt, {events['late']:,} late, {events['out_of_order']:,} out of order "
        f"in {result.wall_s:.1f} s ({result.records_per_s:,.0f} records/s)"
    )
    if "kafka" in outputs:
        _say(f"sent to {settings.topic_prefix}.scans.* on {settings.bootstrap}")
    for warning in result.warnings:
        _warn(warning)
    for path in result.files:
        _say(f"wrote {path}")
    _say(f"truth: {truth_path}")


def _sim_progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[sim]}"),
        TextColumn("{task.fields[rate]}"),
        TextColumn("{task.fields[records]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


def main() -> None:
    """Entry point: run the CLI, turning parcelflow's own and Kafka's errors into one line and exit status 1.

    Only those: anything else is a bug, and keeps its traceback.
    """
    from aiokafka.errors import KafkaConnectionError, KafkaError

    # aiokafka logs retried produce errors (e.g. NotLeaderForPartition just after a topic is
    # created) and each failed connection attempt; the CLI reports what finally failed, once.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        cli()
    except ParcelflowError as exc:  # CliError, SettingsError, RegistryError, ReplayFailed, NamespaceError, ...
        _fail(str(exc))
    except KafkaConnectionError as exc:
        _fail(f"cannot reach Kafka: {exc}")
    except KafkaError as exc:
        _fail(f"Kafka error: {exc}")
    except OSError as exc:
        _fail(str(exc))


if __name__ == "__main__":
    main()
