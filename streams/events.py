"""Scan events as plain data: the event model, flow classification and validation (pure)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from streams.errors import ParcelflowError
from streams.kafka.topics import Source
from streams.network import HUBS

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
MIN_EVENT_TIME_MS = 946_684_800_000  # 2000-01-01T00:00:00Z: nothing older is a real scan
MAX_EVENT_TIME_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z
MAX_WEIGHT_GRAMS = 100_000  # a parcel over 100 kg is freight, not an e-commerce parcel
MAX_TEXT_LENGTH = 128
"""Longest id, read point or code a scan may carry (characters). Real ones are under 40; the bound
keeps one scanner's garbage (a 900 KB parcel id) from reaching state keys and internal records."""

EVENT_TYPES: dict[str, Source] = {
    "FLIGHT_ARRIVED": Source.FLIGHT,
    "ULD_BREAKDOWN": Source.FLIGHT,
    "ULD_BUILDUP": Source.FLIGHT,
    "FLIGHT_DEPARTED": Source.FLIGHT,
    "INDUCTED": Source.SORTER,
    "SORTED": Source.SORTER,
    "NO_READ": Source.SORTER,
    "RECIRCULATED": Source.SORTER,
    "MISSORTED": Source.SORTER,
    "CUSTOMS_HOLD": Source.SORTER,
    "CUSTOMS_RELEASED": Source.SORTER,
    "LOADED": Source.TRUCK,
    "TRUCK_DEPARTED": Source.TRUCK,
    "TRUCK_ARRIVED": Source.TRUCK,
}
"""Every event type and the one source (topic, schema) it belongs to."""

VEHICLE_EVENT_TYPES = frozenset({"FLIGHT_ARRIVED", "FLIGHT_DEPARTED", "TRUCK_DEPARTED", "TRUCK_ARRIVED"})
"""Milestones of a flight or trailer: no parcel, no weight, keyed by the vehicle id."""

VEHICLE_ID_FIELD: dict[Source, str] = {
    Source.FLIGHT: "flight_id",
    Source.SORTER: "sorter_id",
    Source.TRUCK: "trailer_id",
}
"""The field each source must carry besides the header."""

SOURCE_FIELDS: dict[Source, tuple[str, ...]] = {
    Source.FLIGHT: ("flight_id", "uld_id", "air_waybill", "origin", "destination"),
    Source.SORTER: ("sorter_id", "chute", "destination"),
    Source.TRUCK: ("trailer_id", "destination"),
}
"""Fields of each source's Avro record besides ``header`` (see ``schemas/*.avsc``)."""


class Flow(StrEnum):
    """What a parcel scan means for a hub's throughput."""

    INBOUND = "inbound"
    SORTED = "sorted"
    OUTBOUND = "outbound"


FLOW_OF_EVENT_TYPE: dict[str, Flow] = {
    "ULD_BREAKDOWN": Flow.INBOUND,
    "SORTED": Flow.SORTED,
    "LOADED": Flow.OUTBOUND,
    "ULD_BUILDUP": Flow.OUTBOUND,
}
"""Parcels enter a hub when their ULD is broken down, and leave when loaded on a truck or ULD."""


class Reason(StrEnum):
    """Why a record was rejected: the bounded ``reason`` label of the invalid-events metric."""

    UNDECODABLE = "undecodable"
    UNKNOWN_SCHEMA = "unknown_schema"
    UNKNOWN_SCHEMA_ID = "unknown_schema_id"  # Confluent wire format naming an id the schema registry does not have
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    WRONG_SOURCE = "wrong_source"
    UNKNOWN_HUB = "unknown_hub"
    MISSING_FIELD = "missing_field"
    BAD_WEIGHT = "bad_weight"
    BAD_EVENT_TIME = "bad_event_time"
    BAD_FIELD = "bad_field"
    FIELD_TOO_LONG = "field_too_long"
    FUTURE_EVENT_TIME = "future_event_time"  # further ahead of processing time than the allowed clock skew
    MISROUTED = "misrouted"  # an internal record in a partition it does not belong to (e.g. partitions added)
    UNPROCESSABLE = "unprocessable"  # a processing step failed on it (a bug): dead-lettered, the stream goes on


