"""Whatever a record holds, intake's outcome is a scan or a rejection with a reason — never an exception."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.aggregate.observation import decode, event_key
from streams.events import EVENT_TYPES, MAX_TEXT_LENGTH, SOURCE_FIELDS, Reason, ScanEvent
from streams.ingest.intake import MAX_FUTURE_MS, Admitted, Rejected, admit, intake
from streams.kafka.codec import Codec
from streams.kafka.topics import Source
from streams.network import HUBS
from tests.support.scans import BREAKDOWN, SORTED, T0

CODEC = Codec()
NOW_MS = T0 + 600_000
SOURCES = st.sampled_from(list(Source))
LONG = st.integers(min_value=-(2**63), max_value=2**63 - 1)
INT = st.integers(min_value=-(2**31), max_value=2**31 - 1)
TEXT = st.one_of(
    st.text(max_size=200),
    st.sampled_from(["LGG", "HGH", "", "ZZZ", *EVENT_TYPES]),
    st.integers(MAX_TEXT_LENGTH - 2, MAX_TEXT_LENGTH + 2).map(lambda n: "P" * n),
)
NEAR_NOW = st.one_of(LONG, st.integers(T0 - 10**9, T0 + 10**9), st.sampled_from([0, 2**63 - 1, NOW_MS + MAX_FUTURE_MS]))


def mostly(good: st.SearchStrategy[object], anything: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """Good values four times in five: valid scans reach every step, odd values still come."""
    return st.one_of(good, good, good, good, anything)


def outcome_is_a_scan_or_a_reason(result: Admitted | Rejected) -> None:
    if isinstance(result, Rejected):
        assert isinstance(result.reason, Reason) and result.detail and len(result.detail) < 2000
    else:
        assert isinstance(result.event, ScanEvent)
        if result.observation is not None:
            assert decode(result.observation).parcel_id == result.event.parcel_id


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(st.binary(max_size=300), st.binary(max_size=40).map(lambda b: b"\xc3\x01" + b)), source=SOURCES)
def test_arbitrary_bytes(data: bytes, source: Source) -> None:
    outcome_is_a_scan_or_a_reason(admit(CODEC, data, source, 3, 17, NOW_MS))


@st.composite
def schema_valid_records(draw: st.DrawFn) -> tuple[Source, dict[str, object]]:
    """Any record the source's Avro schema accepts: every field any value of its type."""
    source = draw(SOURCES)
    own_types = [t for t, s in EVENT_TYPES.items() if s is source]
    plausible = st.text(min_size=1, max_size=20)  # biased towards valid scans, so all steps run
    header = {
        "event_id": draw(mostly(plausible, TEXT)),
        "event_time": draw(mostly(st.integers(T0 - 10**9, NOW_MS + MAX_FUTURE_MS + 10**6), NEAR_NOW)),
        "hub": draw(mostly(st.sampled_from(HUBS), TEXT)),
        "read_point": draw(mostly(plausible, TEXT)),
        "event_type": draw(mostly(st.sampled_from(own_types), TEXT)),
        "parcel_id": draw(mostly(plausible, st.none() | TEXT)),
        "weight_grams": draw(mostly(st.integers(1, 100_000), st.none() | INT)),
        "schema_version": draw(INT),
    }
    record: dict[str, object] = {"header": header}
    nullable = {f["name"]: isinstance(f["type"], list) for f in CODEC.readers[source]["fields"]}
    for name in SOURCE_FIELDS[source]:
        record[name] = draw(mostly(plausible, st.none() | TEXT) if nullable[name] else mostly(plausible, TEXT))
    return source, record


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(sourced=schema_valid_records(), other=mostly(st.none(), SOURCES))
def test_arbitrary_schema_valid_records(sourced: tuple[Source, dict[str, object]], other: Source | None) -> None:
    source, record = sourced
    data = CODEC.encode_record(source, record)
    outcome_is_a_scan_or_a_reason(admit(CODEC, data, other or source, 65_535, 2**62, NOW_MS))


