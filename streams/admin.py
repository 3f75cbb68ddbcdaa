"""Topic administration: create the pipeline's topics with the configured partitions."""

from __future__ import annotations

import asyncio

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
