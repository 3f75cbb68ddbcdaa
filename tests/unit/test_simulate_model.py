"""The simulated network obeys physics and looks like the real one (no broker, no files)."""

from __future__ import annotations

from collections import Counter, defaultdict
from statistics import mean

import pytest

from streams.events import ScanEvent, validate
from streams.network import CITIES, CITY_BY_CODE, HUBS, cities_of
from streams.simulate.config import SimConfig
from streams.simulate.model import scan_events, scan_rows
from streams.simulate.schedule import DAY_MS, FACILITIES, HOUR_MS, MINUTE_MS, cutoff_window, plan_flights
from tests.support.network import OUTBOUND
from tests.support.scans import FIXED_START_MS
from tests.support.simulation import lifecycle_violations

DAY = SimConfig(start_ms=FIXED_START_MS, seed=11, duration_s=86_400, scale=0.05)


@pytest.fixture(scope="module")
def day() -> list[ScanEvent]:
    """A simulated day at 5 % volume (~200k events)."""
    return list(scan_events(DAY))


def test_every_event_is_valid_and_in_event_time_order(day: list[ScanEvent]) -> None:
    assert len(day) > 100_000
    for event in day:
        validate(event)
        assert DAY.start_ms <= event.event_time_ms < DAY.end_ms
    times = [e.event_time_ms for e in day]
    assert times == sorted(times)
    assert len({e.event_id for e in day}) == len(day)


def test_every_parcel_lives_a_physically_possible_life(day: list[ScanEvent]) -> None:
    assert lifecycle_violations(day) == []


def test_the_lifecycle_check_catches_impossible_orders(day: list[ScanEvent]) -> None:
    from dataclasses import replace

    loaded = next(e for e in reversed(day) if e.event_type == "LOADED")
    sorted_scan = next(
        e for e in day if e.parcel_id == loaded.parcel_id and e.event_type == "SORTED" and e.hub == loaded.hub
    )
    swapped = [replace(loaded, event_time_ms=sorted_scan.event_time_ms - 1) if e is loaded else e for e in day]
    assert any("LOADED then" in p for p in lifecycle_violations(swapped))


def test_no_parcel_leaves_a_hub_before_it_arrived(day: list[ScanEvent]) -> None:
    scans: dict[tuple[str, str], list[ScanEvent]] = defaultdict(list)
    for event in day:
        if event.parcel_id is not None:
            scans[(event.parcel_id, event.hub)].append(event)
    departures = 0
    for visit in scans.values():
        outbound = [e for e in visit if e.event_type in OUTBOUND]
        assert len(outbound) <= 1
        if outbound:
            departures += 1
            assert all(e.event_time_ms < outbound[0].event_time_ms for e in visit if e is not outbound[0])
    assert departures > 10_000


def test_the_whole_network_and_its_cities_see_traffic(day: list[ScanEvent]) -> None:
    assert {e.hub for e in day} == set(HUBS)
    arrivals = [e for e in day if e.event_type == "TRUCK_ARRIVED"]
    assert all(CITY_BY_CODE[e.destination or ""].hub == e.hub for e in arrivals)
    assert len({e.destination for e in arrivals}) >= 60
    types = Counter(e.event_type for e in day)
    assert set(types) == {
        "FLIGHT_ARRIVED", "ULD_BREAKDOWN", "ULD_BUILDUP", "FLIGHT_DEPARTED", "INDUCTED", "SORTED", "NO_READ",
        "RECIRCULATED", "MISSORTED", "CUSTOMS_HOLD", "CUSTOMS_RELEASED", "LOADED", "TRUCK_DEPARTED", "TRUCK_ARRIVED",
    }  # fmt: skip
    lives: dict[str, list[str]] = defaultdict(list)
    for event in day:
        if event.parcel_id:
            lives[event.parcel_id].append(event.event_type)
    whole = [
        life for life in lives.values() if life[0] == "INDUCTED" and "ULD_BUILDUP" in life and life[-1] == "LOADED"
    ]
    assert len(whole) > 1000
    assert 7 <= mean(len(life) for life in whole) <= 7.5  # 3 scans at the origin, 4 at the destination, detours


def test_cities_are_about_a_hundred_plausible_codes() -> None:
    codes = [c.code for c in CITIES]
    assert 90 <= len(codes) <= 120 and len(set(codes)) == len(codes)
    assert all(len(code) == 3 and code.isalpha() and code.isupper() and code not in HUBS for code in codes)
    assert len(cities_of("LGG")) >= 75 and cities_of("HGH") == ()
    assert all(cities_of(hub) for hub in ("SVO", "DXB", "KUL"))