class InvalidEvent(ParcelflowError):
    """A record that is not a valid scan event, with a bounded reason and a readable detail."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ScanEvent:
    """One scan, flat: the shared header plus the fields of its source (others stay ``None``)."""

    event_id: str
    event_time_ms: int
    hub: str
    read_point: str
    event_type: str
    parcel_id: str | None = None
    weight_grams: int | None = None
    flight_id: str | None = None
    uld_id: str | None = None
    air_waybill: str | None = None
    origin: str | None = None
    destination: str | None = None
    sorter_id: str | None = None
    chute: str | None = None
    trailer_id: str | None = None
    schema_version: int = 1

    @property
    def source(self) -> Source:
        """Source of this event, given by its type (raises for an unknown type)."""
        try:
            return EVENT_TYPES[self.event_type]
        except KeyError:
            raise InvalidEvent(Reason.UNKNOWN_EVENT_TYPE, f"unknown event type {shown(self.event_type)}") from None

    @property
    def event_time(self) -> datetime:
        """Event time as an aware UTC datetime."""
        return ms_to_datetime(self.event_time_ms)

    @property
    def key(self) -> str:
        """Kafka key: the parcel for parcel scans, the flight/trailer/sorter otherwise."""
        if self.parcel_id is not None:
            return self.parcel_id
        return str(getattr(self, VEHICLE_ID_FIELD[self.source]))

    @property
    def flow(self) -> Flow | None:
        """Throughput flow this scan counts towards, if any."""
        return FLOW_OF_EVENT_TYPE.get(self.event_type)


EVENT_FIELD_NAMES = tuple(f.name for f in fields(ScanEvent))


def ms_to_datetime(ms: int) -> datetime:
    """Epoch milliseconds → aware UTC datetime, exactly."""
    return EPOCH + ms * _MS


def datetime_to_ms(moment: datetime) -> int:
    """Aware datetime → epoch milliseconds, exactly (naive datetimes are refused)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidEvent(Reason.BAD_EVENT_TIME, f"event time {moment.isoformat()} has no time zone")
    return (moment - EPOCH) // _MS


TEXT_FIELDS = tuple(
    name for name in EVENT_FIELD_NAMES if name not in {"event_time_ms", "weight_grams", "schema_version"}
)
"""Every text field of a scan (ids, codes, read point, hub, event type)."""


