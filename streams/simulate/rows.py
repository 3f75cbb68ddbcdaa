"""Scan events as plain tuples for the simulator's hot path; ``ScanEvent(*row)`` is the event.

Building a frozen dataclass costs more than everything else the simulator does per event, so the
model, the emission stage, the truth and the file sinks pass tuples holding a ScanEvent's fields in
its field order. Importing this module checks the positions below against ``ScanEvent``.
"""

from __future__ import annotations

from typing import Final

from streams.events import EVENT_FIELD_NAMES, ScanEvent

Row = tuple[
    str,  # event_id
    int,  # event_time_ms
    str,  # hub
    str,  # read_point
    str,  # event_type
    str | None,  # parcel_id
    int | None,  # weight_grams
    str | None,  # flight_id
    str | None,  # uld_id
    str | None,  # air_waybill
    str | None,  # origin
    str | None,  # destination
    str | None,  # sorter_id
    str | None,  # chute
    str | None,  # trailer_id
    int,  # schema_version
]
"""A ScanEvent's fields in declaration order."""

EVENT_ID: Final = 0
TIME: Final = 1
HUB: Final = 2
READ_POINT: Final = 3
EVENT_TYPE: Final = 4
PARCEL: Final = 5
GRAMS: Final = 6
FLIGHT: Final = 7
DESTINATION: Final = 11
SORTER: Final = 12
TRAILER: Final = 14
_POSITIONS = {
    "event_id": EVENT_ID,
    "event_time_ms": TIME,
    "hub": HUB,
    "read_point": READ_POINT,
    "event_type": EVENT_TYPE,
    "parcel_id": PARCEL,
    "weight_grams": GRAMS,
    "flight_id": FLIGHT,
    "destination": DESTINATION,
    "sorter_id": SORTER,
    "trailer_id": TRAILER,
}
if any(EVENT_FIELD_NAMES[index] != name for name, index in _POSITIONS.items()) or len(EVENT_FIELD_NAMES) != 16:
    raise ImportError("streams.simulate.rows no longer mirrors ScanEvent's fields: update Row")


def to_event(row: Row) -> ScanEvent:
    """The ScanEvent a row stands for."""
    return ScanEvent(*row)


def to_row(event: ScanEvent) -> Row:
    """The row of a ScanEvent (inverse of :func:`to_event`)."""
    return (
        event.event_id,
        event.event_time_ms,
        event.hub,
        event.read_point,
        event.event_type,
        event.parcel_id,
        event.weight_grams,
        event.flight_id,
        event.uld_id,
        event.air_waybill,
        event.origin,
        event.destination,
        event.sorter_id,
        event.chute,
        event.trailer_id,
        event.schema_version,
    )
