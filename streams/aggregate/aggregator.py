"""The first stage of the aggregation: window partials, dwell and backlog from a batch of parcel scans.

Pure logic over a small key-value interface (a Faust table partition in the worker, a dict in
tests). One :class:`HubAggregator` serves one partition of the by-partition topic: every scan of
one source partition number of the three sources, so every scan of its parcels. Keys: ``HUB``
holds what this partition knows of the hub (the head of a :class:`HubWindows`: its event-time
:class:`~streams.aggregate.progress.Progress` — newest event time and last applied offset per
source partition — and late counts); ``HUB|size|flow|start`` holds the count
of one window; ``HUB/parcel`` holds a visit. A batch writes the visits and windows it changed,
then the hub's head, into the same changelog partition. After each batch the aggregator hands out
a :class:`Partial` per hub it changed; :mod:`streams.aggregate.partials` merges them per hub and closes the
windows.

Windows are keys of their own so that a batch costs what it changes, not the hours of windows
kept. The head numbers each batch of its hub (a version); a window value holds its counts at the
version that wrote it *and* at the version before, so a crash that stored a window but not the
head that goes with it is read back as the counts before that batch — the batch is then applied
again, exactly once. Windows dropped in a batch are deleted in the hub's next batch, once that
batch's head is stored.
"""

from __future__ import annotations

import struct
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from streams.aggregate.observation import Observation
from streams.aggregate.progress import Progress
from streams.aggregate.visits import (
    Counted,
    Visit,
    apply_scan,
    counted_scans,
    decode_visit,
    encode_visit,
    expired,
    is_open,
)
from streams.aggregate.windows import (
    HOUR_MS,
    ClosedWindow,
    HubWindows,
    Outcome,
    Partial,
    WindowCounts,
    WindowKey,
    WindowLimits,
)


class StateStore(Protocol):
    """Key-value state of one partition."""

    def get(self, key: bytes) -> bytes | None:
        """Value of ``key``, or None."""
        ...

    def put(self, key: bytes, value: bytes) -> None:
        """Set ``key`` (durably: the worker also writes the changelog)."""
        ...

    def delete(self, key: bytes) -> None:
        """Remove ``key``."""
        ...

    def keys(self, prefix: bytes = b"") -> Iterable[bytes]:
        """The keys of this partition's state that start with ``prefix`` (all of them by default)."""
        ...


@dataclass(frozen=True)
class Limits:
    """Time limits of the aggregation, in milliseconds of event time."""

    windows: WindowLimits = field(default_factory=WindowLimits)
    departed_ttl_ms: int = 6 * 3_600_000
    open_ttl_ms: int = 14 * 24 * 3_600_000
    idle_seconds: float = 10.0  # processing time: a source partition silent this long is idle


@dataclass
class BatchResult:
    """What a batch changed, for the worker to emit and expose."""

    closed: list[ClosedWindow] = field(default_factory=list)  # by the merge
    partials: list[Partial] = field(default_factory=list)  # by the first stage, for the merge
    outcomes: Counter[tuple[str, str, Outcome]] = field(default_factory=Counter)
    dwell_seconds: list[tuple[str, float]] = field(default_factory=list)
    backlog: dict[str, int] = field(default_factory=dict)
    watermark_ms: dict[str, int] = field(default_factory=dict)
    expired_visits: Counter[str] = field(default_factory=Counter)
    repeated: Counter[str] = field(default_factory=Counter)  # hub → flow scans whose event id was counted
    scans: Counter[str] = field(default_factory=Counter)  # hub → parcel scans the first stage took, any outcome


