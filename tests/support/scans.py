"""Fixed times, sample scan events and parcel lives for the pure tests."""

from __future__ import annotations

from datetime import UTC, datetime

from streams.aggregate.observation import Observation
from streams.aggregate.windows import HOUR_MS
from streams.events import ScanEvent, datetime_to_ms
from streams.kafka.topics import Source

T0 = datetime_to_ms(datetime(2026, 11, 24, 10, 0, tzinfo=UTC))
"""When the sample events happened."""

BREAKDOWN = ScanEvent("e1", T0, "LGG", "BD-1", "ULD_BREAKDOWN", "P1", 480, flight_id="CK251-20261124", uld_id="PMC1")
SORTED = ScanEvent("e2", T0, "LGG", "XB1-I3", "SORTED", "P1", 480, sorter_id="LGG-XB1", chute="C1", destination="PAR")
LOADED = ScanEvent("e3", T0, "LGG", "DOCK-4", "LOADED", "P1", 480, trailer_id="LGG-PAR-1", destination="PAR")
ARRIVED = ScanEvent("e4", T0, "LGG", "STAND-2", "FLIGHT_ARRIVED", flight_id="CK251-20261124", origin="HGH")
DEPARTED = ScanEvent("e5", T0, "LGG", "GATE-1", "TRUCK_DEPARTED", trailer_id="LGG-PAR-1", destination="PAR")
VALID = [BREAKDOWN, SORTED, LOADED, ARRIVED, DEPARTED]
"""One valid event of each shape: a parcel scan of each source, a flight and a truck milestone."""

HOUR_T0 = 1_795_000_000_000 - 1_795_000_000_000 % HOUR_MS
"""The start of an hour (2026-11-18T11:00:00Z) at which the aggregation tests' observations begin."""

FIXED_START_MS = 1_795_392_000_000
"""2026-11-23T00:00:00Z, a Monday: for pure tests of the simulator's model only, never sent to a topic."""


def parcel_life(parcel: str, hub: str, t: int, offset: int, grams: int = 500) -> list[Observation]:
    """Breakdown, induct, sort, load: 1 + 2 + 10 minutes apart, all from partition 0 of each topic."""
    return [
        Observation(hub, "ULD_BREAKDOWN", t, grams, Source.FLIGHT, 0, offset, parcel),
        Observation(hub, "INDUCTED", t + 60_000, grams, Source.SORTER, 0, 2 * offset, parcel),
        Observation(hub, "SORTED", t + 180_000, grams, Source.SORTER, 0, 2 * offset + 1, parcel),
        Observation(hub, "LOADED", t + 780_000, grams, Source.TRUCK, 0, offset, parcel),
    ]
