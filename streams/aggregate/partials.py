"""Window partials per source partition and their merge per hub: the second stage of the aggregation.

The first stage (:class:`streams.aggregate.aggregator.HubAggregator`) runs per partition of the by-partition
topic, which holds the scans of one source partition number of all three sources (sources are
keyed by parcel, so that is every scan of its parcels). It counts each hub's windows from those
scans alone and sends, after each batch, a :class:`Partial` per hub it changed: the cumulative
counts of the windows that changed and the newest event time of each of its source partitions.

The second stage, :class:`HubMerge`, runs per hub (the by-hub topic is keyed by hub). A window's
count is the sum of its partials; the hub's watermark is computed from the source partitions'
newest event times exactly as a single stage would, so windows close, re-open and drop as before.

A partial's counts only grow — a window of one first-stage partition is never reset, an event for
a window it dropped counts as expired there — so the merge keeps, per window and first-stage
partition, the partial with the most parcels. Partials sent again (a first stage re-applying a
batch after a crash) or out of order change nothing: the merge is idempotent without versions.

Store layout (one partition of the merge table): ``HUB`` holds the hub's head (newest event time
per source partition, the drop horizon); ``HUB/size/flow/start`` holds one window's revision,
whether it changed since emitted, and its partials. A batch writes the windows it changed, then the
head; windows it dropped are deleted in the hub's next batch, once this head is stored. Window
sums are not stored: they are derived from the partials when a hub is read, so a crash between
a window and its head leaves nothing to undo — the batch's partials are merged again, to the same.
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from streams.aggregate.aggregator import BatchResult, StateStore
from streams.aggregate.progress import PartitionProgress, Progress
from streams.aggregate.windows import (
    WINDOW_SIZES_MS,
    HubWindows,
    Outcome,
    Partial,
    WindowCounts,
    WindowKey,
    WindowLimits,
)

log = logging.getLogger(__name__)


def encode_partial(partial: Partial) -> bytes:
    """A by-hub record's value (JSON: a few per batch and hub, never per scan)."""
    return json.dumps(
        {
            "h": partial.hub,
            "p": partial.partition,
            "m": partial.marks,
            "w": [[size, flow, start, parcels, grams] for (size, flow, start), parcels, grams in partial.windows],
        },
        separators=(",", ":"),
    ).encode()


def decode_partial(data: bytes) -> Partial:
    """Inverse of :func:`encode_partial`; raises ``ValueError`` (or ``KeyError``/``TypeError``) on other bytes.

    Values the merge could not store (a window size it does not keep, counts out of range) are
    refused here, so such a record is dead-lettered rather than failing the merge.
    """
    raw = json.loads(data)
    marks = {str(source): int(newest) for source, newest in raw["m"].items()}
    windows = [((int(s), str(f), int(st)), int(p), int(g)) for s, f, st, p, g in raw["w"]]
    partial = Partial(str(raw["h"]), int(raw["p"]), marks, windows)
    if not 0 <= partial.partition <= _MAX_PARTITION:
        raise ValueError(f"first-stage partition {partial.partition} out of range")
    for (size, _flow, start), parcels, grams in windows:
        if size not in WINDOW_SIZES_MS or start % size or not (0 < parcels <= _MAX_COUNT and 0 <= grams <= _MAX_COUNT):
            raise ValueError(f"not a window partial: {size}, {start}, {parcels}, {grams}")
    return partial


_REVISION = struct.Struct(">IB")  # revision, changed since emitted
_PART = struct.Struct(">Hqq")  # first-stage partition, parcels, grams
_MAX_PARTITION = 2**16 - 1
_MAX_COUNT = 2**62  # a sum of partials still fits a signed 64-bit count


def window_key(hub: str, key: WindowKey) -> bytes:
    """Table key of one window of ``hub`` in the merge table."""
    size, flow, start = key
    return f"{hub}/{size}/{flow}/{start}".encode()


def encode_window(revision: int, changed: bool, parts: dict[int, tuple[int, int]]) -> bytes:
    """A merged window's value: its revision, whether it changed since emitted, its partials."""
    return _REVISION.pack(revision, changed) + b"".join(_PART.pack(p, n, g) for p, (n, g) in sorted(parts.items()))


def decode_window(data: bytes) -> tuple[int, int, dict[int, tuple[int, int]]]:
    """Inverse of :func:`encode_window`: (revision, changed, first-stage partition -> (parcels, grams))."""
    revision, changed = _REVISION.unpack_from(data)
    parts = {p: (n, g) for p, n, g in _PART.iter_unpack(data[_REVISION.size :])}
    return revision, changed, parts


@dataclass
class _Merged:
    """A hub's merged state in memory: window sums (as a :class:`HubWindows`) and their partials."""

    windows: HubWindows
    parts: dict[WindowKey, dict[int, tuple[int, int]]] = field(default_factory=dict)
    dropped: list[WindowKey] = field(default_factory=list)  # to delete in the hub's next batch


