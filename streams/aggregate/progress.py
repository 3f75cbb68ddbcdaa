"""Event-time progress of one hub, per source partition: pure arithmetic on plain data.

Where each source partition of a hub is — the last offset applied from it and the newest event
time applied from it — decides everything time does in the aggregation: a re-delivered record is
one at or below its partition's last offset; an event is late when it is older than its own
partition's newest event minus the grace period (so the outcome does not depend on how
partitions interleave, and a replay gives exactly what live gave). The hub's *watermark* is the
oldest newest-event of its active partitions minus grace (a partition far behind the hub's newest
event is idle and ignored); what *every* partition has passed (bounded by a hard horizon) is
what state may be forgotten; what the partitions still *delivering* have passed is *settled*:
nothing older is expected any more.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field
from enum import Enum

NO_OFFSET = -1
"""Last applied offset of a partition known only from its newest event time (the merge applies no offsets)."""


@dataclass(slots=True)
class PartitionProgress:
    """How far one source partition got: the newest event time and the last offset applied from it.

    Mutable, with slots: one is updated per scan the windows apply, in place.
    """

    newest_ms: int
    offset: int = NO_OFFSET


class Arrival(Enum):
    """How a record stands against its source partition's progress."""

    ON_TIME = "on time"  # taken: its partition moved on to its offset (and its event time, if newer)
    LATE = "late"  # older than its partition's newest event − grace: its offset taken, its time not
    REDELIVERED = "redelivered"  # at or below its partition's last applied offset: already applied


# Bound once: a member looked up on its enum costs more than the rest of :meth:`Progress.arrive`.
ON_TIME, LATE, REDELIVERED = Arrival.ON_TIME, Arrival.LATE, Arrival.REDELIVERED


@dataclass(slots=True)
class Progress:
    """Event-time progress of one hub: each source partition's, and the newest event time of all."""

    newest_ms: int | None = None  # newest event time counted (or seen by the merge); None: nothing yet
    partitions: dict[str, PartitionProgress] = field(default_factory=dict)  # source partition id -> its progress

    def redelivered(self, source: str, offset: int) -> bool:
        """Whether the record at ``offset`` of ``source`` was already applied (re-delivery after a crash)."""
        mark = self.partitions.get(source)
        return mark is not None and offset <= mark.offset

    def arrive(self, source: str, event_time_ms: int, offset: int, grace_ms: int) -> Arrival:
        """Take the record at ``offset`` of ``source`` unless re-delivered; judge its event time against its partition.

        The hub's newest event time is not moved here: :meth:`counted` does that once the event counted.
        """
        mark = self.partitions.get(source)
        if mark is None:
            self.partitions[source] = PartitionProgress(event_time_ms, offset)
            return ON_TIME
        if offset <= mark.offset:
            return REDELIVERED
        mark.offset = offset
        newest = mark.newest_ms
        if event_time_ms < newest - grace_ms:
            return LATE
        if event_time_ms > newest:
            mark.newest_ms = event_time_ms
        return ON_TIME

    def counted(self, event_time_ms: int) -> None:
        """Move the hub's newest event time on to an event just counted."""
        if self.newest_ms is None or event_time_ms > self.newest_ms:
            self.newest_ms = event_time_ms

    def seen(self, source: str, newest_ms: int) -> None:
        """Take a source partition's newest event time as seen elsewhere (the merge of partials)."""
        mark = self.partitions.get(source)
        if mark is None:
            self.partitions[source] = PartitionProgress(newest_ms)
        elif newest_ms > mark.newest_ms:
            mark.newest_ms = newest_ms
        self.counted(newest_ms)

    def newest(self) -> dict[str, int]:
        """Each source partition's newest event time (what a partial tells the merge)."""
        return {source: mark.newest_ms for source, mark in self.partitions.items()}

    def watermark(self, grace_ms: int, idle_ms: int) -> int | None:
        """Event-time watermark: oldest newest-event of the active partitions, minus grace.

        A partition more than ``idle_ms`` behind the hub's newest event is idle and holds nothing back.
        """
        if self.newest_ms is None:
            return None
        active = self.newest_ms - idle_ms
        return min(m.newest_ms for m in self.partitions.values() if m.newest_ms >= active) - grace_ms

    def passed_by_all(self, grace_ms: int, horizon_ms: int) -> int | None:
        """Event time every source partition has passed (minus grace), or the hard horizon.

        State older than this can be forgotten: no partition can still bring an on-time event
        for it, however far behind it is (an idle partition holds it back up to the horizon).
        """
        if self.newest_ms is None:
            return None
        slowest = min(m.newest_ms for m in self.partitions.values())
        return max(slowest - grace_ms, self.newest_ms - horizon_ms)

    def settled(self, active: Container[str], grace_ms: int, idle_ms: int) -> int | None:
        """Event time the ``active`` source partitions have all passed (minus grace), and the watermark too.

        Nothing older is expected any more: this is when a visit's departure is taken as final
        and its dwell observed. Which partitions are still delivering is a processing-time fact
        (from event times alone an idle partition looks like a lagging one), so the caller
        passes them in. With none active, everything seen is final: no partition is delivering
        anything older. (The first stage sees only its own source partitions — those holding
        every scan of its parcels — so no other partition's progress would ever settle the last
        departures it has seen.)
        """
        watermark = self.watermark(grace_ms, idle_ms)
        if watermark is None:
            return None
        delivering = [m.newest_ms for source, m in self.partitions.items() if source in active]
        if not delivering:
            return max(m.newest_ms for m in self.partitions.values())
        return min(watermark, min(delivering) - grace_ms)

    def to_json(self) -> dict[str, list[int]]:
        """Each partition as ``[newest, offset]`` (the stored form, unchanged since the first version)."""
        return {source: [mark.newest_ms, mark.offset] for source, mark in self.partitions.items()}

    @classmethod
    def from_json(cls, newest_ms: int | None, partitions: dict[str, list[int]]) -> Progress:
        """Inverse of :meth:`to_json`, with the hub's newest event time (stored beside it)."""
        return cls(
            newest_ms, {source: PartitionProgress(newest, offset) for source, (newest, offset) in partitions.items()}
        )
