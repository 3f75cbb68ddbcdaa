"""Topic administration: create the pipeline's topics with the configured partitions."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.settings import Settings
from streams.topology import Topics


def pipeline_topics(settings: Settings) -> list[str]:
    """Every topic the pipeline needs: sources, dead letters, throughput, the app's by-hub topic."""
    topics = Topics(settings.topic_prefix)
    return [*topics.sources, topics.deadletter, topics.throughput, topics.by_hub(settings.app_id)]


def _topic_configs(settings: Settings, name: str) -> dict[str, str]:
    # One record per window key: compaction keeps the latest revision of every window.
    return {"cleanup.policy": "compact"} if name == Topics(settings.topic_prefix).throughput else {}


async def ensure_topics(settings: Settings, names: list[str] | None = None) -> list[str]:
    """Create the missing pipeline topics; return the names that were created."""
    wanted = names if names is not None else pipeline_topics(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap, client_id="parcelflow-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in wanted if n not in existing]
        if missing:
            new = [
                NewTopic(
                    n,
                    num_partitions=settings.partitions,
                    replication_factor=settings.replication,
                    topic_configs=_topic_configs(settings, n),
                )
                for n in missing
            ]
            response = await admin.create_topics(new)
            for name, code, *_ in getattr(response, "topic_errors", []):
                if code not in (0, TopicAlreadyExistsError.errno):
                    raise RuntimeError(f"could not create topic {name}: error code {code}")
            await _wait_for_leaders(admin, missing)
        return missing
    finally:
        await admin.close()


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str], timeout: float = 15.0) -> None:
    """Wait until every partition of ``names`` has a leader, so the first sends do not bounce."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        described = await admin.describe_topics(names)
        ready = all(
            t["error_code"] == 0 and t["partitions"] and all(p["leader"] >= 0 for p in t["partitions"])
            for t in described
        )
        if ready or loop.time() > deadline:
            return
        await asyncio.sleep(0.1)


async def group_caught_up(bootstrap: str, group: str, topics: list[str]) -> bool:
    """Whether consumer group ``group`` has committed every record of ``topics``."""
    from aiokafka import AIOKafkaConsumer

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        partitions = await partitions_of(consumer, topics)
        if {tp.topic for tp in partitions} != set(topics):
            return False  # a topic is not there yet: nothing can be caught up with it
        ends = await consumer.end_offsets(partitions)
        return all(end == 0 or (tp in committed and committed[tp].offset >= end) for tp, end in ends.items())
    finally:
        await consumer.stop()
        await admin.close()


async def partitions_of(consumer: AIOKafkaConsumer, topics: list[str]) -> list[TopicPartition]:
    """Every partition of ``topics``; a topic the cluster does not know (yet) has none."""
    if any(not consumer.partitions_for_topic(t) for t in topics):
        await consumer._client.force_metadata_update()  # noqa: SLF001
    return [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or [])]


async def delete_topics(settings: Settings, prefixes: list[str]) -> list[str]:
    """Delete every topic whose name starts with one of ``prefixes``; return their names."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap, client_id="parcelflow-admin")
    await admin.start()
    try:
        doomed = sorted(t for t in await admin.list_topics() if any(t.startswith(p) for p in prefixes))
        if doomed:
            await admin.delete_topics(doomed)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while set(doomed) & set(await admin.list_topics()) and loop.time() < deadline:
                await asyncio.sleep(0.2)  # deletion completes asynchronously in the controller
        return doomed
    finally:
        await admin.close()


async def list_topics(settings: Settings) -> list[str]:
    """Names of every topic in the cluster."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap, client_id="parcelflow-admin")
    await admin.start()
    try:
        return sorted(await admin.list_topics())
    finally:
        await admin.close()