def text_field(field: str, value: str) -> dict[str, Any]:
    """``{field: value}`` for ``dataclasses.replace``: the field is named at run time, so its type is not known."""
    return {field: value}


@pytest.mark.parametrize(
    ("field", "reason"),
    [("parcel_id", Reason.FIELD_TOO_LONG), ("read_point", Reason.FIELD_TOO_LONG), ("event_id", Reason.FIELD_TOO_LONG)],
)
def test_oversized_fields_are_rejected_at_the_door(field: str, reason: Reason) -> None:
    at_limit = dataclasses.replace(SORTED, **text_field(field, "x" * MAX_TEXT_LENGTH))
    assert isinstance(admit(CODEC, CODEC.encode(at_limit), Source.SORTER, 0, 0, NOW_MS), Admitted)
    poison = dataclasses.replace(SORTED, **text_field(field, "x" * 900_000))
    rejected = admit(CODEC, CODEC.encode(poison), Source.SORTER, 0, 0, NOW_MS)
    assert isinstance(rejected, Rejected) and rejected.reason is reason
    assert f"{field} has 900,000 characters" in rejected.detail and len(rejected.detail) < 100


@pytest.mark.parametrize(
    ("ahead_ms", "accepted"),
    [(0, True), (MAX_FUTURE_MS, True), (MAX_FUTURE_MS + 1, False), (2 * 86_400_000, False)],
)
def test_clock_skew_is_bounded(ahead_ms: int, accepted: bool) -> None:
    event = dataclasses.replace(BREAKDOWN, event_time_ms=NOW_MS + ahead_ms)
    result = intake(CODEC, CODEC.encode(event), Source.FLIGHT, NOW_MS, MAX_FUTURE_MS)
    if accepted:
        assert result == event
    else:
        assert isinstance(result, Rejected) and result.reason is Reason.FUTURE_EVENT_TIME
        assert "ahead of processing time" in result.detail
    assert intake(CODEC, CODEC.encode(event), Source.FLIGHT) == event  # without a clock (files): no bound


def test_a_failing_step_rejects_the_record_not_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    import streams.ingest.intake

    def broken(*_args: object) -> bytes:
        raise struct_error

    struct_error = OverflowError("'H' format requires 0 <= number <= 65535")
    monkeypatch.setattr(streams.ingest.intake, "encode_scan", broken)
    result = admit(CODEC, CODEC.encode(SORTED), Source.SORTER, 0, 0, NOW_MS)
    assert isinstance(result, Rejected) and result.reason is Reason.UNPROCESSABLE
    assert "observing failed: OverflowError" in result.detail
    admitted = admit(CODEC, CODEC.encode(dataclasses.replace(SORTED, parcel_id=None)), Source.SORTER, 0, 0, NOW_MS)
    assert isinstance(admitted, Rejected)  # a SORTED scan without a parcel is invalid anyway
    assert event_key(SORTED.event_id) != 0


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from([BREAKDOWN, SORTED]),
    field=st.sampled_from(["event_id", "read_point", "parcel_id", "hub", "chute", "sorter_id", "uld_id"]),
    value=TEXT,
    event_time=st.integers(T0 - 10**9, NOW_MS + 2 * MAX_FUTURE_MS),
    grams=INT,
)
def test_valid_scans_with_any_one_field(base: ScanEvent, field: str, value: str, event_time: int, grams: int) -> None:
    source = base.source
    record = CODEC.readers[source]  # the fields this source's record has
    if field not in {f["name"] for f in record["fields"]} | {"event_id", "read_point", "parcel_id", "hub"}:
        field = "read_point"
    event = dataclasses.replace(base, **text_field(field, value), event_time_ms=event_time, weight_grams=grams)
    outcome_is_a_scan_or_a_reason(admit(CODEC, CODEC.encode(event), source, 1, 2, NOW_MS))
