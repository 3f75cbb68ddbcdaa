"""The network's timetable and facilities: flight banks, sorters, breakdown stations, truck cut-offs (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from streams.network import cities_of

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
EPOCH_DAY = datetime(1970, 1, 1, tzinfo=UTC)

PARCELS_PER_TRAILER = 3000
"""A 13.6 m trailer of e-commerce parcels carries ~2.5k–3.5k; sizes the number of daily departures."""

ROAD_KMH = 70.0
"""Average trailer speed including border, ferry and traffic time, for arrival times at cities."""


def hm(hours: int, minutes: int = 0) -> int:
    """A UTC time of day in minutes."""
    return hours * 60 + minutes


@dataclass(frozen=True)
class Route:
    """A daily freighter rotation: one origin hub to one destination hub at fixed UTC departures."""

    carrier: str
    awb_prefix: str
    origin: str
    destination: str
    block_minutes: int
    departures: tuple[tuple[int, str], ...]
    """(UTC minute of day, flight number) of every daily departure."""
    parcels_per_flight: int
    """Mean parcels on one flight at scale 1 (a 777F of e-commerce parcels is volume-bound: ~25k–50k)."""


# Departures are set so arrivals form banks at the destination: the night bank at LGG lands
# 21:50–02:30 UTC (22:50–03:30 in Liège), so trucks reach European cities in the morning.
ROUTES: tuple[Route, ...] = (
    Route(
        "CK",
        "112",
        "HGH",
        "LGG",
        700,
        (
            (hm(10, 10), "251"),
            (hm(11, 0), "253"),
            (hm(11, 50), "255"),
            (hm(12, 40), "257"),
            (hm(14, 0), "259"),
            (hm(0, 50), "261"),
        ),
        48_000,
    ),
    Route("MH", "232", "KUL", "LGG", 790, ((hm(13, 20), "6040"),), 30_000),
    Route("SU", "555", "HGH", "SVO", 530, ((hm(18, 10), "5602"), (hm(6, 10), "5604")), 42_000),
    Route("EK", "176", "HGH", "DXB", 550, ((hm(13, 50), "9893"), (hm(1, 50), "9895")), 36_000),
    Route("MH", "232", "KUL", "DXB", 440, ((hm(11, 40), "6150"),), 28_000),
    Route("MH", "232", "HGH", "KUL", 260, ((hm(17, 40), "6073"), (hm(5, 40), "6075")), 24_000),
)
"""Every freighter rotation of the network (origins HGH and KUL; destinations LGG, SVO, DXB, KUL)."""


@dataclass(frozen=True, slots=True)
class PlannedFlight:
    """One scheduled flight of a route on one day."""

    flight_id: str
    route: Route
    departure_ms: int
    arrival_ms: int
    air_waybill: str
    stand: str


@dataclass(frozen=True)
class Facility:
    """What a hub has: sorters (rated items/h), ULD breakdown stations, customs, truck cut-offs."""

    hub: str
    sorters: tuple[tuple[str, int], ...]
    breakdown_stations: int
    breakdown_seconds_per_parcel: float
    customs_hold_rate: float
    cutoffs: tuple[int, ...]
    """UTC minutes of day at which trailers leave, in the order a lane adds departures as it grows."""


FACILITIES: dict[str, Facility] = {
    # Cainiao's LGG eHub runs two cross-belt sorters; the night bank floods them for a few hours.
    "LGG": Facility(
        "LGG",
        (("LGG-XB1", 18_000), ("LGG-XB2", 18_000)),
        16,
        1.0,
        0.015,
        (hm(4), hm(14, 30), hm(2, 30), hm(6), hm(20), hm(10)),
    ),
    "HGH": Facility("HGH", (("HGH-XB1", 24_000), ("HGH-XB2", 24_000)), 0, 1.0, 0.0, ()),
    "KUL": Facility("KUL", (("KUL-XB1", 12_000),), 6, 1.2, 0.02, (hm(1), hm(12), hm(22), hm(5))),
    "DXB": Facility("DXB", (("DXB-XB1", 15_000),), 8, 1.1, 0.015, (hm(3), hm(15), hm(22, 30), hm(8))),
    "SVO": Facility("SVO", (("SVO-XB1", 15_000),), 8, 1.1, 0.02, (hm(7), hm(19), hm(10), hm(23))),
}
"""Each hub's facilities; rated capacities divide an hour into whole milliseconds."""