class StagedStore:
    """Reads through to a store and keeps its writes until :meth:`commit`.

    A batch is applied on one, so a batch that fails half-way leaves no trace in the state. The
    writes reach the base store in the order of each key's last write (a hub's value, written
    last, stays last) and once per key, however often the batch changed it.
    """

    def __init__(self, base: StateStore) -> None:
        self.base = base
        self.written: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        """The value staged here, else the base's."""
        return self.written[key] if key in self.written else self.base.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        """Stage ``value``."""
        self.written.pop(key, None)
        self.written[key] = value

    def delete(self, key: bytes) -> None:
        """Stage the removal of ``key``."""
        self.written.pop(key, None)
        self.written[key] = None

    def keys(self, prefix: bytes = b"") -> Iterable[bytes]:
        """The base's keys and the staged ones starting with ``prefix``, minus those staged for removal."""
        keys = dict.fromkeys(self.base.keys(prefix)) | dict.fromkeys(k for k in self.written if k.startswith(prefix))
        return [k for k in keys if self.written.get(k, b"") is not None]

    def commit(self) -> None:
        """Write what was staged to the base store."""
        for key, value in self.written.items():
            if value is None:
                self.base.delete(key)
            else:
                self.base.put(key, value)
        self.written.clear()


@dataclass(frozen=True)
class Failure:
    """A scan the aggregation failed on (a bug), with where it was read and the error."""

    offset: int
    observation: Observation
    error: Exception


_COUNTS = struct.Struct(">qqqqqq")  # version, parcels, grams; the same at the version before


def window_key(hub: str, key: WindowKey) -> bytes:
    """Table key of one window's count in the first stage (``HUB|...``: never a visit's ``HUB/...``)."""
    size, flow, start = key
    return f"{hub}|{size}|{flow}|{start}".encode()


class _StoredCounts(NamedTuple):
    """A stored window's counts as written at ``version`` (half of a window's value in the first stage)."""

    version: int
    parcels: int
    grams: int


_NONE_BEFORE = _StoredCounts(0, 0, 0)  # what a window had before its first version


def _counts_at(value: bytes, version: int) -> _StoredCounts | None:
    """A stored window's counts as of ``version``, or None if it did not exist then."""
    new_version, parcels, grams, old_version, old_parcels, old_grams = _COUNTS.unpack(value)
    if new_version <= version:
        return _StoredCounts(new_version, parcels, grams)
    if old_version <= version and old_parcels:
        return _StoredCounts(old_version, old_parcels, old_grams)
    return None


def load_windows(store: StateStore, hub: str) -> tuple[HubWindows, int]:
    """A hub's windows and version from the first stage's store (as of its head)."""
    raw = store.get(hub.encode())
    if raw is None:
        return HubWindows(hub), 0
    if not HubWindows.is_head(raw):
        return HubWindows.from_bytes(raw), 0  # the whole state in one value, as written before
    horizon, version = HubWindows.from_head(raw, {})
    windows: dict[WindowKey, WindowCounts] = {}
    prefix = f"{hub}|".encode()
    for key in store.keys(prefix):
        value = store.get(key)
        counts = None if value is None else _counts_at(value, version)
        if counts is not None:
            size, flow, start = key[len(prefix) :].decode().split("|")
            windows[(int(size), flow, int(start))] = WindowCounts(counts.parcels, counts.grams, changed=False)
    for gone in [k for k in windows if horizon.is_dropped(k)]:  # dropped, the delete lost in a crash
        del windows[gone]
    return HubWindows.from_head(raw, windows)


def store_windows(
    store: StateStore, hub: str, windows: HubWindows, version: int, changed: list[tuple[WindowKey, int, int]]
) -> None:
    """Write a batch's changed windows at ``version`` (keeping each one's counts before it), then the head."""
    for key, parcels, grams in changed:
        if key not in windows.windows:
            continue  # dropped in this very batch
        stored = window_key(hub, key)
        value = store.get(stored)
        before = None if value is None else _counts_at(value, version - 1)
        old = before if before is not None else _NONE_BEFORE
        store.put(stored, _COUNTS.pack(version, parcels, grams, old.version, old.parcels, old.grams))
    store.put(hub.encode(), windows.head_bytes(version))  # last


