"""Every Prometheus metric of parcelflow, declared once (help, unit, bounded labels)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

from streams.events import ScanEvent
from streams.topology import Source

# Event delay = processing time − event time. Live scans arrive within seconds; a backlog or a
# broker outage stretches that to minutes or hours, so the buckets span 50 ms to 6 h.
EVENT_DELAY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600)


@dataclass(frozen=True)
class Metrics:
    """The worker's metrics, bound to one registry (a fresh one per test)."""

    registry: CollectorRegistry
    events: Counter
    parcels: Counter
    kilograms: Counter
    invalid: Counter
    event_delay: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> Metrics:
        """Register every metric in ``registry``."""
        return cls(
            registry=registry,
            events=Counter(
                "parcelflow_events",
                "Valid scan events processed, by hub, source and event type.",
                ["hub", "source", "event_type"],
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
        )

    def observe(self, event: ScanEvent, source: Source, now: float) -> None:
        """Count one valid scan: per hub/source/type, its flow's parcels and kilograms, its delay."""
        self.events.labels(event.hub, source.value, event.event_type).inc()
        flow = event.flow
        if flow is not None and event.weight_grams is not None:
            self.parcels.labels(event.hub, flow.value).inc()
            self.kilograms.labels(event.hub, flow.value).inc(event.weight_grams / 1000)
        self.event_delay.labels(source.value).observe(now - event.event_time_ms / 1000)
