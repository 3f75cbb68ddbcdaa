from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.events import (
    EVENT_TYPES,
    FLOW_OF_EVENT_TYPE,
    Flow,
    InvalidEvent,
    Reason,
    ScanEvent,
    datetime_to_ms,
    from_mapping,
    from_record,
    ms_to_datetime,
    to_mapping,
    to_record,
    validate,
)
from streams.kafka.topics import Source
from streams.network import HUBS
from tests.support import network
from tests.support.scans import ARRIVED, BREAKDOWN, DEPARTED, LOADED, SORTED, T0, VALID


@pytest.mark.parametrize("event", VALID, ids=lambda e: e.event_type)
def test_valid_events_pass(event: ScanEvent) -> None:
    assert validate(event) is event


@pytest.mark.parametrize(
    ("event", "reason", "words"),
    [
        (replace(BREAKDOWN, event_type="TELEPORTED"), Reason.UNKNOWN_EVENT_TYPE, "TELEPORTED"),
        (replace(BREAKDOWN, hub="CDG"), Reason.UNKNOWN_HUB, "CDG"),
        (replace(BREAKDOWN, parcel_id=None), Reason.MISSING_FIELD, "parcel_id"),
        (replace(BREAKDOWN, weight_grams=None), Reason.MISSING_FIELD, "weight_grams"),
        (replace(BREAKDOWN, weight_grams=0), Reason.BAD_WEIGHT, "0 g"),
        (replace(BREAKDOWN, weight_grams=250_000), Reason.BAD_WEIGHT, "250000 g"),
        (replace(BREAKDOWN, flight_id=None), Reason.MISSING_FIELD, "flight_id"),
        (replace(SORTED, sorter_id=""), Reason.MISSING_FIELD, "sorter_id"),
        (replace(LOADED, destination=None), Reason.MISSING_FIELD, "destination"),
        (replace(ARRIVED, parcel_id="P9"), Reason.BAD_FIELD, "vehicle milestone"),
        (replace(BREAKDOWN, event_time_ms=0), Reason.BAD_EVENT_TIME, "outside"),
        (replace(BREAKDOWN, read_point=""), Reason.MISSING_FIELD, "read_point"),
        (replace(BREAKDOWN, event_id=""), Reason.MISSING_FIELD, "event_id"),
    ],
)
def test_invalid_events_name_their_reason(event: ScanEvent, reason: Reason, words: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        validate(event)
    assert caught.value.reason is reason
    assert words in caught.value.detail


def test_event_type_must_match_the_topic_source() -> None:
    with pytest.raises(InvalidEvent) as caught:
        validate(SORTED, Source.FLIGHT)
    assert caught.value.reason is Reason.WRONG_SOURCE


@pytest.mark.parametrize(
    ("event", "flow"),
    [(BREAKDOWN, Flow.INBOUND), (SORTED, Flow.SORTED), (LOADED, Flow.OUTBOUND), (ARRIVED, None)],
)
def test_flow_classification(event: ScanEvent, flow: Flow | None) -> None:
    assert event.flow is flow


def test_every_event_type_has_one_source_and_outbound_includes_buildup() -> None:
    assert set(EVENT_TYPES.values()) == set(Source)
    assert replace(BREAKDOWN, event_type="ULD_BUILDUP").flow is Flow.OUTBOUND


def test_the_tables_the_tests_write_out_agree_with_the_product() -> None:
    assert list(HUBS) == list(network.HUBS)
    assert {t: f.value for t, f in FLOW_OF_EVENT_TYPE.items()} == network.FLOW
    assert {t: s.value for t, s in EVENT_TYPES.items()} == network.SOURCE


def test_key_is_parcel_or_vehicle() -> None:
    assert BREAKDOWN.key == "P1"
    assert ARRIVED.key == "CK251-20261124"
    assert DEPARTED.key == "LGG-PAR-1"


@pytest.mark.parametrize("event", VALID, ids=lambda e: e.event_type)
def test_record_round_trip(event: ScanEvent) -> None:
    assert from_record(to_record(event)) == event


@pytest.mark.parametrize("event", VALID, ids=lambda e: e.event_type)
def test_mapping_round_trip(event: ScanEvent) -> None:
    assert from_mapping(to_mapping(event)) == event


def test_from_mapping_accepts_offsets_and_epoch_millis_and_derives_stable_ids() -> None:
    row = {
        "event_time": "2026-11-24T11:00:00+01:00",
        "hub": "LGG",
        "read_point": "BD-1",
        "event_type": "ULD_BREAKDOWN",
        "parcel_id": "P1",
        "weight_grams": "480",
        "flight_id": "CK1",
    }
    event = from_mapping(row)
    assert event.event_time_ms == T0
    assert from_mapping({**row, "event_time": str(T0)}).event_time_ms == T0
    assert event.event_id == from_mapping(row).event_id
    assert event.event_id != from_mapping({**row, "parcel_id": "P2"}).event_id


@pytest.mark.parametrize(
    ("change", "reason", "words"),
    [
        ({"event_time": "2026-11-24T10:00:00"}, Reason.BAD_EVENT_TIME, "no time zone"),
        ({"event_time": "yesterday"}, Reason.BAD_EVENT_TIME, "ISO 8601"),
        ({"event_time": None}, Reason.MISSING_FIELD, "event_time"),
        ({"weight_grams": "heavy"}, Reason.BAD_FIELD, "weight_grams"),
        ({"weight_grams": 1.5}, Reason.BAD_FIELD, "weight_grams"),
        ({"colour": "red"}, Reason.BAD_FIELD, "colour"),
        ({"source": "truck"}, Reason.WRONG_SOURCE, "flight"),
        ({"hub": 7}, Reason.BAD_FIELD, "hub"),
    ],
)
def test_from_mapping_rejects_bad_rows(change: dict[str, object], reason: Reason, words: str) -> None:
    row = {**to_mapping(BREAKDOWN), **change}
    with pytest.raises(InvalidEvent) as caught:
        from_mapping(row)
    assert caught.value.reason is reason
    assert words in caught.value.detail


@given(st.integers(min_value=-(10**13), max_value=10**13))
def test_millis_round_trip_exactly(ms: int) -> None:
    assert datetime_to_ms(ms_to_datetime(ms)) == ms


@given(
    st.datetimes(
        # From 2 Jan of year 1: a local time on 1 Jan at +05:30 is still in year 0 in UTC, which no datetime holds.
        min_value=datetime(1, 1, 2),  # noqa: DTZ001 - hypothesis bounds are naive
        timezones=st.just(timezone(timedelta(hours=5, minutes=30))),
    )
)
def test_datetime_to_ms_respects_offsets(moment: datetime) -> None:
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    assert ms_to_datetime(datetime_to_ms(moment)) == moment


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(InvalidEvent):
        datetime_to_ms(datetime(2026, 1, 1))  # noqa: DTZ001