def hubs_in(store: StateStore) -> list[str]:
    """The hubs a first-stage partition's state holds: its ``HUB`` keys (heads), not visits, windows or offsets."""
    return sorted(
        key.decode() for key in store.keys() if b"/" not in key and b"|" not in key and not key.startswith(b"#")
    )


def visit_key(hub: str, parcel_id: str) -> bytes:
    """Table key of a parcel's visit to a hub."""
    return f"{hub}/{parcel_id}".encode()


def _visits(store: StateStore, hub: str) -> Iterator[tuple[bytes, Visit]]:
    for key in list(store.keys(f"{hub}/".encode())):  # the hub's visits only, not the partition's other hubs
        value = store.get(key)
        if value is not None:
            yield key, decode_visit(value)


def _repeats(obs: Observation, counted: tuple[Counted, ...], progress: Progress) -> bool:
    """Whether the visit already counted this scan's event id, at a position the windows applied."""
    return any(c.event_key == obs.event_key and progress.redelivered(c.source_partition, c.offset) for c in counted)


class HubAggregator:
    """Applies batches of observations; keeps only derived, rebuildable indexes in memory."""

    def __init__(self, limits: Limits | None = None, partition: int = 0) -> None:
        self.limits = limits or Limits()
        self.partition = partition  # of the by-partition topic: names this aggregator's partials
        self._backlog: dict[str, int] = {}
        self._pending_dwell: dict[str, deque[tuple[int, bytes]]] = {}
        self._swept_hour: dict[str, int] = {}
        self._last_seen: dict[str, dict[str, float]] = {}  # hub -> source partition -> wall clock
        # Each hub's state after its last batch: read from the store once, then kept (a batch that
        # fails, or a partition given up, makes the hub forgotten and read again).
        self._windows: dict[str, HubWindows] = {}
        self._versions: dict[str, int] = {}  # hub -> version of its last batch
        self._dropped: dict[str, list[WindowKey]] = {}  # hub -> windows its last batch dropped

    @property
    def hubs(self) -> list[str]:
        """Hubs whose indexes are in memory."""
        return list(self._backlog)

    def backlog(self, hub: str) -> int:
        """Parcels in ``hub`` that have not departed, of this partition's parcels."""
        return self._backlog.get(hub, 0)

    def forget(self, hubs: Iterable[str]) -> None:
        """Drop the in-memory indexes of hubs whose partition this worker no longer owns."""
        for hub in hubs:
            self._backlog.pop(hub, None)
            self._pending_dwell.pop(hub, None)
            self._swept_hour.pop(hub, None)
            self._last_seen.pop(hub, None)
            self._windows.pop(hub, None)
            self._versions.pop(hub, None)
            self._dropped.pop(hub, None)

    def restore(self, store: StateStore) -> BatchResult:
        """Index every hub this partition's state holds, so its backlog is known before any new scan.

        For a partition just assigned (a restart, a rebalance): otherwise a hub's parcels would be
        missing from the backlog until a scan of that hub reached this partition again.
        """
        result = BatchResult()
        for hub in hubs_in(store):
            self._index(store, hub)
            result.backlog[hub] = self._backlog[hub]
        return result

    def _index(self, store: StateStore, hub: str) -> None:
        if hub not in self._backlog:
            self._backlog[hub] = sum(1 for _key, visit in _visits(store, hub) if is_open(visit))
            self._pending_dwell[hub] = deque()

    def process(self, store: StateStore, observations: Iterable[Observation], now: float) -> BatchResult:
        """Apply observations (all routed to this store's partition) and close what is due.

        ``now`` is the processing time (seconds): it only decides which source partitions are
        still delivering, never what is counted.
        """
        result = BatchResult()
        by_hub: dict[str, list[Observation]] = {}
        for obs in observations:
            by_hub.setdefault(obs.hub, []).append(obs)
        for hub, batch in by_hub.items():
            self._process_hub(store, hub, batch, now, result)
        return result

    def tick(self, store_of: Callable[[str], StateStore | None], now: float) -> BatchResult:
        """Between batches: observe the dwell that became final because partitions fell silent."""
        result = BatchResult()
        limits = self.limits.windows
        for hub, windows in self._windows.items():
            store = store_of(hub)
            settled = windows.progress.settled(self._active(hub, now), limits.grace_ms, limits.idle_ms)
            if store is not None and settled is not None:
                self._observe_dwell(store, hub, settled, result)
        return result

    def _active(self, hub: str, now: float) -> set[str]:
        seen = self._last_seen.get(hub, {})
        return {p for p, at in seen.items() if now - at < self.limits.idle_seconds}

    def _process_hub(
        self, store: StateStore, hub: str, batch: list[Observation], now: float, result: BatchResult
    ) -> None:
        limits = self.limits
        self._index(store, hub)
        seen = self._last_seen.setdefault(hub, {})
        windows = self._windows.get(hub)
        if windows is None:  # else the state of the hub's last batch, as this worker wrote it
            windows, self._versions[hub] = load_windows(store, hub)
        for dropped in self._dropped.pop(hub, []):  # the head that dropped them is stored
            store.delete(window_key(hub, dropped))
        pending = self._pending_dwell[hub]
        result.scans[hub] += len(batch)
        progress = windows.progress
        newest_before = progress.newest()
        for obs in batch:
            source_partition = obs.source_partition
            seen[source_partition] = now
            flow = obs.flow
            if flow is not None and progress.redelivered(source_partition, obs.offset):
                result.outcomes[(hub, flow, Outcome.DUPLICATE)] += 1
                continue
            key = visit_key(hub, obs.parcel_id)
            value = store.get(key)
            counted = counted_scans(value) if value is not None else ()
            if flow is not None and obs.event_key and _repeats(obs, counted, progress):
                result.repeated[hub] += 1  # the same scan again (a retransmission): counted once
                continue
            if flow is not None:
                outcome = windows.apply(
                    flow, obs.event_time_ms, obs.grams, source_partition, obs.offset, limits.windows
                )
                result.outcomes[(hub, flow, outcome)] += 1
            visit = None if value is None else decode_visit(value)
            change = apply_scan(visit, obs.event_time_ms, obs.outbound)
            if flow is not None and obs.event_key:
                this = Counted(obs.event_key, obs.source, obs.partition, obs.offset)
                kept = () if change.new_visit else tuple(c for c in counted if c.event_key != obs.event_key)
                counted = (*kept, this)
            elif change.new_visit:
                counted = ()
            if change.visit is not None or (flow is not None and obs.event_key):
                stored = change.visit if change.visit is not None else visit
                assert stored is not None  # a scan without a visit always starts one
                store.put(key, encode_visit(stored, counted))
            if change.opened:
                self._backlog[hub] += 1
            elif change.departed:
                self._backlog[hub] -= 1
            if change.dwell_ms is not None:
                pending.append((obs.event_time_ms, key))
        changed = windows.take_changed()
        self._dropped[hub] = windows.drop_old(limits.windows)
        newest = progress.newest()
        if changed or newest != newest_before:
            result.partials.append(Partial(hub, self.partition, newest, changed))
        grace_ms = limits.windows.grace_ms
        settled = progress.settled(self._active(hub, now), grace_ms, limits.windows.idle_ms)
        passed = progress.passed_by_all(grace_ms, limits.windows.horizon_ms)
        if settled is not None and passed is not None:
            self._observe_dwell(store, hub, settled, result)
            self._sweep(store, hub, passed, result)
        version = self._versions[hub] + 1
        store_windows(store, hub, windows, version, changed)
        self._versions[hub] = version
        self._windows[hub] = windows
        result.backlog[hub] = self._backlog[hub]

    def _observe_dwell(self, store: StateStore, hub: str, settled: int, result: BatchResult) -> None:
        """Observe dwell once every partition passed the departure: earlier scans are all in."""
        pending = self._pending_dwell[hub]
        ready = sorted((out_ms, key) for out_ms, key in pending if out_ms <= settled)
        if not ready:
            return
        self._pending_dwell[hub] = deque((out_ms, key) for out_ms, key in pending if out_ms > settled)
        for out_ms, key in ready:
            value = store.get(key)
            if value is None:
                continue
            first, out, _previous = decode_visit(value)
            if out == out_ms:
                result.dwell_seconds.append((hub, (out - first) / 1000))

    def _sweep(self, store: StateStore, hub: str, passed: int, result: BatchResult) -> None:
        """Once per hour of event time all partitions passed, forget old departures and stuck visits."""
        hour = passed // HOUR_MS
        if self._swept_hour.get(hub) == hour:
            return
        self._swept_hour[hub] = hour
        limits = self.limits
        for key, visit in list(_visits(store, hub)):
            if expired(visit, passed, limits.departed_ttl_ms, limits.open_ttl_ms):
                store.delete(key)
                if is_open(visit):
                    self._backlog[hub] -= 1
                    result.expired_visits[hub] += 1


