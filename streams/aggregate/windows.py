"""Event-time tumbling windows per hub and flow, as pure functions on plain data.

One ``HubWindows`` holds everything a hub's throughput needs: open and recently closed windows
(1 minute and 1 hour), the hub's event-time :class:`~streams.aggregate.progress.Progress` (newest
event time and last applied offset per source partition), and the late-event counts. A scan is a
duplicate or late by its own source partition's progress; windows close when the hub's watermark
passes their end. Partitions are consumed at different speeds — a topic can run hours of event
time ahead of another when a backlog is read — so a window may close before a slower partition
delivered its events; those events still count, and the window is emitted again. Windows are
dropped only once every partition has passed them (or after a hard horizon), and an event for a
dropped window is counted as expired.
"""

from __future__ import annotations

import heapq
import json
import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from streams.aggregate.progress import ON_TIME, REDELIVERED, Progress

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
WINDOW_SIZES_MS = (MINUTE_MS, HOUR_MS)

WindowKey = tuple[int, str, int]
"""(size_ms, flow, start_ms) of a window."""


class Outcome(StrEnum):
    """What happened to one flow observation."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"  # offset already applied (re-delivery after a crash or rebalance)
    LATE = "late"  # older than its partition's newest event − grace
    EXPIRED = "expired"  # its window was already dropped (beyond retention)


class Partial(NamedTuple):
    """What one first-stage partition knows of a hub after a batch (merged per hub in :mod:`.partials`)."""

    hub: str
    partition: int  # first-stage (by-partition) partition
    marks: dict[str, int]  # source partition id -> newest event time (ms) applied from it
    windows: list[tuple[WindowKey, int, int]]  # changed windows: (key, parcels, grams), cumulative


@dataclass(frozen=True, slots=True)
class ClosedWindow:
    """A window as emitted: final unless a late-but-within-grace event re-opens it."""

    hub: str
    flow: str
    start_ms: int
    size_ms: int
    parcels: int
    grams: int
    revision: int

    @property
    def key(self) -> str:
        """Idempotent output key: a re-emitted window overwrites its earlier record."""
        return f"{self.hub}|{self.flow}|{self.size_ms // 1000}|{self.start_ms}"


@dataclass(frozen=True)
class WindowLimits:
    """Event-time limits of the windows, in milliseconds."""

    grace_ms: int = 120_000
    retention_ms: int = 6 * 3_600_000  # kept this long after every partition passed them
    idle_ms: int = 300_000  # a partition this far behind the hub's newest event holds nothing back
    horizon_ms: int = 24 * 3_600_000  # never kept longer than this behind the newest event


def window_start(event_time_ms: int, size_ms: int) -> int:
    """Start of the tumbling window of ``size_ms`` holding ``event_time_ms``."""
    return event_time_ms - event_time_ms % size_ms


@dataclass(slots=True)
class WindowCounts:
    """The counts of one window of a :class:`HubWindows` (changed in place: this runs per scan)."""

    parcels: int
    grams: int
    revision: int = 0  # of its last emission: 0 until emitted
    changed: bool = True  # since it was last emitted (or taken)

    def __iter__(self) -> Iterator[int]:
        """parcels, grams, revision, changed: the order the stored forms keep them in."""
        return iter((self.parcels, self.grams, self.revision, self.changed))


class _Drop(NamedTuple):
    """An entry of the drop heap: when a window may be dropped (see :func:`_drop_at`), and which."""

    at_ms: int
    key: WindowKey


@dataclass(init=False)
class HubWindows:
    """The throughput state of one hub (serialised into one table value)."""

    hub: str
    progress: Progress
    windows: dict[WindowKey, WindowCounts]  # (size_ms, flow, start_ms) -> its counts
    late: dict[str, int]
    dropped_until_ms: int | None  # minute windows ending at or before this are gone
    # Derived from ``windows`` (not serialised), so a batch costs what it changes, not what is kept:
    # the windows changed since they were last emitted, and every window by the time it may be dropped.
    _changed: set[WindowKey] = field(repr=False, compare=False)
    _drops: list[_Drop] = field(repr=False, compare=False)

    def __init__(
        self,
        hub: str,
        progress: Progress | None = None,
        windows: Mapping[WindowKey, Iterable[int]] | None = None,
        late: dict[str, int] | None = None,
        dropped_until_ms: int | None = None,
    ) -> None:
        """``windows``: each window's :class:`WindowCounts`, or its stored form (parcels, grams, revision, changed)."""
        self.hub = hub
        self.progress = Progress() if progress is None else progress
        self.windows = {key: _window_counts(counts) for key, counts in (windows or {}).items()}
        self.late = {} if late is None else late
        self.dropped_until_ms = dropped_until_ms
        self._changed = {key for key, counts in self.windows.items() if counts.changed}
        self._drops = [_Drop(_drop_at(key), key) for key in self.windows]
        heapq.heapify(self._drops)

    def watermark(self, limits: WindowLimits) -> int | None:
        """The hub's event-time watermark under ``limits`` (see :meth:`Progress.watermark`)."""
        return self.progress.watermark(limits.grace_ms, limits.idle_ms)

    def apply(
        self, flow: str, event_time_ms: int, grams: int, source: str, offset: int, limits: WindowLimits
    ) -> Outcome:
        """Count one parcel of ``flow`` unless it is a duplicate, late, or its window expired."""
        progress = self.progress
        arrival = progress.arrive(source, event_time_ms, offset, limits.grace_ms)
        if arrival is not ON_TIME:
            if arrival is REDELIVERED:
                return Outcome.DUPLICATE
            self.late[flow] = self.late.get(flow, 0) + 1
            return Outcome.LATE
        minute = (MINUTE_MS, flow, window_start(event_time_ms, MINUTE_MS))
        if self.is_dropped(minute):
            self.late[flow] = self.late.get(flow, 0) + 1
            return Outcome.EXPIRED
        self.add(minute, 1, grams)
        self.add((HOUR_MS, flow, window_start(event_time_ms, HOUR_MS)), 1, grams)
        newest = progress.newest_ms  # progress.counted(event_time_ms), inlined: this runs per scan
        if newest is None or event_time_ms > newest:
            progress.newest_ms = event_time_ms
        return Outcome.APPLIED

    def add(self, key: WindowKey, parcels: int, grams: int) -> None:
        """Add to a window's counts (negative too: a merge replacing a partial) and mark it changed."""
        counts = self.windows.get(key)
        if counts is None:
            self.windows[key] = WindowCounts(parcels, grams)
            heapq.heappush(self._drops, _Drop(_drop_at(key), key))
        else:
            counts.parcels += parcels
            counts.grams += grams
            counts.changed = True
        self._changed.add(key)

    def is_dropped(self, key: WindowKey) -> bool:
        """Whether ``key`` is a window already dropped (an event for it is counted as expired)."""
        return self.dropped_until_ms is not None and _drop_at(key) <= self.dropped_until_ms

    def emit(self, limits: WindowLimits) -> list[ClosedWindow]:
        """Every changed window whose end the watermark passed, at its next revision."""
        watermark = self.watermark(limits)
        if watermark is None:
            return []
        closed: list[ClosedWindow] = []
        for key in sorted(key for key in self._changed if _end(key) <= watermark):
            size, flow, start = key
            counts = self.windows[key]
            counts.revision += 1
            counts.changed = False
            self._changed.discard(key)
            closed.append(ClosedWindow(self.hub, flow, start, size, counts.parcels, counts.grams, counts.revision))
        return closed

    def take_changed(self) -> list[tuple[WindowKey, int, int]]:
        """Every window changed since the last call, with its counts (a partial, for the merge)."""
        changed = []
        for key in sorted(self._changed):
            counts = self.windows[key]
            counts.changed = False
            changed.append((key, counts.parcels, counts.grams))
        self._changed.clear()
        return changed

    def drop_old(self, limits: WindowLimits) -> list[WindowKey]:
        """Drop the windows every partition passed longer ago than the retention; return their keys.

        A changed window is never dropped before it was emitted (or taken).
        """
        watermark = self.watermark(limits)
        passed = self.progress.passed_by_all(limits.grace_ms, limits.horizon_ms)
        if watermark is None or passed is None:
            return []
        horizon = min(passed - limits.retention_ms, watermark)
        drops, unsent, dropped = self._drops, [], []
        while drops and drops[0].at_ms <= horizon:
            drop = heapq.heappop(drops)
            if drop.key in self._changed:  # not emitted yet (cannot be: it ended before the watermark)
                unsent.append(drop)
            elif self.windows.pop(drop.key, None) is not None:
                dropped.append(drop.key)
        for drop in unsent:
            heapq.heappush(drops, drop)
        if self.dropped_until_ms is None or horizon > self.dropped_until_ms:
            self.dropped_until_ms = horizon
        return dropped

    def head_bytes(self, version: int) -> bytes:
        """Serialise all but the windows (stored as keys of their own), with the batch ``version``."""
        return _VERSION_3 + json.dumps({**self._head(), "v": version}, separators=(",", ":")).encode()

    @classmethod
    def from_head(cls, data: bytes, windows: dict[WindowKey, WindowCounts]) -> tuple[HubWindows, int]:
        """Inverse of :meth:`head_bytes`, given the windows read from their keys; and the version."""
        raw = json.loads(data[1:])
        return cls._from_head(raw, windows), int(raw["v"])

    @staticmethod
    def is_head(data: bytes) -> bool:
        """Whether a hub value is a head (:meth:`head_bytes`) rather than the whole state (:meth:`from_bytes`)."""
        return data[:1] == _VERSION_3

    @classmethod
    def from_bytes(cls, data: bytes) -> HubWindows:
        """Read the whole state in one value, as the first stage stored a hub before heads.

        Version 2 (a version byte, the small part as JSON, the windows packed with ``struct``), or
        the JSON form before it. Nothing writes either now; both stay readable.
        """
        if data[:1] != _VERSION_2:
            raw: dict[str, Any] = json.loads(data)
            windows = {(s, f, st): _window_counts(counts) for s, f, st, *counts in raw["w"]}
        else:
            (size,) = _HEAD_SIZE.unpack_from(data, 1)
            start = 1 + _HEAD_SIZE.size
            raw = json.loads(data[start : start + size])
            flows = raw["f"]
            windows = {
                (s, flows[f], st): WindowCounts(p, g, r, bool(d))
                for s, f, st, p, g, r, d in _WINDOW.iter_unpack(data[start + size :])
            }
        return cls._from_head(raw, windows)

    def _head(self) -> dict[str, Any]:
        """Everything but the windows, as JSON-ready values."""
        return {
            "hub": self.hub,
            "max": self.progress.newest_ms,
            "p": self.progress.to_json(),
            "late": self.late,
            "dropped": self.dropped_until_ms,
        }

    @classmethod
    def _from_head(cls, raw: dict[str, Any], windows: dict[WindowKey, WindowCounts]) -> HubWindows:
        return cls(
            hub=raw["hub"],
            progress=Progress.from_json(raw["max"], raw["p"]),
            windows=windows,
            late=dict(raw["late"]),
            dropped_until_ms=raw["dropped"],
        )


