"""The hub aggregator: throughput windows, dwell and backlog from a batch of parcel scans.

Pure logic over a small key-value interface (a Faust table partition in the worker, a dict in
tests). Keys: ``HUB`` holds the hub's :class:`HubWindows`; ``HUB/parcel`` holds a visit. All keys
of a hub live in the one partition its scans are routed to, and the hub value is written last in
each batch, after the visits, into the same changelog partition.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from streams.observation import Observation
from streams.visits import Counted, Visit, apply_scan, counted_scans, decode_visit, encode_visit, expired, is_open
from streams.windows import HOUR_MS, ClosedWindow, HubWindows, Outcome, WindowLimits


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

    closed: list[ClosedWindow] = field(default_factory=list)
    outcomes: Counter[tuple[str, str, Outcome]] = field(default_factory=Counter)
    dwell_seconds: list[tuple[str, float]] = field(default_factory=list)
    backlog: dict[str, int] = field(default_factory=dict)
    watermark_ms: dict[str, int] = field(default_factory=dict)
    expired_visits: Counter[str] = field(default_factory=Counter)
    repeated: Counter[str] = field(default_factory=Counter)  # hub → flow scans whose event id was counted


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


def visit_key(hub: str, parcel_id: str) -> bytes:
    """Table key of a parcel's visit to a hub."""
    return f"{hub}/{parcel_id}".encode()


def _visits(store: StateStore, hub: str) -> Iterator[tuple[bytes, Visit]]:
    for key in list(store.keys(f"{hub}/".encode())):  # the hub's visits only, not the partition's other hubs
        value = store.get(key)
        if value is not None:
            yield key, decode_visit(value)


def _repeats(obs: Observation, counted: tuple[Counted, ...], windows: HubWindows) -> bool:
    """Whether the visit already counted this scan's event id, at a position the windows applied."""
    return any(c.event_key == obs.event_key and windows.redelivered(c.source_partition, c.offset) for c in counted)


class HubAggregator:
    """Applies batches of observations; keeps only derived, rebuildable indexes in memory."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._backlog: dict[str, int] = {}
        self._pending_dwell: dict[str, deque[tuple[int, bytes]]] = {}
        self._swept_hour: dict[str, int] = {}
        self._last_seen: dict[str, dict[str, float]] = {}  # hub -> source partition -> wall clock
        # Each hub's state after its last batch: read from the store once, then kept (a batch that
        # fails, or a partition given up, makes the hub forgotten and read again).
        self._windows: dict[str, HubWindows] = {}

    @property
    def hubs(self) -> list[str]:
        """Hubs whose indexes are in memory."""
        return list(self._backlog)

    def forget(self, hubs: Iterable[str]) -> None:
        """Drop the in-memory indexes of hubs whose partition this worker no longer owns."""
        for hub in hubs:
            self._backlog.pop(hub, None)
            self._pending_dwell.pop(hub, None)
            self._swept_hour.pop(hub, None)
            self._last_seen.pop(hub, None)
            self._windows.pop(hub, None)

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
        for hub, windows in self._windows.items():
            store = store_of(hub)
            settled = windows.settled(self.limits.windows, self._active(hub, now))
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
            raw = store.get(hub.encode())
            windows = HubWindows.from_bytes(raw) if raw is not None else HubWindows(hub)
        pending = self._pending_dwell[hub]
        for obs in batch:
            source_partition = obs.source_partition
            seen[source_partition] = now
            flow = obs.flow
            if flow is not None and windows.redelivered(source_partition, obs.offset):
                result.outcomes[(hub, flow, Outcome.DUPLICATE)] += 1
                continue
            key = visit_key(hub, obs.parcel_id)
            value = store.get(key)
            counted = counted_scans(value) if value is not None else ()
            if flow is not None and obs.event_key and _repeats(obs, counted, windows):
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
        result.closed.extend(windows.close(limits.windows))
        watermark = windows.watermark(limits.windows)
        settled = windows.settled(limits.windows, self._active(hub, now))
        passed = windows.passed_by_all(limits.windows)
        if watermark is not None and settled is not None and passed is not None:
            self._observe_dwell(store, hub, settled, result)
            self._sweep(store, hub, passed, result)
            result.watermark_ms[hub] = watermark
        store.put(hub.encode(), windows.to_bytes())
        self._windows[hub] = windows
        result.backlog[hub] = self._backlog[hub]

    def _observe_dwell(self, store: StateStore, hub: str, settled: int, result: BatchResult) -> None:
        """Observe dwell once every partition passed the departure: earlier scans are all in."""
        pending = self._pending_dwell[hub]
        ready = sorted(p for p in pending if p[0] <= settled)
        if not ready:
            return
        self._pending_dwell[hub] = deque(p for p in pending if p[0] > settled)
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
    """Table key of the last by-hub offset applied in ``partition`` (its value is written after the state)."""
    return f"#by-hub/{partition}".encode()


def in_sequence(offsets: Iterable[int], applied: int | None) -> tuple[list[int], int | None]:
    """The by-hub offsets to apply now, in order, and where to read again from if the consumer skipped some.

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
    """Apply a batch of by-hub records (offset, observations); a scan the aggregation fails on is left out.

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
        failures = _failing_scans(type(aggregator)(aggregator.limits), store, records, now)
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
