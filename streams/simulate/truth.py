"""Ground truth of a run, computed from exactly the emitted stream the sinks get (pure).

Fed every emission in order, :class:`Truth` counts what a correct event-time pipeline must find:
parcels and grams per (hub, flow, 1-minute window) of every valid flow event that is not
deliberately late (out-of-order ones included); late ones per (hub, flow); dwell and backlog per hub.

A *visit* is a parcel's scans at one hub (a parcel passes each hub at most once in this network).
Its dwell is its outbound scan (``LOADED`` or ``ULD_BUILDUP``) minus its earliest scan there, over
every valid emitted record (late and out-of-order ones included). Quantiles are exact, by the
nearest-rank method: the q-quantile of n sorted values is value number ceil(q·n).
"""

from __future__ import annotations

from array import array
from collections import deque
from fractions import Fraction
from typing import Any

from streams.events import EVENT_TYPES, FLOW_OF_EVENT_TYPE, Flow
from streams.kafka.topics import Source
from streams.network import HUBS
from streams.simulate.config import SimConfig
from streams.simulate.disorder import CORRUPT, DISORDERED, LATE
from streams.simulate.rows import Row

WINDOW_MS = 60_000
QUANTILES = ("0.5", "0.9", "0.95", "0.99")
_FLOWS = tuple(flow.value for flow in Flow)
_FLOW_INDEX = {event_type: _FLOWS.index(flow.value) for event_type, flow in FLOW_OF_EVENT_TYPE.items()}
_OUTBOUND = _FLOWS.index(Flow.OUTBOUND.value)


class Truth:
    """Accumulates the ground truth of one run, one emission at a time."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        # A record is emitted at most this long (simulated) after its event time.
        self._max_delay = max(
            config.disorder_max_ms if config.disorder else 0, config.late_delay_ms if config.late else 0
        )
        self._clock = config.start_ms
        self._types = dict.fromkeys(EVENT_TYPES, 0)
        self.corrupt = 0
        self.late = 0
        self.out_of_order = 0
        self._watermark = -1
        # Per hub: window start + flow index → [parcels, grams]; window starts are multiples of 60 000.
        self._windows: dict[str, dict[int, list[int]]] = {hub: {} for hub in HUBS}
        self._late: dict[tuple[str, str], list[int]] = {}
        # Per hub: parcel → earliest scan of a visit without an outbound scan yet.
        self._open: dict[str, dict[str, int]] = {hub: {} for hub in HUBS}
        # Per hub: parcel → [earliest scan, outbound scan] of departed visits that may still get records
        # (only with disorder or late records), settled in the order they departed.
        self._settling: dict[str, dict[str, list[int]]] = {hub: {} for hub in HUBS}
        self._departed: deque[tuple[int, str, str]] = deque()
        self._dwell: dict[str, array[int]] = {hub: array("q") for hub in HUBS}

    def add(self, clock: int, mark: int, row: Row) -> None:
        """Account for one emitted record."""
        if mark >= CORRUPT:
            self.corrupt += 1
            return
        if clock != self._clock:
            departed = self._departed
            if departed and departed[0][0] <= self._clock - self._max_delay:
                self._settle(self._clock)
            self._clock = clock
        event_type = row[4]
        t = row[1]
        hub = row[2]
        self._types[event_type] += 1
        if t > self._watermark:
            self._watermark = t
        elif mark == DISORDERED and t < self._watermark:
            self.out_of_order += 1
        flow = _FLOW_INDEX.get(event_type)
        if flow is not None:
            grams: int = row[6]  # type: ignore[assignment]  # a flow event is a parcel scan
            if mark == LATE:
                self.late += 1
                late_key = (hub, _FLOWS[flow])
                acc = self._late.get(late_key)
                if acc is None:
                    self._late[late_key] = [1, grams]
                else:
                    acc[0] += 1
                    acc[1] += grams
            else:
                windows = self._windows[hub]
                key = t - t % WINDOW_MS + flow
                acc = windows.get(key)
                if acc is None:
                    windows[key] = [1, grams]
                else:
                    acc[0] += 1
                    acc[1] += grams
        parcel = row[5]
        if parcel is None:
            return
        if self._max_delay:
            settling = self._settling[hub].get(parcel)
            if settling is not None:  # a held-back record of a visit that already departed
                if t < settling[0]:
                    settling[0] = t
                return
        if flow == _OUTBOUND:
            first = self._open[hub].pop(parcel, t)
            if t < first:
                first = t
            if self._max_delay:
                self._settling[hub][parcel] = [first, t]
                self._departed.append((t, hub, parcel))
            else:
                self._dwell[hub].append(t - first)
        else:
            visits = self._open[hub]
            first = visits.setdefault(parcel, t)
            if t < first:
                visits[parcel] = t

    def _settle(self, clock: int) -> None:
        """Record the dwell of departed visits no record still to come can belong to.

        Once the clock has moved past ``clock``, every record released at or before it is out, and a
        visit's records are released at most ``max_delay`` after its outbound scan.
        """
        departed, settling, dwell, horizon = self._departed, self._settling, self._dwell, clock - self._max_delay
        while departed and departed[0][0] <= horizon:
            _, hub, parcel = departed.popleft()
            first, out = settling[hub].pop(parcel)
            dwell[hub].append(out - first)

    def _window_items(self) -> list[tuple[tuple[str, str, int], list[int]]]:
        items = []
        for hub, windows in self._windows.items():
            for key, acc in windows.items():
                flow = key % WINDOW_MS
                items.append(((hub, _FLOWS[flow], key - flow), acc))
        return items

    def result(self) -> dict[str, Any]:
        """The truth document (``truth.json``); call once, after the last record."""
        self._settle(2**62)
        by_source = {source.value: 0 for source in Source}
        for event_type, count in self._types.items():
            by_source[EVENT_TYPES[event_type].value] += count
        backlog = {hub: len(self._open[hub]) for hub in HUBS}
        cfg = self.config
        return {
            "seed": cfg.seed,
            "start": cfg.start_iso,
            "duration_seconds": cfg.duration_s,
            "scale": float(cfg.scale),
            "window_seconds": WINDOW_MS // 1000,
            "events": {
                "total": sum(by_source.values()),
                "by_source": by_source,
                "corrupt": self.corrupt,
                "late": self.late,
                "out_of_order": self.out_of_order,
            },
            "windows": [
                {"hub": hub, "flow": flow, "start_ms": start, "parcels": acc[0], "grams": acc[1]}
                for (hub, flow, start), acc in sorted(self._window_items())
            ],
            "late": [
                {"hub": hub, "flow": flow, "parcels": acc[0], "grams": acc[1]}
                for (hub, flow), acc in sorted(self._late.items())
            ],
            "dwell": {hub: dwell_summary(self._dwell[hub]) for hub in HUBS},
            "backlog_end": backlog,
        }


def nearest_rank(sorted_values: list[int] | array[int], q: str) -> int:
    """The q-quantile by nearest rank: value number ceil(q·n) of the sorted values (n > 0), q exact."""
    share = Fraction(q)
    rank = -(-share.numerator * len(sorted_values) // share.denominator)
    return sorted_values[max(1, rank) - 1]


def dwell_summary(dwell_ms: array[int] | list[int]) -> dict[str, Any]:
    """Departed visits and their dwell quantiles in seconds (``None`` when there are none)."""
    values = sorted(dwell_ms)
    quantiles = {q: (nearest_rank(values, q) / 1000 if values else None) for q in QUANTILES}
    return {"parcels": len(values), "quantiles": quantiles}
