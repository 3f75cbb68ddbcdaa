"""Running a replay: namespace topics, its workers, republishing with progress, waiting for it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.text import Text

from streams.errors import ParcelflowError
from streams.events import ms_to_datetime
from streams.kafka.admin import delete_topics, ensure_topics, list_topics, pipeline_caught_up
from streams.kafka.clients import ConsumerConfig, consumer_client, partitions_of
from streams.kafka.registry import WriterSchemas, confluent_codec
from streams.kafka.topics import Topics
from streams.replay.archive import ArchiveError, archived_files
from streams.replay.namespaces import Namespace, WorkerGroup, names_in, targets_file, write_targets
from streams.replay.republish import (
    Reframer,
    ReplayErrors,
    ReplayRecord,
    ReplayStats,
    archive_records,
    republish,
    topic_records,
)
from streams.settings import Settings
from streams.worker.health import Health

REGISTRY_ATTEMPTS = 4
"""A replay is a command: after this many tries (~4 s) an unreachable registry ends it with one line."""


class ReplayFailed(ParcelflowError):
    """A replay that could not complete (printed as one line by the CLI)."""


async def source_partitions(settings: Settings, prefix: str) -> int:
    """Partition count of a namespace's source topics (the most of the three)."""
    async with consumer_client(ConsumerConfig(settings.bootstrap)) as consumer:
        found = await partitions_of(consumer, list(Topics(prefix).sources))
        return max((tp.partition + 1 for tp in found), default=0)


def run_replay(
    settings: Settings,
    name: str,
    *,
    archive_dir: Path | None,
    from_ms: int | None,
    to_ms: int | None,
    source_prefix: str,
    speed: float | None,
    on_error: str,
    workers: int,
    metrics_port: int,
    progress: Progress | None = None,
    console: Console | None = None,
    catch_up_timeout: float = 3600,
) -> ReplayStats:
    """Replay into namespace ``name``; with workers, return once they aggregated everything."""
    namespace = Namespace(name)
    if archive_dir is not None:
        partitions = max((f.partition + 1 for f in archived_files(archive_dir)), default=0)
        if partitions == 0:
            raise ReplayFailed(f"{archive_dir}: no archive files")
    else:
        partitions = asyncio.run(source_partitions(settings, source_prefix))
        if partitions == 0:
            raise ReplayFailed(f"no source topics with prefix {source_prefix!r}")
    target = namespace.settings(settings, max(partitions, settings.partitions))
    asyncio.run(ensure_topics(target))
    # With a registry, the namespace's subjects are registered and records written in the Confluent format.
    codec = confluent_codec(settings, target.topic_prefix)
    reframe = None
    if archive_dir is None and settings.schema_registry_url is not None:
        reframe = Reframer(codec, WriterSchemas.from_settings(settings, Health(), attempts=REGISTRY_ATTEMPTS))
    group = WorkerGroup(target, workers, metrics_port, settings.data_dir / namespace.app_id / "logs")
    targets = targets_file(settings.targets_dir, namespace)
    errors = ReplayErrors()
    try:
        if workers:
            group.start()
            write_targets(settings.targets_dir, namespace, settings.metrics_host, group.ports)
        task = progress.add_task(f"replay {name}", total=None) if progress is not None else None

        def on_progress(stats: ReplayStats) -> None:
            if progress is None or task is None or stats.last_ms is None:
                return
            reached = ms_to_datetime(stats.last_ms).strftime("%Y-%m-%d %H:%M:%S")
            eta = ""
            if speed is not None and to_ms is not None:
                eta = f", ETA {max(0.0, (to_ms - stats.last_ms) / 1000 / speed):.0f} s"
            progress.update(
                task,
                description=f"replay {name}: event time {reached}Z, {stats.records} events, {stats.rate:,.0f}/s{eta}",
            )

        records: Iterator[ReplayRecord] | AsyncIterator[ReplayRecord]
        if archive_dir is not None:
            records = archive_records(archive_dir, codec, from_ms, to_ms, on_error, errors)
        else:
            records = topic_records(settings.bootstrap, source_prefix, from_ms, to_ms)
        try:
            stats = asyncio.run(
                republish(records, settings.bootstrap, target.topic_prefix, speed, on_progress, reframe=reframe)
            )
        except ArchiveError as exc:
            raise ReplayFailed(f"{exc} (use --on-error skip to replay the rest)") from None
        for problem in errors.files:
            if console is not None:
                console.print(Text.assemble(("skipped ", "yellow"), problem), highlight=False)
        if workers:
            _wait_for_workers(target, group, catch_up_timeout)
        if console is not None:
            console.print(
                f"replay {name}: {stats.records} events republished to {target.topic_prefix}.scans.*"
                + (f" and aggregated into {Topics(target.topic_prefix).throughput}" if workers else ""),
                highlight=False,
                markup=False,
            )
        return stats
    finally:
        group.stop()
        targets.unlink(missing_ok=True)


def _wait_for_workers(target: Settings, group: WorkerGroup, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not group.alive():
            raise ReplayFailed(f"a replay worker stopped; see its log in {group.log_dir}")
        try:
            if asyncio.run(pipeline_caught_up(target.bootstrap, target.topic_prefix, target.app_id)):
                return
        except Exception:  # noqa: BLE001 - the coordinator may not be ready yet: try again
            pass
        time.sleep(1)
    raise ReplayFailed(f"replay workers did not catch up within {timeout:.0f} s")


async def namespace_sizes(settings: Settings) -> dict[str, int]:
    """Replay namespaces and the number of records in their source topics."""
    names = names_in(await list_topics(settings))
    if not names:
        return {}
    async with consumer_client(ConsumerConfig(settings.bootstrap)) as consumer:
        sizes = {}
        for name in names:
            partitions = await partitions_of(consumer, list(Topics(Namespace(name).prefix).sources))
            ends = await consumer.end_offsets(partitions)
            begins = await consumer.beginning_offsets(partitions)
            sizes[name] = sum(ends[tp] - begins[tp] for tp in partitions)
        return sizes


async def clean_namespace(settings: Settings, name: str) -> list[str]:
    """Delete a namespace's topics and its scrape target file."""
    namespace = Namespace(name)
    deleted = await delete_topics(settings, namespace.owned_topic_prefixes())
    targets_file(settings.targets_dir, namespace).unlink(missing_ok=True)
    return deleted
