"""Every Prometheus metric of parcelflow, declared once (help, unit, bounded labels)."""

from __future__ import annotations

from collections import Counter as Tally
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streams.aggregate.aggregator import BatchResult
from streams.aggregate.windows import MINUTE_MS, Outcome
from streams.events import FLOW_OF_EVENT_TYPE, Flow, Reason, ScanEvent
from streams.kafka.topics import Source

# Event delay = processing time − event time. Live scans arrive within seconds; a backlog or a
# broker outage stretches that to minutes or hours, so the buckets span 50 ms to 6 h.
EVENT_DELAY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600)
# Dwell = first scan in a hub → departure. A smooth cross-dock takes 20 min to a few hours;
# missed cut-offs push it to the next day's trucks; customs holds last 1–5 days.
DWELL_BUCKETS = tuple(
    float(s)
    for s in (
        60,
        300,
        600,
        900,
        1800,
        2700,
        3600,
        5400,
        7200,
        10800,
        14400,
        21600,
        28800,
        43200,
        86400,
        172800,
        259200,
        432000,
        604800,
    )
)


@dataclass(frozen=True)
class Metrics:
    """The worker's metrics, bound to one registry (a fresh one per test)."""

    registry: CollectorRegistry
    events: Counter
    parcels: Counter
    kilograms: Counter
    invalid: Counter
    event_delay: Histogram
    window_parcels: Gauge
    window_kilograms: Gauge
    window_start: Gauge
    watermark: Gauge
    aggregated: Counter
    late: Counter
    duplicates: Counter
    internal_gaps: Counter
    windows_emitted: Counter
    window_updates: Counter
    dwell: Histogram
    backlog: Gauge
    expired_visits: Counter
    consumer_lag: Gauge
    intake_ahead: Gauge
    intake_held: Counter
    worker_ready: Gauge
    last_window_start: dict[tuple[str, str], int] = field(default_factory=dict)

    @classmethod
    def create(cls, registry: CollectorRegistry) -> Metrics:
        """Register every metric in ``registry``; dead-letter counters start at 0 for every reason."""
        metrics = cls._declare(registry)
        # A counter that appears only at its first increment hides that first burst from rate().
        for source in Source:
            for reason in Reason:
                metrics.invalid.labels(source.value, reason.value)
        return metrics

    @classmethod
    def _declare(cls, registry: CollectorRegistry) -> Metrics:
        return cls(
            registry=registry,
            events=Counter(
                "parcelflow_events",
                "Valid scan events taken in (decoded, validated, forwarded), by hub, source and event type.",
                ["hub", "source", "event_type"],
                registry=registry,
            ),
            aggregated=Counter(
                "parcelflow_aggregated_scans",
                "Parcel scans the first aggregation stage has taken (whatever their outcome), by hub; trails"
                " the parcel scans of parcelflow_events_total by those still on their way.",
                ["hub"],
                registry=registry,
            ),
            parcels=Counter(
                "parcelflow_flow_parcels",
                "Parcels counted in a hub's flow (inbound = ULD breakdown, sorted, outbound = loaded/build-up).",
                ["hub", "flow"],
                registry=registry,
            ),
            kilograms=Counter(
                "parcelflow_flow_kilograms",
                "Kilograms of parcels counted in a hub's flow.",
                ["hub", "flow"],
                registry=registry,
            ),
            invalid=Counter(
                "parcelflow_invalid_events",
                "Records rejected to the dead-letter topic, by source and reason.",
                ["source", "reason"],
                registry=registry,
            ),
            event_delay=Histogram(
                "parcelflow_event_delay_seconds",
                "Processing time minus event time of valid scan events.",
                ["source"],
                buckets=EVENT_DELAY_BUCKETS,
                registry=registry,
            ),
            window_parcels=Gauge(
                "parcelflow_window_parcels",
                "Parcels in the last closed 1-minute event-time window of a hub's flow.",
                ["hub", "flow"],
                registry=registry,
            ),
            window_kilograms=Gauge(
                "parcelflow_window_kilograms",
                "Kilograms in the last closed 1-minute event-time window of a hub's flow.",
                ["hub", "flow"],
                registry=registry,
            ),
            window_start=Gauge(
                "parcelflow_window_start_timestamp_seconds",
                "Event-time start of the last closed 1-minute window of a hub's flow.",
                ["hub", "flow"],
                registry=registry,
            ),
            watermark=Gauge(
                "parcelflow_watermark_timestamp_seconds",
                "Event-time watermark of a hub: newest event time seen minus the grace period.",
                ["hub"],
                registry=registry,
            ),
            late=Counter(
                "parcelflow_late_events",
                "Parcel scans older than their partition's newest event minus grace (not counted in windows).",
                ["hub", "flow"],
                registry=registry,
            ),
            duplicates=Counter(
                "parcelflow_duplicate_events",
                "Parcel scans counted once although seen again: kind=redelivery (same offset, after a crash or "
                "rebalance), kind=event_id (same event id for the parcel's visit: a retransmission).",
                ["hub", "kind"],
                registry=registry,
            ),
            internal_gaps=Counter(
                "parcelflow_internal_gaps",
                "Times the consumer of an internal topic (by-partition, by-hub) skipped records (Faust can, around "
                "a rebalance): they are read again before anything after them is applied.",
                registry=registry,
            ),
            windows_emitted=Counter(
                "parcelflow_windows_emitted",
                "Closed windows written to the throughput topic (1-minute and hourly, re-emits included).",
                ["hub", "flow"],
                registry=registry,
            ),
            window_updates=Counter(
                "parcelflow_window_updates",
                "Closed windows emitted again because an event within the grace period changed them.",
                ["hub", "flow"],
                registry=registry,
            ),
            dwell=Histogram(
                "parcelflow_dwell_seconds",
                "Time from a parcel's first scan in a hub to its departure from it.",
                ["hub"],
                buckets=DWELL_BUCKETS,
                registry=registry,
            ),
            backlog=Gauge(
                "parcelflow_backlog_parcels",
                "Parcels scanned in a hub that have not departed from it, of this worker's partitions "
                "(each worker reports its own: sum over workers).",
                ["hub"],
                registry=registry,
            ),
            expired_visits=Counter(
                "parcelflow_expired_visits",
                "Parcel visits forgotten after the open-visit TTL without a departure.",
                ["hub"],
                registry=registry,
            ),
            consumer_lag=Gauge(
                "parcelflow_consumer_lag_messages",
                "Records in a source topic not yet processed by this worker (its assigned partitions).",
                ["source"],
                registry=registry,
            ),
            intake_ahead=Gauge(
                "parcelflow_intake_ahead_scans",
                "Parcel scans this worker's intake forwarded that the first aggregation stage has not committed;"
                " above a bound the intake waits, and the source topics' consumer lag grows instead.",
                registry=registry,
            ),
            intake_held=Counter(
                "parcelflow_intake_held_seconds",
                "Seconds this worker's intake waited because the first aggregation stage was too far behind.",
                registry=registry,
            ),
            worker_ready=Gauge(
                "parcelflow_worker_ready",
                "1 while the worker runs (heartbeat recent, no agent or timer failed), else 0; as /ready says.",
                registry=registry,
            ),
        )

    def observe(self, scans: list[tuple[ScanEvent, Source]], now: float) -> None:
        """Count valid scans: per hub/source/type, their flows' parcels and kilograms, their delay.

        Counts are summed per batch first: ``labels()`` costs more than the addition itself.
        """
        events: Tally[tuple[str, Source, str]] = Tally()
        grams: Tally[tuple[str, Flow]] = Tally()
        parcels: Tally[tuple[str, Flow]] = Tally()
        delays: dict[Source, list[float]] = {}
        flow_of = FLOW_OF_EVENT_TYPE.get
        for event, source in scans:
            hub, event_type = event.hub, event.event_type
            events[(hub, source, event_type)] += 1
            flow = flow_of(event_type)
            if flow is not None and event.weight_grams is not None:
                parcels[(hub, flow)] += 1
                grams[(hub, flow)] += event.weight_grams
            delay = now - event.event_time_ms / 1000
            try:
                delays[source].append(delay)
            except KeyError:
                delays[source] = [delay]
        for (hub, source, event_type), count in events.items():
            self.events.labels(hub, source.value, event_type).inc(count)
        for (hub, flow), count in parcels.items():
            self.parcels.labels(hub, flow.value).inc(count)
            self.kilograms.labels(hub, flow.value).inc(grams[(hub, flow)] / 1000)
        for source, values in delays.items():
            observe = self.event_delay.labels(source.value).observe
            for value in values:
                observe(value)

    def forget_hubs(self, hubs: list[str]) -> None:
        """Drop the gauges of hubs this worker no longer aggregates (after a rebalance).

        The new owner sets them again; a stale copy here would be counted twice.
        """
        for hub in hubs:
            for gauge in (self.backlog, self.watermark):
                try:
                    gauge.remove(hub)
                except KeyError:
                    pass
            for flow in Flow:
                for gauge in (self.window_parcels, self.window_kilograms, self.window_start):
                    try:
                        gauge.remove(hub, flow.value)
                    except KeyError:
                        pass
                self.last_window_start.pop((hub, flow.value), None)

    def record_batch(self, result: BatchResult) -> None:
        """Expose what an aggregation stage did with a batch."""
        for hub, count in result.scans.items():
            self.aggregated.labels(hub).inc(count)
        for (hub, flow, outcome), count in result.outcomes.items():
            if outcome in (Outcome.LATE, Outcome.EXPIRED):
                self.late.labels(hub, flow).inc(count)
            elif outcome is Outcome.DUPLICATE:
                self.duplicates.labels(hub, "redelivery").inc(count)
        for hub, count in result.repeated.items():
            self.duplicates.labels(hub, "event_id").inc(count)
        for window in result.closed:
            self.windows_emitted.labels(window.hub, window.flow).inc()
            if window.revision > 1:
                self.window_updates.labels(window.hub, window.flow).inc()
            if window.size_ms == MINUTE_MS:
                series = (window.hub, window.flow)
                if window.start_ms >= self.last_window_start.get(series, window.start_ms):
                    self.last_window_start[series] = window.start_ms
                    self.window_start.labels(*series).set(window.start_ms / 1000)
                    self.window_parcels.labels(window.hub, window.flow).set(window.parcels)
                    self.window_kilograms.labels(window.hub, window.flow).set(window.grams / 1000)
        for hub, seconds in result.dwell_seconds:
            self.dwell.labels(hub).observe(seconds)
        for hub, backlog in result.backlog.items():
            self.backlog.labels(hub).set(backlog)
        for hub, watermark in result.watermark_ms.items():
            self.watermark.labels(hub).set(watermark / 1000)
        for hub, count in result.expired_visits.items():
            self.expired_visits.labels(hub).inc(count)
