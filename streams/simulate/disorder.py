"""Test impairments: turn the model's ordered rows into the emitted stream, some out of order, late or corrupt.

An *emission* is ``(clock_ms, mark, row)``: the simulated clock when the record goes out, what kind
of record it is, and the event. Marks:

- ``NORMAL``: emitted at its event time, in event-time order.
- ``DISORDERED``: held back by 1 ms … ``disorder_max`` and emitted just before the first record whose
  event time reaches its release time, so the stream's maximum event time when it arrives is below
  its own event time + ``disorder_max`` (a window with that much grace still takes it).
- ``LATE``: a flow event emitted right *after* the first normal record at or beyond event time +
  ``late_delay``, so the maximum event time already seen is at least that far ahead. Only events whose
  release falls inside the run are chosen; one still waiting when the run ends is not emitted at all
  (``Emitter.late_dropped``), since at the end no later record could make it late.
- ``CORRUPT_*``: an extra record derived from the event just emitted; each sink renders it as bytes
  or a line that does not decode or does not validate. Never part of any aggregate.

Decisions use their own seeded generator, so enabling impairments does not change the events.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from heapq import heappop, heappush

from streams.events import FLOW_OF_EVENT_TYPE
from streams.simulate.config import SimConfig
from streams.simulate.rows import Row

NORMAL = 0
DISORDERED = 1
LATE = 2
CORRUPT_TRUNCATED = 3
CORRUPT_GARBAGE = 4
CORRUPT_INVALID = 5
CORRUPT = CORRUPT_TRUNCATED
"""Marks at or above this are corrupt records."""

Emission = tuple[int, int, Row]
"""(simulated clock at emission in epoch ms, mark, row)."""

_FLOW_TYPES = frozenset(FLOW_OF_EVENT_TYPE)


class Emitter:
    """Applies a config's disorder, late and corrupt shares to an event-time ordered row stream."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.late_dropped = 0

    def stream(self, rows: Iterable[Row]) -> Iterator[Emission]:
        """The emitted stream for ``rows`` (which must be in event-time order)."""
        cfg = self.config
        if not (cfg.disorder or cfg.late or cfg.corrupt):
            for row in rows:
                yield (row[1], NORMAL, row)
            return
        rnd = random.Random(f"parcelflow-emission:{cfg.seed}").random
        disorder, late_band, corrupt = cfg.disorder, cfg.disorder + cfg.late, cfg.corrupt
        disorder_max, late_delay = cfg.disorder_max_ms, cfg.late_delay_ms
        late_until = cfg.end_ms - late_delay
        held: list[tuple[int, int, Row]] = []
        waiting: list[tuple[int, int, Row]] = []
        seq = 0
        t = cfg.start_ms
        for row in rows:
            t = row[1]
            while held and held[0][0] <= t:
                yield (t, DISORDERED, heappop(held)[2])
            u = rnd()
            if u < disorder:
                seq += 1
                heappush(held, (t + 1 + int(rnd() * disorder_max), seq, row))
            elif u < late_band and t < late_until and row[4] in _FLOW_TYPES:
                seq += 1
                heappush(waiting, (t + late_delay, seq, row))
            else:
                yield (t, NORMAL, row)
                while waiting and waiting[0][0] <= t:
                    yield (t, LATE, heappop(waiting)[2])
            if corrupt and rnd() < corrupt:
                yield (t, CORRUPT_TRUNCATED + int(rnd() * 3), row)
        while held:
            yield (t, DISORDERED, heappop(held)[2])
        self.late_dropped = len(waiting)