def test_freighters_land_in_banks_at_night_in_liege() -> None:
    flights = plan_flights(DAY.start_ms, DAY.start_ms + DAY_MS)
    lgg = sorted((f.arrival_ms % DAY_MS) // HOUR_MS for f in flights if f.route.destination == "LGG")
    night = [h for h in lgg if h >= 21 or h < 3]
    assert len(night) >= 5 and len(lgg) == 7
    assert all(f.arrival_ms > f.departure_ms for f in flights)
    assert len({f.flight_id for f in flights}) == len(flights)


def test_realistic_rates(day: list[ScanEvent]) -> None:
    types = Counter(e.event_type for e in day)
    passes = types["INDUCTED"] + types["RECIRCULATED"]
    assert 0.001 <= types["NO_READ"] / passes <= 0.004  # read rate ~99.8 %
    assert types["MISSORTED"] / passes < 0.002
    weights = [e.weight_grams for e in day if e.event_type == "INDUCTED" and e.weight_grams]
    assert 350 <= mean(weights) <= 700  # e-commerce parcels average ~0.5 kg
    first_sort_at_destination = {
        (e.parcel_id, e.hub) for e in day if e.event_type == "SORTED" and e.chute and not e.chute.startswith("AIR-")
    }
    holds = types["CUSTOMS_HOLD"] / len(first_sort_at_destination)
    assert 0.01 <= holds <= 0.025
    per_trailer = Counter(e.trailer_id for e in day if e.event_type == "LOADED")
    assert max(per_trailer.values()) <= 3500
    per_uld = Counter(e.uld_id for e in day if e.event_type == "ULD_BUILDUP")
    assert max(per_uld.values()) <= 1500


def test_trucks_leave_at_their_cut_off_or_when_full(day: list[ScanEvent]) -> None:
    loads = Counter(e.trailer_id for e in day if e.event_type == "LOADED")
    departures = [e for e in day if e.event_type == "TRUCK_DEPARTED"]
    assert len(departures) > 100
    for truck in departures:
        minute = truck.event_time_ms % DAY_MS // MINUTE_MS
        at_cutoff = truck.event_time_ms % MINUTE_MS == 0 and minute in FACILITIES[truck.hub].cutoffs
        assert at_cutoff or loads[truck.trailer_id] >= 2500, truck


def test_customs_releases_hours_to_days_later() -> None:
    config = SimConfig(start_ms=FIXED_START_MS, seed=5, duration_s=4 * 86_400, scale=0.01)
    held: dict[str, int] = {}
    waits = []
    for row in scan_rows(config):
        if row[4] == "CUSTOMS_HOLD":
            held[row[5] or ""] = row[1]
        elif row[4] == "CUSTOMS_RELEASED" and row[5] in held:
            waits.append(row[1] - held[row[5] or ""])
    assert len(waits) > 50
    assert min(waits) >= 2 * HOUR_MS and max(waits) <= 5 * DAY_MS
    assert sum(1 for w in waits if w >= DAY_MS) > 0.2 * len(waits)


def test_sorters_never_exceed_their_rating_and_queue_when_flooded() -> None:
    # The night bank at full volume: breakdown crews feed LGG faster than its two sorters can sort,
    # and the big cities fill trailers before their cut-off.
    config = SimConfig(seed=3, start_ms=DAY.start_ms - 2 * HOUR_MS, duration_s=3 * 3600, scale=1.0)
    sorted_at: dict[str, list[int]] = defaultdict(list)
    broken_down: dict[str, int] = {}
    waits = []
    last_load: dict[str, int] = {}
    departed: dict[str, int] = {}
    for row in scan_rows(config):
        if row[2] != "LGG":
            continue
        if row[4] == "SORTED":
            sorted_at[row[12] or ""].append(row[1])
        elif row[4] == "ULD_BREAKDOWN":
            broken_down[row[5] or ""] = row[1]
        elif row[4] == "INDUCTED" and row[5] in broken_down:
            waits.append(row[1] - broken_down.pop(row[5] or ""))
        elif row[4] == "LOADED":
            last_load[row[14] or ""] = max(row[1], last_load.get(row[14] or "", 0))
        elif row[4] == "TRUCK_DEPARTED":
            departed[row[14] or ""] = row[1]
    rated = dict(FACILITIES["LGG"].sorters)
    assert set(sorted_at) == set(rated)
    for sorter, times in sorted_at.items():
        capacity = rated[sorter]
        per_hour = Counter(t // HOUR_MS for t in times)
        assert max(per_hour.values()) <= capacity
        assert all(later - earlier >= HOUR_MS for earlier, later in zip(times, times[capacity:], strict=False))
        assert max(per_hour.values()) >= 0.95 * capacity  # flooded: running at its rating
    assert max(waits) > 30 * MINUTE_MS  # parcels queue for the sorter
    full = [
        trailer
        for trailer, t in departed.items()
        if t % MINUTE_MS or t % DAY_MS // MINUTE_MS not in FACILITIES["LGG"].cutoffs
    ]
    assert full  # some left when full, before their cut-off
    assert all(departed[trailer] > last_load[trailer] for trailer in departed if trailer in last_load)


@pytest.mark.parametrize(
    ("moment", "window"),
    [
        ("00:00", ("2026-11-22 20:00", "2026-11-23 02:30")),
        ("02:30", ("2026-11-23 02:30", "2026-11-23 04:00")),
        ("21:00", ("2026-11-23 20:00", "2026-11-24 02:30")),
    ],
)
def test_cutoff_windows(moment: str, window: tuple[str, str]) -> None:
    from datetime import datetime

    from streams.events import datetime_to_ms

    def ms(text: str) -> int:
        return datetime_to_ms(datetime.fromisoformat(text + "+00:00"))

    lgg = tuple(sorted(FACILITIES["LGG"].cutoffs))
    assert cutoff_window(lgg, ms("2026-11-23 " + moment)) == (ms(window[0]), ms(window[1]))


def test_scale_multiplies_volume() -> None:
    small = sum(1 for _ in scan_rows(SimConfig(start_ms=FIXED_START_MS, seed=1, duration_s=4 * 3600, scale=0.02)))
    large = sum(1 for _ in scan_rows(SimConfig(start_ms=FIXED_START_MS, seed=1, duration_s=4 * 3600, scale=0.06)))
    assert 2.5 <= large / small <= 3.5
