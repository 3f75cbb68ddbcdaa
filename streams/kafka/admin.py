"""Topic administration: create the pipeline's topics, their retention, purging what is committed.

Record timestamps are event times, and Kafka's time retention counts from them: a topic with a
finite ``retention.ms`` deletes old-stamped history (a replay, a backlog, an old file) as soon as
it arrives. So the source topics get the configured retention (unlimited by default), the internal
topics (by-partition, by-hub) keep records whatever their age and are purged up to the group's committed offsets
(as Kafka Streams does with its repartition topics: KIP-284, KAFKA-6150), the throughput topic is
compacted, and only the dead letters (stamped by the broker on arrival: LogAppendTime) keep the broker's default.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from contextlib import AbstractAsyncContextManager

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from streams.durations import UNLIMITED
from streams.kafka.clients import AdminConfig, ConsumerConfig, admin_client, consumer_client, new_admin, partitions_of
from streams.kafka.topics import Topics
from streams.settings import Settings

RETENTION = "retention.ms"
DEADLETTER_MAX_MESSAGE_BYTES = 8 * 1024 * 1024 + 64 * 1024
ADMIN_CLIENT_ID = "parcelflow-admin"
PURGE_CLIENT_ID = "parcelflow-purge"


def pipeline_topics(settings: Settings) -> list[str]:
    """Every topic the pipeline needs: sources, dead letters, throughput, the app's internal topics."""
    topics = Topics(settings.topic_prefix)
    return [*topics.sources, topics.deadletter, topics.throughput, *topics.internal(settings.app_id)]


def topic_configs(settings: Settings, name: str) -> dict[str, str]:
    """Topic-level configs a pipeline topic is created with (pure)."""
    topics = Topics(settings.topic_prefix)
    if name == topics.throughput:
        return {"cleanup.policy": "compact"}  # one record per window key: the latest revision is kept
    if name in topics.sources:
        return {RETENTION: str(settings.source_retention_ms)}
    if name in topics.internal(settings.app_id):
        return {RETENTION: str(UNLIMITED)}  # purged up to the committed offsets instead
    if name == topics.deadletter:
        return {
            "max.message.bytes": str(DEADLETTER_MAX_MESSAGE_BYTES),  # a rejected record and its headers, whole
            # Stamped by the broker when it arrives: its retention counts from the rejection, by the
            # broker's clock, whatever the worker's clock or the record's event time say.
            "message.timestamp.type": "LogAppendTime",
        }
    return {}


def _admin(settings: Settings) -> AbstractAsyncContextManager[AIOKafkaAdminClient]:
    """The admin client of the pipeline's commands, started."""
    return admin_client(AdminConfig(settings.bootstrap, ADMIN_CLIENT_ID))


async def ensure_topics(settings: Settings, names: list[str] | None = None) -> list[str]:
    """Create the missing pipeline topics; return the names that were created."""
    wanted = names if names is not None else pipeline_topics(settings)
    async with _admin(settings) as admin:
        existing = set(await admin.list_topics())
        missing = [n for n in wanted if n not in existing]
        if missing:
            new = [
                NewTopic(
                    n,
                    num_partitions=settings.partitions,
                    replication_factor=settings.replication,
                    topic_configs=topic_configs(settings, n),
                )
                for n in missing
            ]
            response = await admin.create_topics(new)
            for name, code, *_ in getattr(response, "topic_errors", []):
                if code not in (0, TopicAlreadyExistsError.errno):
                    raise RuntimeError(f"could not create topic {name}: error code {code}")
            await _wait_for_leaders(admin, missing)
        for internal in Topics(settings.topic_prefix).internal(settings.app_id):
            if internal in wanted and internal in existing:
                await _keep_forever(admin, internal)
        return missing


async def _keep_forever(admin: AIOKafkaAdminClient, topic: str) -> None:
    """Give an internal topic made by an older version unlimited time retention."""
    if (await retentions(admin, [topic])).get(topic) != UNLIMITED:
        # AlterConfigs (not incremental) replaces the topic's overrides: an internal topic has only this one.
        resource = ConfigResource(ConfigResourceType.TOPIC, topic, {RETENTION: str(UNLIMITED)})
        for response in await admin.alter_configs([resource]):
            for error_code, message, *_ in response.resources:
                if error_code:
                    raise RuntimeError(f"could not set {RETENTION}=-1 on {topic}: error {error_code} {message or ''}")


async def retentions(admin: AIOKafkaAdminClient, topics: Collection[str]) -> dict[str, int]:
    """``retention.ms`` of each existing topic of ``topics`` (-1: unlimited); unknown topics are left out."""
    if not topics:
        return {}
    resources = [ConfigResource(ConfigResourceType.TOPIC, name, {RETENTION: None}) for name in topics]
    found: dict[str, int] = {}
    for response in await admin.describe_configs(resources):
        for error_code, _message, _type, name, entries, *_ in response.resources:
            if error_code:
                continue  # e.g. the topic does not exist
            for entry in entries:
                if entry[0] == RETENTION and entry[1] is not None:
                    found[name] = int(entry[1])
    return found