class HubMerge:
    """Merges partials into each hub's windows and closes them on the hub's watermark.

    Keeps each hub's state after its last batch in memory (read from the store once); a worker
    that gives a hub's partition up forgets it.
    """

    def __init__(self, limits: WindowLimits | None = None) -> None:
        self.limits = limits or WindowLimits()
        self._hubs: dict[str, _Merged] = {}

    @property
    def hubs(self) -> list[str]:
        """Hubs whose state is in memory."""
        return list(self._hubs)

    def forget(self, hubs: Iterable[str]) -> None:
        """Drop the in-memory state of ``hubs`` (their partition moved, or a batch failed)."""
        for hub in hubs:
            self._hubs.pop(hub, None)

    def _load(self, store: StateStore, hub: str) -> _Merged:
        merged = self._hubs.get(hub)
        if merged is not None:
            return merged
        raw = store.get(hub.encode())
        if raw is None:
            merged = _Merged(HubWindows(hub))
        else:
            head = json.loads(raw)
            sums: dict[WindowKey, WindowCounts] = {}
            parts: dict[WindowKey, dict[int, tuple[int, int]]] = {}
            for key_bytes in store.keys(f"{hub}/".encode()):
                value = store.get(key_bytes)
                if value is None:
                    continue
                _hub, size, flow, start = key_bytes.decode().split("/")
                key = (int(size), flow, int(start))
                revision, changed, parts[key] = decode_window(value)
                sums[key] = WindowCounts(
                    sum(n for n, _g in parts[key].values()),
                    sum(g for _n, g in parts[key].values()),
                    revision,
                    bool(changed),
                )
            horizon = HubWindows(hub, dropped_until_ms=head["dropped"])
            orphans = [key for key in sums if horizon.is_dropped(key)]  # dropped; the delete lost in a crash
            for key in orphans:
                del sums[key], parts[key]
            progress = Progress(
                head["max"], {source: PartitionProgress(newest) for source, newest in head["p"].items()}
            )
            windows = HubWindows(hub, progress, sums, dropped_until_ms=head["dropped"])
            merged = _Merged(windows, parts, orphans)
        self._hubs[hub] = merged
        return merged

    def apply(self, store: StateStore, partials: Iterable[Partial]) -> BatchResult:
        """Merge partials (in the order read), emit the windows the watermark passed, drop old ones."""
        result = BatchResult()
        by_hub: dict[str, list[Partial]] = {}
        for partial in partials:
            by_hub.setdefault(partial.hub, []).append(partial)
        for hub, batch in by_hub.items():
            self._apply_hub(store, hub, batch, result)
        return result

    def _apply_hub(self, store: StateStore, hub: str, batch: list[Partial], result: BatchResult) -> None:
        limits = self.limits
        merged = self._load(store, hub)
        windows = merged.windows
        for key in merged.dropped:  # dropped by the hub's last batch, whose head is stored
            store.delete(window_key(hub, key))
        merged.dropped = []
        progress = windows.progress
        changed: set[WindowKey] = set()
        for partial in batch:
            for source, newest in partial.marks.items():
                progress.seen(source, newest)
            for key, parcels, grams in partial.windows:
                parts = merged.parts.get(key)
                if parts is None and windows.is_dropped(key):
                    # A first stage far behind the others counted it after the merge let it go.
                    log.warning("%s: a partial of window %s came after it was dropped", hub, key)
                    _size, flow, _start = key
                    result.outcomes[(hub, flow, Outcome.EXPIRED)] += parcels
                    continue
                old_parcels, old_grams = (parts or {}).get(partial.partition, (0, 0))
                if parcels <= old_parcels:
                    continue  # sent before (re-applied after a crash) or an older one: counts only grow
                if parts is None:
                    parts = merged.parts[key] = {}
                parts[partial.partition] = (parcels, grams)
                windows.add(key, parcels - old_parcels, grams - old_grams)
                changed.add(key)
        for window in windows.emit(limits):
            result.closed.append(window)
            changed.add((window.size_ms, window.flow, window.start_ms))
        for key in windows.drop_old(limits):  # deleted in the next batch: a crash before the head keeps them
            merged.parts.pop(key, None)
            changed.discard(key)
            merged.dropped.append(key)
        for key in sorted(changed):
            counts = windows.windows[key]
            store.put(window_key(hub, key), encode_window(counts.revision, counts.changed, merged.parts[key]))
        head = {"max": progress.newest_ms, "p": progress.newest(), "dropped": windows.dropped_until_ms}
        store.put(hub.encode(), json.dumps(head, separators=(",", ":")).encode())  # last: after its windows
        watermark = windows.watermark(limits)
        if watermark is not None:
            result.watermark_ms[hub] = watermark
