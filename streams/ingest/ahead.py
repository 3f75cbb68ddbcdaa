"""How far the intake is ahead of the first aggregation stage: the bound that holds it back (pure).

The intake decodes source records faster than the first stage aggregates them. Unbounded, it
would forward a whole replay into the by-partition topic while the aggregation trails minutes
behind: the source topics' consumer lag would read zero while the windows are late, the topic
would hold a copy of the history, and a scan's cost would be paid far from its event time. So
the intake counts the scans it forwarded per by-partition partition, the first stage's committed
offsets take them off, and the intake takes no new batch while more than a bound are pending.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

MAX_AHEAD_SCANS = 100_000
"""Scans one worker's intake may have forwarded that the first stage has not committed.

About 3–6 s of the first stage's work at full speed: above what its commit interval (1 s) leaves
pending in normal operation, so only an aggregation that falls behind holds the intake.
"""


class Ahead:
    """Scans forwarded per by-partition partition, by record offset, until the first stage commits them."""

    def __init__(self, limit: int = MAX_AHEAD_SCANS) -> None:
        self.limit = limit
        self._pending: dict[int, deque[tuple[int, int]]] = {}  # partition -> (offset, scans), offset order
        self._scans = 0

    @property
    def scans(self) -> int:
        """Scans forwarded and not yet committed by the first stage."""
        return self._scans

    @property
    def full(self) -> bool:
        """Whether the intake must wait for the first stage."""
        return self._scans > self.limit

    def partitions(self) -> list[int]:
        """The by-partition partitions with scans pending: whose committed offsets to read."""
        return [partition for partition, pending in self._pending.items() if pending]

    def forwarded(self, partition: int, offset: int, scans: int) -> None:
        """A by-partition record holding ``scans`` scans is on the broker at ``offset``."""
        pending = self._pending.setdefault(partition, deque())
        if pending and offset < pending[-1][0]:  # deliveries confirmed out of order: keep the deque sorted
            items = sorted([*pending, (offset, scans)])
            pending.clear()
            pending.extend(items)
        else:
            pending.append((offset, scans))
        self._scans += scans

    def committed(self, offsets: Mapping[int, int]) -> None:
        """The first stage's group committed up to ``offsets`` (the next offset to read, per partition)."""
        for partition, next_offset in offsets.items():
            pending = self._pending.get(partition)
            while pending and pending[0][0] < next_offset:
                self._scans -= pending.popleft()[1]
