"""Handing out fetched records of several partitions in event-time order (pure).

A consumer fetches partitions in chunks: one fetch can bring an hour of one partition before the
next is seen. Processed in that order, the first partition would carry a hub's watermark past
the others, and their on-time scans would count as late. So, as Kafka Streams does, fetched
records wait in a buffer per partition, and the next record handed out is always the oldest head
(by record timestamp, which is the event time) — but only while every partition's next record is
known: a partition whose buffer ran dry and that the consumer has not caught up on could still
bring an older one, so the merge stops there until more is fetched. A partition the consumer has
caught up on (nothing more on the broker yet) does not hold the others back: live data flows.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, Protocol, TypeVar


class Timestamped(Protocol):
    """What the merge needs of a record: its timestamp (ms)."""

    @property
    def timestamp(self) -> int:
        """Record timestamp in epoch ms (the event time, for scans)."""


P = TypeVar("P", bound=Hashable)
R = TypeVar("R", bound=Timestamped)


class EventTimeMerge(Generic[P, R]):
    """Per-partition buffers of fetched records, taken out oldest head first."""

    def __init__(self) -> None:
        self._buffers: dict[P, deque[R]] = {}

    @property
    def partitions(self) -> list[P]:
        """Partitions the merge waits on (those assigned)."""
        return list(self._buffers)

    def assign(self, partitions: Iterable[P]) -> None:
        """Start waiting on ``partitions`` (their buffers start empty)."""
        for partition in partitions:
            self._buffers.setdefault(partition, deque())

    def revoke(self, partitions: Iterable[P]) -> None:
        """Forget ``partitions`` and whatever of theirs is buffered (their new owner reads it again)."""
        for partition in partitions:
            self._buffers.pop(partition, None)

    def add(self, partition: P, records: Iterable[R]) -> None:
        """Buffer records fetched from ``partition`` (in offset order); ignored if not assigned."""
        buffer = self._buffers.get(partition)
        if buffer is not None:
            buffer.extend(records)

    def buffered(self, partition: P) -> int:
        """Records of ``partition`` waiting to be taken."""
        buffer = self._buffers.get(partition)
        return 0 if buffer is None else len(buffer)

    def take(self, limit: int, caught_up: Callable[[P], bool], force: bool = False) -> list[tuple[P, R]]:
        """Up to ``limit`` records, oldest head first, as far as every partition's next record is known.

        ``caught_up(p)``: the consumer holds nothing more of partition ``p`` than was added here, and
        the broker had nothing more either when last asked. An empty, not caught-up partition
        stops the merge (it may bring an older record). ``force`` ignores that: for a partition that
        stays silent too long, so the others are never held forever.
        """
        buffers = self._buffers
        if not force and any(not buffer and not caught_up(p) for p, buffer in buffers.items()):
            return []
        order_of = {p: order for order, p in enumerate(buffers)}  # ties: in assignment order
        heads = [(buffer[0].timestamp, order_of[p], p) for p, buffer in buffers.items() if buffer]
        heapq.heapify(heads)
        taken: list[tuple[P, R]] = []
        while heads and len(taken) < limit:
            p = heads[0][2]
            buffer = buffers[p]
            taken.append((p, buffer.popleft()))
            if buffer:
                heapq.heapreplace(heads, (buffer[0].timestamp, order_of[p], p))
            else:
                heapq.heappop(heads)
                if not force and not caught_up(p):
                    break
        return taken