_VERSION_2 = b"\x02"  # JSON, the first form, starts with "{"
_VERSION_3 = b"\x03"  # a head: the windows are keys of their own
_HEAD_SIZE = struct.Struct(">I")
_WINDOW = struct.Struct(">qBqqqIB")  # size, flow index, start, parcels, grams, revision, changed


def _window_counts(counts: Iterable[int]) -> WindowCounts:
    """``counts`` as they are, or read from their stored form (parcels, grams, revision, changed)."""
    if isinstance(counts, WindowCounts):
        return counts
    parcels, grams, revision, changed = counts
    return WindowCounts(parcels, grams, revision, bool(changed))


def _drop_at(key: WindowKey) -> int:
    """Event time after which a window may be dropped: its end, and an hour window an hour later.

    Hour windows are kept an hour longer than minutes, so a minute still accepted always finds its hour.
    """
    size, _flow, start = key
    return start + size + (size - MINUTE_MS)


def _end(key: WindowKey) -> int:
    """Event time a window ends at (exclusive)."""
    size, _flow, start = key
    return start + size


def totals(windows: Iterable[ClosedWindow]) -> dict[tuple[str, str, int, int], tuple[int, int]]:
    """The current value of each window: (hub, flow, size_ms, start_ms) -> (parcels, grams).

    A window's counts only grow, so its current value is the record with the most parcels (then
    grams, then the highest revision), whatever order the records come in. Not simply the last
    or highest revision: a worker frozen past its session (its partitions given to another)
    can still deliver the output it had in flight when it wakes, after its successor's — an older
    count, under a revision number its successor has used too.
    """
    latest: dict[tuple[str, str, int, int], tuple[int, int, int]] = {}
    for w in windows:
        key = (w.hub, w.flow, w.size_ms, w.start_ms)
        value = (w.parcels, w.grams, w.revision)
        if key not in latest or latest[key] < value:
            latest[key] = value
    return {k: (p, g) for k, (p, g, _r) in latest.items()}