def shown(value: object, limit: int = 40) -> str:
    """``repr`` of a user value for a message, cut short: a reject reason never echoes a megabyte."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def validate(event: ScanEvent, source: Source | None = None) -> ScanEvent:
    """Return ``event`` if it is a valid scan (from ``source``, when given), else raise InvalidEvent."""
    for name in TEXT_FIELDS:
        value = getattr(event, name)
        if value is not None and len(value) > MAX_TEXT_LENGTH:
            raise InvalidEvent(
                Reason.FIELD_TOO_LONG, f"{name} has {len(value):,} characters (at most {MAX_TEXT_LENGTH})"
            )
    event_source = event.source
    if source is not None and event_source is not source:
        raise InvalidEvent(
            Reason.WRONG_SOURCE,
            f"{event.event_type} is a {event_source.value} event, not a {source.value} event",
        )
    if not MIN_EVENT_TIME_MS <= event.event_time_ms < MAX_EVENT_TIME_MS:
        raise InvalidEvent(Reason.BAD_EVENT_TIME, f"event time {event.event_time_ms} ms is outside 2000–2100")
    if event.hub not in HUBS:
        raise InvalidEvent(Reason.UNKNOWN_HUB, f"unknown hub {shown(event.hub)} (known: {', '.join(HUBS)})")
    for name in ("event_id", "read_point"):
        if not getattr(event, name):
            raise InvalidEvent(Reason.MISSING_FIELD, f"{name} is empty")
    vehicle_field = VEHICLE_ID_FIELD[event_source]
    if not getattr(event, vehicle_field):
        raise InvalidEvent(Reason.MISSING_FIELD, f"{event.event_type} needs {vehicle_field}")
    if event.event_type in VEHICLE_EVENT_TYPES:
        if event.parcel_id is not None or event.weight_grams is not None:
            raise InvalidEvent(Reason.BAD_FIELD, f"{event.event_type} is a vehicle milestone: no parcel_id/weight")
    else:
        if not event.parcel_id:
            raise InvalidEvent(Reason.MISSING_FIELD, f"{event.event_type} needs parcel_id")
        if event.weight_grams is None:
            raise InvalidEvent(Reason.MISSING_FIELD, f"{event.event_type} needs weight_grams")
        if not 0 < event.weight_grams <= MAX_WEIGHT_GRAMS:
            raise InvalidEvent(Reason.BAD_WEIGHT, f"weight {event.weight_grams} g is outside 1–{MAX_WEIGHT_GRAMS} g")
    if event_source is Source.TRUCK and not event.destination:
        raise InvalidEvent(Reason.MISSING_FIELD, f"{event.event_type} needs destination")
    return event


def to_record(event: ScanEvent) -> dict[str, Any]:
    """ScanEvent → the Avro record of its source (``header`` + source fields)."""
    header = {
        "event_id": event.event_id,
        "event_time": event.event_time_ms,
        "hub": event.hub,
        "read_point": event.read_point,
        "event_type": event.event_type,
        "parcel_id": event.parcel_id,
        "weight_grams": event.weight_grams,
        "schema_version": event.schema_version,
    }
    record: dict[str, Any] = {"header": header}
    for name in SOURCE_FIELDS[event.source]:
        record[name] = getattr(event, name)
    return record


def from_record(record: Mapping[str, Any]) -> ScanEvent:
    """Decoded Avro record (any source, any schema version) → ScanEvent."""
    header = record["header"]
    event_time = header["event_time"]
    event_time_ms = datetime_to_ms(event_time) if isinstance(event_time, datetime) else int(event_time)
    get = record.get
    return ScanEvent(  # positional: keywords cost twice as much, and this runs once per record read
        header["event_id"],
        event_time_ms,
        header["hub"],
        header["read_point"],
        header["event_type"],
        header.get("parcel_id"),
        header.get("weight_grams"),
        get("flight_id"),
        get("uld_id"),
        get("air_waybill"),
        get("origin"),
        get("destination"),
        get("sorter_id"),
        get("chute"),
        get("trailer_id"),
        header.get("schema_version", 1),
    )


def parse_event_time(value: object) -> int:
    """Event time from a file: ISO 8601 with a zone (``Z``/``+01:00``) or epoch milliseconds."""
    if isinstance(value, bool):
        raise InvalidEvent(Reason.BAD_EVENT_TIME, f"event_time {shown(value)} is not a time")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidEvent(Reason.BAD_EVENT_TIME, f"event_time {shown(value)} is not ISO 8601") from None
        return datetime_to_ms(moment)
    raise InvalidEvent(Reason.BAD_EVENT_TIME, f"event_time {shown(value)} is not a time")


_INT_TEXT = re.compile(r"^-?\d+$")


def _optional_int(name: str, value: object) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidEvent(Reason.BAD_FIELD, f"{name} must be a whole number, got {shown(value)}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INT_TEXT.match(value.strip()):
        return int(value)
    raise InvalidEvent(Reason.BAD_FIELD, f"{name} must be a whole number, got {shown(value)}")


def _optional_str(name: str, value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidEvent(Reason.BAD_FIELD, f"{name} must be text, got {shown(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate, e.g. from "\ud800" in JSON
        raise InvalidEvent(
            Reason.BAD_FIELD, f"{name} is not valid Unicode text ({exc.reason} at {exc.start})"
        ) from None
    return value


_STRING_FIELDS = tuple(
    name for name in EVENT_FIELD_NAMES if name not in {"event_id", "event_time_ms", "weight_grams", "schema_version"}
)


def from_mapping(row: Mapping[str, object]) -> ScanEvent:
    """A flat row from JSON Lines or CSV → a validated ScanEvent (raises InvalidEvent)."""
    unknown = set(row) - set(EVENT_FIELD_NAMES) - {"event_time", "source"}
    if unknown:
        raise InvalidEvent(Reason.BAD_FIELD, f"unknown field(s): {shown(', '.join(sorted(unknown)), 80)}")
    for name in ("event_time", "hub", "read_point", "event_type"):
        if row.get(name) in (None, ""):
            raise InvalidEvent(Reason.MISSING_FIELD, f"{name} is missing")
    event_type = _optional_str("event_type", row["event_type"])
    if event_type not in EVENT_TYPES:
        raise InvalidEvent(Reason.UNKNOWN_EVENT_TYPE, f"unknown event type {shown(event_type)}")
    declared = row.get("source")
    if declared not in (None, "") and declared != EVENT_TYPES[event_type].value:
        raise InvalidEvent(
            Reason.WRONG_SOURCE, f"{event_type} is a {EVENT_TYPES[event_type].value} event, not {shown(declared)}"
        )
    values: dict[str, Any] = {name: _optional_str(name, row.get(name)) for name in _STRING_FIELDS}
    values["event_time_ms"] = parse_event_time(row["event_time"])
    values["weight_grams"] = _optional_int("weight_grams", row.get("weight_grams"))
    values["schema_version"] = _optional_int("schema_version", row.get("schema_version")) or 1
    event_id = _optional_str("event_id", row.get("event_id"))
    values["event_id"] = event_id or derived_event_id(values)
    return validate(ScanEvent(**values))


def derived_event_id(values: Mapping[str, Any]) -> str:
    """A stable id for a row that has none, so publishing the same file twice repeats ids."""
    text = "|".join(f"{k}={values.get(k)}" for k in sorted(values) if k != "event_id")
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "parcelflow:" + text))


def to_mapping(event: ScanEvent) -> dict[str, Any]:
    """ScanEvent → a flat JSON-ready dict (event time as ISO 8601 UTC), the inverse of from_mapping."""
    row = {k: v for k, v in asdict(event).items() if v is not None}
    row["event_time"] = event.event_time.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    del row["event_time_ms"]
    return row