def day_of(ms: int) -> str:
    """``YYYYMMDD`` of the UTC day holding ``ms``."""
    return (EPOCH_DAY + timedelta(milliseconds=ms - ms % DAY_MS)).strftime("%Y%m%d")


def air_waybill(prefix: str, day: int, number: str) -> str:
    """Master air waybill ``PPP-SSSSSSSC``: 7-digit serial and its mod-7 check digit, as IATA numbers them."""
    serial = (day * 7919 + int(number) * 131) % 10_000_000
    return f"{prefix}-{serial:07d}{serial % 7}"


def plan_flights(first_ms: int, last_ms: int, routes: tuple[Route, ...] = ROUTES) -> list[PlannedFlight]:
    """Every flight departing in ``[first_ms, last_ms)``, ordered by departure then flight id."""
    flights = []
    for day in range(first_ms // DAY_MS - 1, last_ms // DAY_MS + 1):
        for route in routes:
            for minute, number in route.departures:
                departure = day * DAY_MS + minute * MINUTE_MS
                if not first_ms <= departure < last_ms:
                    continue
                flights.append(
                    PlannedFlight(
                        flight_id=f"{route.carrier}{number}-{day_of(departure)}",
                        route=route,
                        departure_ms=departure,
                        arrival_ms=departure + route.block_minutes * MINUTE_MS,
                        air_waybill=air_waybill(route.awb_prefix, day, number),
                        stand=f"STAND-{int(number) % 24 + 1}",
                    )
                )
    flights.sort(key=lambda f: (f.departure_ms, f.flight_id))
    return flights


def daily_inbound(hub: str, routes: tuple[Route, ...] = ROUTES) -> int:
    """Parcels a hub receives by air per day at scale 1."""
    return sum(r.parcels_per_flight * len(r.departures) for r in routes if r.destination == hub)


def lane_cutoffs(facility: Facility, daily_parcels: float) -> tuple[int, ...]:
    """Departure times of a lane: one trailer a day for small cities, up to every cut-off for big ones."""
    if not facility.cutoffs:
        return ()
    wanted = max(1, min(len(facility.cutoffs), round(daily_parcels / PARCELS_PER_TRAILER)))
    return tuple(sorted(facility.cutoffs[:wanted]))


def cutoff_window(cutoffs: tuple[int, ...], moment_ms: int) -> tuple[int, int]:
    """The cut-offs around ``moment_ms``: (last one at or before it, first one strictly after it)."""
    if not cutoffs:
        raise ValueError("a lane needs at least one cut-off")
    day = moment_ms - moment_ms % DAY_MS
    previous = day - DAY_MS + cutoffs[-1] * MINUTE_MS
    for offset in (0, DAY_MS):
        for minute in cutoffs:
            moment = day + offset + minute * MINUTE_MS
            if moment > moment_ms:
                return previous, moment
            previous = moment
    raise AssertionError("unreachable: a cut-off falls within any day")


def drive_ms(road_km: int) -> int:
    """Typical door-to-door time of a trailer over ``road_km``, plus half an hour at both ends."""
    return round((road_km / ROAD_KMH + 0.5) * HOUR_MS)


def city_weights(hub: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """City codes served by ``hub`` and their shares of its parcels (summing to 1)."""
    cities = cities_of(hub)
    total = sum(c.weight for c in cities)
    return tuple(c.code for c in cities), tuple(c.weight / total for c in cities)
