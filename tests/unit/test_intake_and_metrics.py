from __future__ import annotations

from collections import Counter

import pytest
from prometheus_client import CollectorRegistry

from streams.aggregate.observation import decode, encode, observe
from streams.events import Reason
from streams.ingest.intake import Admitted, Rejected, admit, deadletter_headers, intake
from streams.kafka.codec import Codec
from streams.kafka.topics import Source
from streams.worker.metrics import Metrics
from tests.support.scans import ARRIVED, BREAKDOWN, LOADED, SORTED, T0


@pytest.fixture(scope="module")
def codec() -> Codec:
    return Codec()


def test_intake_returns_the_event_or_the_reason(codec: Codec) -> None:
    assert intake(codec, codec.encode(BREAKDOWN), Source.FLIGHT) == BREAKDOWN
    assert intake(codec, None, Source.FLIGHT) == Rejected(Reason.UNDECODABLE, "empty record value")
    rejected = intake(codec, codec.encode(LOADED), Source.SORTER)
    assert isinstance(rejected, Rejected) and rejected.reason is Reason.WRONG_SOURCE


def test_admit_decodes_event_time_as_ms_and_encodes_the_observation_of_the_scan(codec: Codec) -> None:
    # The intake reads timestamp-millis as an integer and packs the by-hub record without an
    # Observation in between: both must give exactly what the slow path gives.
    result = admit(codec, codec.encode(SORTED), Source.SORTER, 4, 77, T0)
    assert isinstance(result, Admitted)
    assert result.event == SORTED
    assert type(result.event.event_time_ms) is int
    _source, record = codec.decode_record(codec.encode(SORTED))
    assert record["header"]["event_time"] == SORTED.event_time_ms  # no datetime built on the way
    expected = observe(SORTED, Source.SORTER, 4, 77)
    assert result.observation == encode(expected)
    assert decode(result.observation) == expected


def test_deadletter_headers_name_origin_and_reason() -> None:
    headers = deadletter_headers("p.scans.flight", 2, 41, Rejected(Reason.UNKNOWN_HUB, "unknown hub 'ZZZ'"))
    assert tuple(headers) == ("source_topic", "source_partition", "source_offset", "reason", "detail")
    assert headers["source_offset"] == b"41"
    assert headers["reason"] == b"unknown_hub"


def test_observe_counts_events_flows_kilograms_and_delay() -> None:
    registry = CollectorRegistry()
    metrics = Metrics.create(registry)
    now = T0 / 1000 + 3.0
    metrics.observe(
        [
            (BREAKDOWN, Source.FLIGHT),
            (SORTED, Source.SORTER),
            (LOADED, Source.TRUCK),
            (ARRIVED, Source.FLIGHT),
            (BREAKDOWN, Source.FLIGHT),
        ],
        now,
    )
    value = registry.get_sample_value
    assert value("parcelflow_events_total", {"hub": "LGG", "source": "flight", "event_type": "ULD_BREAKDOWN"}) == 2
    assert value("parcelflow_events_total", {"hub": "LGG", "source": "flight", "event_type": "FLIGHT_ARRIVED"}) == 1
    assert value("parcelflow_flow_parcels_total", {"hub": "LGG", "flow": "inbound"}) == 2
    assert value("parcelflow_flow_parcels_total", {"hub": "LGG", "flow": "outbound"}) == 1
    assert value("parcelflow_flow_kilograms_total", {"hub": "LGG", "flow": "inbound"}) == pytest.approx(0.96)
    assert value("parcelflow_event_delay_seconds_count", {"source": "flight"}) == 3
    assert value("parcelflow_event_delay_seconds_bucket", {"source": "flight", "le": "2.5"}) == 0
    assert value("parcelflow_event_delay_seconds_bucket", {"source": "flight", "le": "5.0"}) == 3


def test_deadletter_counters_exist_from_the_start_and_stale_hub_gauges_can_be_dropped() -> None:
    from streams.aggregate.aggregator import BatchResult
    from streams.aggregate.windows import ClosedWindow

    registry = CollectorRegistry()
    metrics = Metrics.create(registry)
    assert (
        registry.get_sample_value("parcelflow_invalid_events_total", {"source": "truck", "reason": "bad_weight"}) == 0
    )
    metrics.record_batch(
        BatchResult(
            closed=[ClosedWindow("LGG", "sorted", T0, 60_000, 3, 1500, 1)],
            backlog={"LGG": 7},
            watermark_ms={"LGG": T0},
            scans=Counter({"LGG": 5}),
        )
    )
    metrics.record_batch(BatchResult(scans=Counter({"LGG": 2})))
    assert registry.get_sample_value("parcelflow_aggregated_scans_total", {"hub": "LGG"}) == 7
    assert registry.get_sample_value("parcelflow_backlog_parcels", {"hub": "LGG"}) == 7
    assert registry.get_sample_value("parcelflow_window_parcels", {"hub": "LGG", "flow": "sorted"}) == 3
    metrics.forget_hubs(["LGG", "KUL"])
    assert registry.get_sample_value("parcelflow_backlog_parcels", {"hub": "LGG"}) is None
    assert registry.get_sample_value("parcelflow_window_parcels", {"hub": "LGG", "flow": "sorted"}) is None