def applied_key(partition: int) -> bytes:
    """Table key of the last input offset a stage applied in ``partition`` (written after the state)."""
    return f"#applied/{partition}".encode()


def in_sequence(offsets: Iterable[int], applied: int | None) -> tuple[list[int], int | None]:
    """The input offsets to apply now, in order, and where to read again from if the consumer skipped some.

    Offsets up to ``applied`` were applied already (re-delivered: left out, as are repeats).
    A partition's records must be applied without a gap — its scans carry source offsets, and a
    scan applied before an earlier one makes the earlier one look re-delivered — so the records
    after a gap wait until the skipped ones have been read again. With nothing applied yet the
    first offset starts the sequence.
    """
    expected = None if applied is None else applied + 1
    kept: list[int] = []
    for offset in sorted(offsets):
        if expected is None or offset == expected:
            kept.append(offset)
            expected = offset + 1
        elif offset > expected:
            return kept, expected
    return kept, None


def process_isolating_failures(
    aggregator: HubAggregator, store: StateStore, records: list[tuple[int, list[Observation]]], now: float
) -> tuple[BatchResult, list[Failure]]:
    """Apply a batch of by-partition records (offset, observations); a scan the aggregation fails on is left out.

    The batch is applied on a :class:`StagedStore`: if it fails, nothing of it was written. Each
    scan is then tried alone on a scratch copy of the state to find those that fail, and the rest
    is applied as one batch, as it would have been (applying scans one by one would close windows
    after each, before the batch's other source partitions are seen). If the rest fails too, that
    error is raised: the worker cannot go on.
    """
    observations = [obs for _offset, batch in records for obs in batch]
    staged = StagedStore(store)
    try:
        result = aggregator.process(staged, observations, now)
    except Exception:  # noqa: BLE001 - a bug in the aggregation: find the scans that trigger it
        aggregator.forget({obs.hub for obs in observations})  # its in-memory indexes saw half a batch
        failures = _failing_scans(type(aggregator)(aggregator.limits, aggregator.partition), store, records, now)
        failing = {id(f.observation) for f in failures}
        staged = StagedStore(store)
        result = aggregator.process(staged, [obs for obs in observations if id(obs) not in failing], now)
    else:
        failures = []
    staged.commit()
    return result, failures


def _failing_scans(
    trial: HubAggregator, store: StateStore, records: list[tuple[int, list[Observation]]], now: float
) -> list[Failure]:
    scratch = StagedStore(store)  # never committed
    failures: list[Failure] = []
    for offset, batch in records:
        for obs in batch:
            attempt = StagedStore(scratch)
            try:
                trial.process(attempt, [obs], now)
            except Exception as error:  # noqa: BLE001 - this scan, not the stream
                failures.append(Failure(offset, obs, error))
                trial.forget([obs.hub])
            else:
                attempt.commit()
    return failures
