"""The ``parcelflow`` command line: worker, publish, topics."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import IO, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from streams.settings import Settings, SettingsError

cli = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="parcelflow: real-time parcel flows per hub.",
)
err = Console(stderr=True, soft_wrap=True)

Bootstrap = Annotated[
    str | None, typer.Option("--bootstrap", "-b", help="Kafka bootstrap servers [env PARCELFLOW_BOOTSTRAP].")
]
Prefix = Annotated[str | None, typer.Option("--prefix", help="Topic prefix [env PARCELFLOW_TOPIC_PREFIX].")]


class CliError(Exception):
    """An error the user can act on: printed as one line, exit status 1."""


def _settings(bootstrap: str | None, prefix: str | None, **more: object) -> Settings:
    try:
        return Settings.from_env().with_overrides(bootstrap=bootstrap, topic_prefix=prefix, **more)
    except SettingsError as exc:
        raise CliError(str(exc)) from None


def _fail(message: str) -> None:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    sys.exit(1)


@cli.command()
def worker(
    bootstrap: Bootstrap = None,
    prefix: Prefix = None,
    metrics_port: Annotated[int | None, typer.Option(help="Port of /metrics [env PARCELFLOW_METRICS_PORT].")] = None,
    metrics_host: Annotated[str | None, typer.Option(help="Address of /metrics [env PARCELFLOW_METRICS_HOST].")] = None,
) -> None:
    """Run a stream worker: consume scans, count per hub and flow, serve /metrics."""
    from streams.worker import run_worker

    settings = _settings(bootstrap, prefix, metrics_port=metrics_port, metrics_host=metrics_host)
    run_worker(settings, err)


@cli.command()
def topics(bootstrap: Bootstrap = None, prefix: Prefix = None) -> None:
    """Create the pipeline's topics (sources, dead letters, throughput) if missing."""
    from streams.admin import ensure_topics, pipeline_topics

    settings = _settings(bootstrap, prefix)
    created = asyncio.run(ensure_topics(settings))
    for name in pipeline_topics(settings):
        err.print(f"{name}: {'created' if name in created else 'exists'}", highlight=False)


@cli.command()
def publish(
    file: Annotated[str, typer.Argument(help="JSON Lines or CSV file of scan events; '-' reads stdin.")],
    fmt: Annotated[str | None, typer.Option("--format", "-f", help="jsonl or csv (default: from the suffix).")] = None,
    bootstrap: Bootstrap = None,
    prefix: Prefix = None,
    show_errors: Annotated[int, typer.Option(help="How many rejected lines to list.")] = 20,
) -> None:
    """Validate and publish scan events; bad lines are reported by number and not sent."""
    from streams.publish import format_of, publish_stream

    settings = _settings(bootstrap, prefix)
    try:
        kind = format_of(file, fmt)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    stream: IO[str]
    if file == "-":
        stream, total = sys.stdin, None
    else:
        path = Path(file)
        if not path.is_file():
            raise CliError(f"{file}: no such file")
        with path.open("rb") as counting:
            total = sum(1 for _ in counting)
        stream = path.open(encoding="utf-8", newline="")
    with stream, _progress() as progress:
        task = progress.add_task("publishing", total=total)

        def on_line(number: int) -> None:
            if number % 1000 == 0:
                progress.update(task, completed=number)

        summary = asyncio.run(publish_stream(settings, stream, kind, on_line))
        progress.update(task, completed=total or 1, total=total or 1)
    for error in summary.errors[:show_errors]:
        err.print(f"[yellow]{file}:[/yellow] {error}", highlight=False)
    if summary.rejected > show_errors:
        err.print(f"... and {summary.rejected - show_errors} more rejected lines", highlight=False)
    err.print(f"sent {summary.sent}, rejected {summary.rejected}", highlight=False)
    if summary.rejected:
        raise typer.Exit(2)


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
    """Entry point: run the CLI, turning known errors into one line and exit status 1."""
    from aiokafka.errors import KafkaConnectionError, KafkaError

    # aiokafka logs retried produce errors (e.g. NotLeaderForPartition just after a topic is
    # created) and each failed connection attempt; the CLI reports what finally failed, once.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        cli()
    except CliError as exc:
        _fail(str(exc))
    except KafkaConnectionError as exc:
        _fail(f"cannot reach Kafka: {exc}")
    except KafkaError as exc:
        _fail(f"Kafka error: {exc}")
    except OSError as exc:
        _fail(str(exc))


if __name__ == "__main__":
    main()