async def topic_retentions(settings: Settings, topics: Collection[str]) -> dict[str, int]:
    """``retention.ms`` of each existing topic of ``topics`` (-1: unlimited)."""
    async with _admin(settings) as admin:
        return await retentions(admin, topics)


async def purge_committed(
    admin: AIOKafkaAdminClient,
    group: str,
    partitions: Collection[TopicPartition],
    below: Mapping[TopicPartition, int] | None = None,
) -> dict[TopicPartition, int]:
    """Delete the records of ``partitions`` before ``group``'s committed offsets; return the new low watermarks.

    Only what the group has committed goes: a record not yet processed (or processed but not
    committed, so re-delivered after a crash) is never deleted; nor one at or past ``below``
    (a partition's bound, when given).
    """
    if not partitions:
        return {}
    committed = await admin.list_consumer_group_offsets(group, partitions=list(partitions))
    bound = below or {}
    upto = {tp: min(meta.offset, bound.get(tp, meta.offset)) for tp, meta in committed.items()}
    doomed = {tp: RecordsToDelete(offset) for tp, offset in upto.items() if offset > 0}
    if not doomed:
        return {}
    low_watermarks: dict[TopicPartition, int] = await admin.delete_records(doomed)
    return low_watermarks


async def purge_group_partitions(
    bootstrap: str,
    group: str,
    partitions: Collection[TopicPartition],
    below: Mapping[TopicPartition, int] | None = None,
) -> dict[TopicPartition, int]:
    """``purge_committed`` with an admin client of its own (a worker's timer calls it)."""
    if not partitions:
        return {}
    async with admin_client(AdminConfig(bootstrap, PURGE_CLIENT_ID)) as admin:
        return await purge_committed(admin, group, partitions, below)


class GroupOffsets:
    """A consumer group's committed offsets, read through one admin client kept open (a worker's timer polls them)."""

    def __init__(self, bootstrap: str, group: str) -> None:
        self.group = group
        self._bootstrap = bootstrap
        self._admin: AIOKafkaAdminClient | None = None

    async def committed(self, partitions: Collection[TopicPartition]) -> dict[TopicPartition, int]:
        """The next offset the group will read, for each of ``partitions`` it has committed."""
        if self._admin is None:
            admin = new_admin(AdminConfig(self._bootstrap, f"{self.group}-offsets"))
            await admin.start()
            self._admin = admin
        offsets = await self._admin.list_consumer_group_offsets(self.group, partitions=list(partitions))
        return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}

    async def close(self) -> None:
        """Close the admin client, if one was opened."""
        if self._admin is not None:
            admin, self._admin = self._admin, None
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


async def pipeline_caught_up(bootstrap: str, prefix: str, app_id: str) -> bool:
    """Whether a pipeline's workers have committed every source record and every internal record.

    In the order records flow: the intake's group commits a batch only once its by-partition
    records are on the broker, the first stage only once its partials are on the by-hub topic, so
    the ends read afterwards include everything the step before forwarded.
    """
    topics = Topics(prefix)
    if not await group_caught_up(bootstrap, Topics.intake_group(app_id), list(topics.sources)):
        return False
    for internal in topics.internal(app_id):
        if not await group_caught_up(bootstrap, app_id, [internal]):
            return False
    return True


async def group_caught_up(bootstrap: str, group: str, topics: list[str]) -> bool:
    """Whether consumer group ``group`` has committed every record of ``topics``."""
    async with admin_client(AdminConfig(bootstrap)) as admin, consumer_client(ConsumerConfig(bootstrap)) as consumer:
        committed = await admin.list_consumer_group_offsets(group)
        partitions = await partitions_of(consumer, topics)
        if {tp.topic for tp in partitions} != set(topics):
            return False  # a topic is not there yet: nothing can be caught up with it
        ends = await consumer.end_offsets(partitions)
        return all(end == 0 or (tp in committed and committed[tp].offset >= end) for tp, end in ends.items())


async def partition_counts(bootstrap: str, topics: list[str]) -> dict[str, int]:
    """How many partitions each of ``topics`` has (0: the topic does not exist)."""
    async with consumer_client(ConsumerConfig(bootstrap)) as consumer:
        found = await partitions_of(consumer, topics)
        return {topic: sum(1 for tp in found if tp.topic == topic) for topic in topics}


async def delete_topics(settings: Settings, prefixes: list[str]) -> list[str]:
    """Delete every topic whose name starts with one of ``prefixes``; return their names."""
    async with _admin(settings) as admin:
        doomed = sorted(t for t in await admin.list_topics() if any(t.startswith(p) for p in prefixes))
        if doomed:
            await admin.delete_topics(doomed)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while set(doomed) & set(await admin.list_topics()) and loop.time() < deadline:
                await asyncio.sleep(0.2)  # deletion completes asynchronously in the controller
        return doomed


async def list_topics(settings: Settings) -> list[str]:
    """Names of every topic in the cluster."""
    async with _admin(settings) as admin:
        return sorted(await admin.list_topics())
