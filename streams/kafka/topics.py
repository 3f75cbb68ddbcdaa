"""Topic names: three source topics, dead letters and throughput, all under one prefix."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Source(StrEnum):
    """Where a scan event comes from; each source has its own topic and Avro schema."""

    FLIGHT = "flight"
    SORTER = "sorter"
    TRUCK = "truck"


_PARTITION_IDS: dict[tuple[Source, int], str] = {}


def source_partition_id(source: Source, partition: int) -> str:
    """``sorter:3``: how windows and visits name a source partition (the string made once per partition)."""
    key = (source, partition)
    found = _PARTITION_IDS.get(key)
    if found is None:
        found = _PARTITION_IDS[key] = f"{source.value}:{partition}"
    return found


@dataclass(frozen=True)
class Topics:
    """Every topic name the pipeline uses, derived from one prefix."""

    prefix: str = "parcelflow"

    def source(self, source: Source) -> str:
        """Topic carrying the raw scan events of ``source``."""
        return f"{self.prefix}.scans.{source.value}"

    @property
    def sources(self) -> dict[str, Source]:
        """Source topic name → source, for all three sources."""
        return {self.source(s): s for s in Source}

    @property
    def deadletter(self) -> str:
        """Rejected records: original bytes plus headers naming origin and reason."""
        return f"{self.prefix}.deadletter"

    @property
    def throughput(self) -> str:
        """Closed throughput windows, one record per (hub, flow, window)."""
        return f"{self.prefix}.throughput"

    @staticmethod
    def intake_group(app_id: str) -> str:
        """Consumer group of the pipeline's source intake (Faust's own group, ``app_id``, reads by-hub)."""
        return f"{app_id}-intake"

    def by_partition(self, app_id: str) -> str:
        """Parcel scans of each source partition number, for one app's first stage (internal to that app).

        Partition ``n`` holds the scans of partition ``n`` of all three sources (modulo its
        partition count): sources are keyed by parcel, so a parcel's scans all meet there.
        """
        return f"{self.prefix}.{app_id}.by-partition"

    def by_hub(self, app_id: str) -> str:
        """Window partials keyed by hub, for one app's merge (internal to that app)."""
        return f"{self.prefix}.{app_id}.by-hub"

    def internal(self, app_id: str) -> list[str]:
        """One app's internal topics, in the order records flow through them."""
        return [self.by_partition(app_id), self.by_hub(app_id)]


def first_stage_partition(source_partition: int, partitions: int) -> int:
    """The by-partition partition of a source partition: the same number for all three sources."""
    return source_partition % partitions


def copartitioning_problem(counts: dict[str, int]) -> str | None:
    """Why source topics with these partition counts cannot be aggregated together, or None.

    A parcel's scans meet in one first-stage partition only if every source topic spreads parcel
    keys alike: equal partition counts (and the default partitioner), as Kafka Streams requires
    of the topics it joins. Topics not created yet (0 partitions) are left out.
    """
    known = {topic: n for topic, n in counts.items() if n}
    if len(set(known.values())) <= 1:
        return None
    listed = ", ".join(f"{topic} {n}" for topic, n in sorted(known.items()))
    return f"the source topics must have equal partition counts (a parcel's scans must share one): {listed}"
