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

    def by_hub(self, app_id: str) -> str:
        """Parcel scans re-keyed by hub for one app's aggregator (internal to that app)."""
        return f"{self.prefix}.{app_id}.by-hub"
