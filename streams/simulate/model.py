"""The hub network as a discrete-event simulation: seeded, no wall clock, no I/O; events in event-time order.

Every decision is an *action* on one heap ordered by (simulated time, sequence number). An action
at time ``t`` only creates events at ``t`` or later, so events are collected in one-second buckets
and a bucket is sorted and yielded once the next action lies beyond it. The sequence numbers and a
single seeded ``random.Random`` make the whole run a function of the config.

A parcel's life: demand at an origin hub (HGH, KUL) → ``INDUCTED`` → ``SORTED`` to the air chute →
``ULD_BUILDUP`` into a ULD of the first flight whose build-up cut-off it makes → ``FLIGHT_DEPARTED``
→ ``FLIGHT_ARRIVED`` → ``ULD_BREAKDOWN`` at a breakdown station → ``INDUCTED`` → ``SORTED`` (after
``NO_READ``/``RECIRCULATED``/``MISSORTED`` detours; sometimes ``CUSTOMS_HOLD`` → ``CUSTOMS_RELEASED``
→ sorted again) → ``LOADED`` on the open trailer of its city → ``TRUCK_DEPARTED`` at the cut-off (or
when full) → ``TRUCK_ARRIVED``. Sorters take one parcel per slot of ``3600 s / rated capacity``, so a
flooded sorter queues parcels and its output never exceeds the rating in any hour.
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
from collections.abc import Callable, Iterator
from hashlib import sha256
from itertools import accumulate
from operator import itemgetter
from typing import Any

from streams.events import ScanEvent
from streams.network import CITY_BY_CODE
from streams.simulate import schedule as plan
from streams.simulate.config import SimConfig
from streams.simulate.rows import Row, to_event
from streams.simulate.schedule import DAY_MS, HOUR_MS, MINUTE_MS

BUCKET_MS = 1000
SECOND_MS = 1000

NO_READ_RATE = 0.002
"""Label not read on a pass (read rate ~99.8 %): the parcel goes round the loop again."""
RECIRCULATE_RATE = 0.004
"""Chute full or tray fault: the parcel goes round again without a no-read."""
MISSORT_RATE = 0.0005
"""Dropped into a wrong chute: found there, carried back and inducted again."""
MAX_EXTRA_PASSES = 4
"""After this many detours a parcel is hand-sorted (its next pass always sorts)."""

DEMAND_OPENS_MS = 10 * HOUR_MS
"""Parcels for a flight reach the origin sorter between 10 h and 3 h before departure."""
DEMAND_CLOSES_MS = 3 * HOUR_MS
BUILDUP_CUTOFF_MS = 100 * MINUTE_MS
"""ULDs are closed 100 minutes before departure; later parcels take the next flight."""
WARM_START_MS = 6 * HOUR_MS
"""Flights that landed this long before the start are still being worked on: simulated, not emitted."""
FLIGHT_CAPACITY = 1.3
"""A flight takes at most 1.3 × its route's mean load; the rest rolls to the next flight."""
TOW_MS = (25 * MINUTE_MS, 45 * MINUTE_MS)
"""From on-blocks until the first ULDs reach the breakdown stations."""
ULD_SETUP_MS = (2 * MINUTE_MS, 4 * MINUTE_MS)
CONVEYOR_MS = 45 * SECOND_MS
"""Breakdown station to sorter induct."""
SORTER_TRANSIT_MS = 40 * SECOND_MS
"""Induct to the scanner/chute decision of a cross-belt sorter."""
TO_BUILDUP_MS = (10 * MINUTE_MS, 40 * MINUTE_MS)
TO_DOCK_MS = (5 * MINUTE_MS, 20 * MINUTE_MS)
TO_CUSTOMS_MS = (3 * MINUTE_MS, 12 * MINUTE_MS)
RELEASED_TO_SORTER_MS = (10 * MINUTE_MS, 40 * MINUTE_MS)
MISSORT_RETURN_MS = (10 * MINUTE_MS, 30 * MINUTE_MS)
CUSTOMS_QUICK_SHARE = 0.4
"""Share of holds released within hours (2–24 h); the rest take 1–5 days."""
DOORS_MS = 10 * MINUTE_MS
"""A full trailer leaves this long after its last parcel (or at its cut-off, if sooner)."""
TRAILER_CAPACITY = (2500, 3500)
ULD_TYPES = (("PMC", 1100, 1500), ("PMC", 1100, 1500), ("PMC", 1100, 1500), ("AKE", 350, 450))
"""Main-deck pallets and lower-deck containers, filled in this rotation."""
WEIGHT_MEDIAN_G = 300
WEIGHT_SIGMA = 1.0
"""Lognormal weights: median 300 g, mean ~0.5 kg, like e-commerce parcels; clipped to 20 g–30 kg."""
COUNTRY_OF_ORIGIN = {"HGH": "CN", "KUL": "MY"}

_TIME = itemgetter(1)
Handler = Callable[[Any, int], None]


class _Sorter:
    """A cross-belt sorter: one parcel per slot; slots are handed out in the order parcels queue."""

    __slots__ = ("sorter_id", "spacing_ms", "free_ms", "induct_points", "scan_point", "turn")

    def __init__(self, sorter_id: str, rated_per_hour: int) -> None:
        self.sorter_id = sorter_id
        self.spacing_ms = math.ceil(HOUR_MS / rated_per_hour)
        self.free_ms = 0
        self.induct_points = tuple(f"{sorter_id}-I{k}" for k in range(1, 9))
        self.scan_point = f"{sorter_id}-S1"
        self.turn = 0


class _Trailer:
    __slots__ = ("trailer_id", "count", "capacity", "cutoff_ms", "last_load_ms", "departed")

    def __init__(self, trailer_id: str, capacity: int, cutoff_ms: int) -> None:
        self.trailer_id = trailer_id
        self.count = 0
        self.capacity = capacity
        self.cutoff_ms = cutoff_ms
        self.last_load_ms = 0
        self.departed = False


class _Lane:
    """Trucks from one hub to one city: chute, dock door, cut-offs and the trailers being loaded."""

    __slots__ = (
        "hub", "city", "chute", "dock", "gate", "depot", "cutoffs", "drive_ms", "open", "window", "day", "seq",
    )  # fmt: skip

    def __init__(self, hub: str, city: str, index: int, cutoffs: tuple[int, ...]) -> None:
        self.hub = hub
        self.city = city
        self.chute = f"C{index:03d}"
        self.dock = f"DOCK-{index:03d}"
        self.gate = f"GATE-{index % 4 + 1}"
        self.depot = f"{city}-DEPOT"
        self.cutoffs = cutoffs
        self.drive_ms = plan.drive_ms(CITY_BY_CODE[city].road_km)
        self.open: dict[int, _Trailer] = {}
        """Trailers being loaded, by cut-off (a parcel reaching the dock after one takes the next)."""
        self.window = (0, 0)
        self.day = ""
        self.seq = 0


class _Hub:
    __slots__ = ("code", "sorters", "stations", "breakdown_ms", "customs_rate", "customs_id", "lanes", "cities", "cum")

    def __init__(self, facility: plan.Facility, scale: float) -> None:
        self.code = facility.hub
        self.sorters = [_Sorter(sorter_id, rated) for sorter_id, rated in facility.sorters]
        # Breakdown crews grow with the volume; sorters are fixed hardware and flood instead.
        stations = max(1, math.ceil(facility.breakdown_stations * scale)) if facility.breakdown_stations else 0
        self.stations = [0] * stations
        self.breakdown_ms = round(facility.breakdown_seconds_per_parcel * SECOND_MS)
        self.customs_rate = facility.customs_hold_rate
        self.customs_id = f"{facility.hub}-CUSTOMS"
        codes, shares = plan.city_weights(facility.hub)
        daily = plan.daily_inbound(facility.hub) * scale
        self.lanes = {
            code: _Lane(facility.hub, code, i + 1, plan.lane_cutoffs(facility, daily * share))
            for i, (code, share) in enumerate(zip(codes, shares, strict=True))
        }
        self.cities = codes
        self.cum = list(accumulate(shares))


class _Flight:
    """A flight being loaded at its origin: its ULDs and the parcels in them."""

    __slots__ = (
        "plan", "origin", "destination", "cutoff_ms", "capacity", "count", "preloaded", "ulds", "uld_ids", "uld_cap",
    )  # fmt: skip

    def __init__(self, planned: plan.PlannedFlight, capacity: int) -> None:
        self.plan = planned
        self.origin = planned.route.origin
        self.destination = planned.route.destination
        self.cutoff_ms = planned.departure_ms - BUILDUP_CUTOFF_MS
        self.capacity = capacity
        self.count = 0
        self.preloaded = 0
        """Parcels built up before the start: created only when the flight lands."""
        self.ulds: list[list[Parcel]] = []
        self.uld_ids: list[str] = []
        self.uld_cap = 0


Parcel = tuple[str, int, str, str]
"""(parcel id, grams, destination city, destination hub)."""


class _RouteState:
    __slots__ = ("flights", "index")

    def __init__(self) -> None:
        self.flights: list[_Flight] = []
        self.index = 0


class _Demand:
    """Parcels still to reach an origin hub's sorter: one merged, sorted stream of all its flights' demand.

    Each item is ``ready_ms * 8 + destination index``, so plain int sorting orders them by time.
    """

    __slots__ = ("hub", "pending", "position", "generation", "scheduled_ms")

    def __init__(self, hub: _Hub) -> None:
        self.hub = hub
        self.pending: list[int] = []
        self.position = 0
        self.generation = 0
        self.scheduled_ms: int | None = None


_DESTINATIONS = tuple(plan.FACILITIES)
"""Destination hubs by index in a demand item."""


class NetworkModel:
    """One simulation run of the whole network; iterate :meth:`rows` once."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.start_ms = config.start_ms
        self.end_ms = config.end_ms
        digest = sha256(f"parcelflow-simulation:{config.seed}".encode()).hexdigest()
        self._id_prefix = f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-8{digest[17:20]}-"
        self._parcel_prefix = f"LP{digest[20:24].upper()}"
        self._events = 0
        self._parcels = 0
        self._ulds = 0
        self._seq = 0
        self._heap: list[tuple[int, int, Handler, Any]] = []
        self._buckets: dict[int, list[Row]] = {}
        self._next_bucket = self.start_ms // BUCKET_MS
        self.hubs = {code: _Hub(facility, config.scale) for code, facility in plan.FACILITIES.items()}
        self.demand = {code: _Demand(hub) for code, hub in self.hubs.items()}
        self.routes: dict[tuple[str, str], _RouteState] = {}
        self._plan()

    # ---------------------------------------------------------------- the engine

    def rows(self) -> Iterator[Row]:
        """Every scan event of the run as a row, in event-time order (ties in creation order)."""
        heap = self._heap
        end = self.end_ms
        pop = heapq.heappop
        while heap:
            t = heap[0][0]
            if t >= end:
                break
            if t // BUCKET_MS > self._next_bucket:
                yield from self._flush(t // BUCKET_MS)
            _, _, handler, arg = pop(heap)
            handler(arg, t)
        yield from self._flush(end // BUCKET_MS + 1)

    def _flush(self, upto: int) -> Iterator[Row]:
        """Yield the buckets before bucket ``upto``: no action can add to them any more."""
        buckets = self._buckets
        for k in range(self._next_bucket, upto):
            bucket = buckets.pop(k, None)
            if bucket:
                bucket.sort(key=_TIME)
                yield from bucket
        self._next_bucket = upto

    def _at(self, t: int, handler: Handler, arg: Any) -> None:
        """Schedule ``handler(arg, t)``; actions at or after the end never run."""
        if t < self.end_ms:
            self._seq += 1
            heapq.heappush(self._heap, (t, self._seq, handler, arg))

    def _emit(
        self,
        t: int,
        hub: str,
        read_point: str,
        event_type: str,
        parcel_id: str | None,
        grams: int | None,
        flight_id: str | None,
        uld_id: str | None,
        air_waybill: str | None,
        origin: str | None,
        destination: str | None,
        sorter_id: str | None,
        chute: str | None,
        trailer_id: str | None,
    ) -> None:
        """Create an event (dropped outside the simulated span); only ever at or after the current action."""
        if t >= self.end_ms or t < self.start_ms:
            return
        self._events += 1
        row: Row = (
            f"{self._id_prefix}{self._events:012x}",
            t,
            hub,
            read_point,
            event_type,
            parcel_id,
            grams,
            flight_id,
            uld_id,
            air_waybill,
            origin,
            destination,
            sorter_id,
            chute,
            trailer_id,
            1,
        )
        key = t // BUCKET_MS
        bucket = self._buckets.get(key)
        if bucket is None:
            self._buckets[key] = [row]
        else:
            bucket.append(row)

    def _uniform(self, bounds: tuple[int, int]) -> int:
        low, high = bounds
        return low + int(self.rng.random() * (high - low))

    # ---------------------------------------------------------------- the plan

    def _plan(self) -> None:
        """Flights from a day before the start (some in the air, some just landed) to two days after the end."""
        scale = self.config.scale
        for planned in plan.plan_flights(self.start_ms - DAY_MS, self.end_ms + 2 * DAY_MS):
            route = planned.route
            mean = route.parcels_per_flight * scale
            flight = _Flight(planned, max(1, math.ceil(mean * FLIGHT_CAPACITY)))
            state = self.routes.setdefault((route.origin, route.destination), _RouteState())
            state.flights.append(flight)
            if planned.arrival_ms <= self.start_ms - WARM_START_MS:
                continue
            demand = max(0, round(mean * self.rng.gauss(1.0, 0.08)))
            if planned.departure_ms <= self.start_ms:  # built up before the start
                flight.preloaded = flight.count = demand
                self._at(planned.arrival_ms, self._flight_arrives, flight)
                continue
            opens = max(self.start_ms, planned.departure_ms - DEMAND_OPENS_MS)
            self._at(opens, self._demand_opens, (flight, demand))
            self._at(planned.departure_ms, self._flight_departs, flight)

    def _new_parcel(self, origin: str, destination: str) -> Parcel:
        self._parcels += 1
        hub = self.hubs[destination]
        rng = self.rng
        city = hub.cities[bisect.bisect_left(hub.cum, rng.random() * hub.cum[-1])]
        grams = int(math.exp(_LOG_MEDIAN + WEIGHT_SIGMA * rng.gauss()))
        grams = 20 if grams < 20 else 30_000 if grams > 30_000 else grams
        return (f"{self._parcel_prefix}{self._parcels:09d}{COUNTRY_OF_ORIGIN[origin]}", grams, city, destination)

    # ---------------------------------------------------------------- origin hub

    def _demand_opens(self, arg: tuple[_Flight, int], t: int) -> None:
        """Parcels for a flight start reaching the origin sorter: merge them into the hub's demand stream."""
        flight, count = arg
        departure = flight.plan.departure_ms
        low, span = departure - DEMAND_OPENS_MS, DEMAND_OPENS_MS - DEMAND_CLOSES_MS
        rnd = self.rng.random
        destination = _DESTINATIONS.index(flight.destination)
        items = sorted((low + int(rnd() * span)) * 8 + destination for _ in range(count))
        first = bisect.bisect_left(items, t * 8)
        flight.preloaded += first  # reached the sorter before the start: already built up
        flight.count += first
        demand = self.demand[flight.origin]
        demand.pending = sorted(demand.pending[demand.position :] + items[first:])
        demand.position = 0
        if demand.pending:
            head = demand.pending[0] >> 3
            if demand.scheduled_ms is None or head < demand.scheduled_ms:
                demand.generation += 1
                demand.scheduled_ms = head
                self._at(head, self._origin_parcels, (demand, demand.generation))

    def _origin_parcels(self, arg: tuple[_Demand, int], t: int) -> None:
        """Parcels reach the origin sorter one after another until another action is due first."""
        demand, generation = arg
        if generation != demand.generation:
            return  # superseded by an earlier head after a merge
        pending, hub, heap = demand.pending, demand.hub, self._heap
        origin = hub.code
        position = demand.position
        while True:
            parcel = self._new_parcel(origin, _DESTINATIONS[pending[position] & 7])
            self._sort_pass(hub, parcel, t, 0, False, False)
            position += 1
            if position == len(pending):
                demand.position, demand.scheduled_ms = position, None
                return
            t = pending[position] >> 3
            if t >= self.end_ms:
                return
            if heap and heap[0][0] < t:
                demand.position, demand.scheduled_ms = position, t
                self._at(t, self._origin_parcels, arg)
                return

    def _put_in_uld(self, flight: _Flight, parcel: Parcel) -> str:
        """Add a parcel to the flight's open ULD (opening a new one when full); returns the ULD id."""
        if not flight.ulds or len(flight.ulds[-1]) >= flight.uld_cap:
            kind, low, high = ULD_TYPES[len(flight.ulds) % len(ULD_TYPES)]
            self._ulds += 1
            flight.uld_cap = self.rng.randint(low, high)
            flight.ulds.append([])
            flight.uld_ids.append(f"{kind}{self._ulds % 100_000:05d}{flight.plan.route.carrier}")
        flight.ulds[-1].append(parcel)
        return flight.uld_ids[-1]

    def _build_up(self, origin: str, parcel: Parcel, now: int, ready: int) -> None:
        """Book a sorted parcel into a ULD of the first flight whose build-up cut-off it makes at ``ready``."""
        route = self.routes[(origin, parcel[3])]
        flights = route.flights
        while flights[route.index].cutoff_ms <= now:
            route.index += 1
        index = route.index
        last = len(flights) - 1
        while index < last and (flights[index].cutoff_ms <= ready or flights[index].count >= flights[index].capacity):
            index += 1  # missed or full: the next flight (the last planned one takes any overflow)
        flight = flights[index]
        flight.count += 1
        uld_id = self._put_in_uld(flight, parcel)
        planned = flight.plan
        self._emit(
            ready, origin, f"BU-{len(flight.ulds) % 12 + 1:02d}", "ULD_BUILDUP", parcel[0], parcel[1],
            planned.flight_id, uld_id, planned.air_waybill, None, flight.destination, None, None, None,
        )  # fmt: skip

    def _flight_departs(self, flight: _Flight, t: int) -> None:
        planned = flight.plan
        self._emit(
            t, flight.origin, planned.stand, "FLIGHT_DEPARTED", None, None, planned.flight_id, None, None, None,
            flight.destination, None, None, None,
        )  # fmt: skip
        self._at(planned.arrival_ms, self._flight_arrives, flight)

    # ---------------------------------------------------------------- destination hub

    def _flight_arrives(self, flight: _Flight, t: int) -> None:
        """On-blocks: ULDs go to the breakdown station that frees up first, one parcel scan at a time."""
        planned = flight.plan
        hub = self.hubs[flight.destination]
        self._emit(
            t, hub.code, planned.stand, "FLIGHT_ARRIVED", None, None, planned.flight_id, None, None, flight.origin,
            None, None, None, None,
        )  # fmt: skip
        for _ in range(flight.preloaded):
            self._put_in_uld(flight, self._new_parcel(flight.origin, flight.destination))
        stations = hub.stations
        per_parcel = hub.breakdown_ms
        for uld, uld_id in zip(flight.ulds, flight.uld_ids, strict=True):
            station = min(range(len(stations)), key=stations.__getitem__)
            begin = max(stations[station], t + self._uniform(TOW_MS)) + self._uniform(ULD_SETUP_MS)
            stations[station] = begin + len(uld) * per_parcel + ULD_SETUP_MS[0]
            stream = [uld, 0, begin, flight, uld_id, f"BD-{station + 1:02d}", hub]
            self._at(begin, self._breakdown, stream)
        flight.ulds = []

    def _breakdown(self, stream: list[Any], t: int) -> None:
        """Scan the next parcel out of a ULD; each takes one slot of the station's pace."""
        uld: list[Parcel] = stream[0]
        index: int = stream[1]
        begin: int = stream[2]
        flight: _Flight = stream[3]
        uld_id: str = stream[4]
        station: str = stream[5]
        hub: _Hub = stream[6]
        planned = flight.plan
        per_parcel = hub.breakdown_ms
        rnd = self.rng.random
        heap = self._heap
        while True:
            parcel = uld[index]
            self._emit(
                t, hub.code, station, "ULD_BREAKDOWN", parcel[0], parcel[1], planned.flight_id, uld_id,
                planned.air_waybill, flight.origin, None, None, None, None,
            )  # fmt: skip
            self._sort_pass(hub, parcel, t + CONVEYOR_MS, 0, False, False)
            index += 1
            if index == len(uld):
                return
            t = begin + index * per_parcel + int(rnd() * per_parcel * 0.8)
            if t >= self.end_ms:
                return
            if heap and heap[0][0] < t:
                stream[1] = index
                self._at(t, self._breakdown, stream)
                return

    # ---------------------------------------------------------------- sorters

    def _sort_pass(self, hub: _Hub, parcel: Parcel, ready: int, passes: int, recirculated: bool, cleared: bool) -> None:
        """One pass over a sorter: queue for a slot, then sorted onwards, or a detour that comes back here."""
        sorters = hub.sorters
        sorter = sorters[0]
        for other in sorters:  # join the shortest queue
            if other.free_ms < sorter.free_ms:
                sorter = other
        slot = ready if ready > sorter.free_ms else sorter.free_ms
        sorter.free_ms = slot + sorter.spacing_ms
        code = hub.code
        pid, grams, city, destination_hub = parcel
        sorter_id = sorter.sorter_id
        sorter.turn += 1
        self._emit(
            slot, code, sorter.induct_points[sorter.turn & 7], "RECIRCULATED" if recirculated else "INDUCTED", pid,
            grams, None, None, None, None, None if recirculated else city, sorter_id, None, None,
        )  # fmt: skip
        decided = slot + SORTER_TRANSIT_MS
        rnd = self.rng.random
        u = rnd() if passes < MAX_EXTRA_PASSES else 1.0
        if u < _DETOUR:
            if u < NO_READ_RATE:
                self._emit(
                    decided, code, sorter.scan_point, "NO_READ", pid, grams, None, None, None, None, None, sorter_id,
                    None, None,
                )  # fmt: skip
                self._at(decided, self._recirculate, (hub, parcel, passes + 1, cleared))
            elif u < NO_READ_RATE + RECIRCULATE_RATE:
                self._at(decided, self._recirculate, (hub, parcel, passes + 1, cleared))
            else:
                self._emit(
                    decided, code, sorter.scan_point, "MISSORTED", pid, grams, None, None, None, None, city,
                    sorter_id, f"C{self.rng.randint(1, 99):03d}", None,
                )  # fmt: skip
                back = decided + self._uniform(MISSORT_RETURN_MS)
                self._at(back, self._induct, (hub, parcel, passes + 1, cleared))
            return
        if destination_hub != code:  # origin hub: to the air chute, then into a ULD
            self._emit(
                decided, code, sorter.scan_point, "SORTED", pid, grams, None, None, None, None, city, sorter_id,
                _AIR_CHUTE[destination_hub], None,
            )  # fmt: skip
            self._build_up(code, parcel, decided, decided + self._uniform(TO_BUILDUP_MS))
            return
        if not cleared and rnd() < hub.customs_rate:
            self._emit(
                decided, code, sorter.scan_point, "SORTED", pid, grams, None, None, None, None, city, sorter_id,
                "CUSTOMS", None,
            )  # fmt: skip
            hold = decided + self._uniform(TO_CUSTOMS_MS)
            self._emit(
                hold, code, "CUSTOMS-IN", "CUSTOMS_HOLD", pid, grams, None, None, None, None, city, hub.customs_id,
                None, None,
            )  # fmt: skip
            if rnd() < CUSTOMS_QUICK_SHARE:
                release = hold + self._uniform((2 * HOUR_MS, 24 * HOUR_MS))
            else:
                release = hold + self._uniform((DAY_MS, 5 * DAY_MS))
            self._at(release, self._customs_release, (hub, parcel))
            return
        lane = hub.lanes[city]
        self._emit(
            decided, code, sorter.scan_point, "SORTED", pid, grams, None, None, None, None, city, sorter_id,
            lane.chute, None,
        )  # fmt: skip
        self._load(lane, parcel, decided + self._uniform(TO_DOCK_MS))

    def _recirculate(self, arg: tuple[_Hub, Parcel, int, bool], t: int) -> None:
        hub, parcel, passes, cleared = arg
        self._sort_pass(hub, parcel, t, passes, True, cleared)

    def _induct(self, arg: tuple[_Hub, Parcel, int, bool], t: int) -> None:
        hub, parcel, passes, cleared = arg
        self._sort_pass(hub, parcel, t, passes, False, cleared)

    def _customs_release(self, arg: tuple[_Hub, Parcel], t: int) -> None:
        hub, parcel = arg
        self._emit(
            t, hub.code, "CUSTOMS-OUT", "CUSTOMS_RELEASED", parcel[0], parcel[1], None, None, None, None, parcel[2],
            hub.customs_id, None, None,
        )  # fmt: skip
        self._at(t + self._uniform(RELEASED_TO_SORTER_MS), self._induct, (hub, parcel, 0, True))

    # ---------------------------------------------------------------- trucks

    def _load(self, lane: _Lane, parcel: Parcel, at: int) -> None:
        """Load a parcel reaching the dock at ``at`` on the trailer of the next cut-off; a full one leaves."""
        low, cutoff = lane.window
        if not low <= at < cutoff:
            lane.window = low, cutoff = plan.cutoff_window(lane.cutoffs, at)
        trailer = lane.open.get(cutoff)
        if trailer is None:
            day = plan.day_of(cutoff)
            if day != lane.day:
                lane.day, lane.seq = day, 0
            lane.seq += 1
            trailer = _Trailer(
                f"{lane.hub}-{lane.city}-{day}-{lane.seq:02d}", self.rng.randint(*TRAILER_CAPACITY), cutoff
            )
            lane.open[cutoff] = trailer
            self._at(cutoff, self._cutoff, (lane, trailer))
        self._emit(
            at, lane.hub, lane.dock, "LOADED", parcel[0], parcel[1], None, None, None, None, lane.city, None, None,
            trailer.trailer_id,
        )  # fmt: skip
        trailer.count += 1
        if at > trailer.last_load_ms:
            trailer.last_load_ms = at
        if trailer.count >= trailer.capacity:
            self._truck_departs(lane, trailer, min(trailer.last_load_ms + DOORS_MS, cutoff))

    def _cutoff(self, arg: tuple[_Lane, _Trailer], t: int) -> None:
        lane, trailer = arg
        if not trailer.departed:
            self._truck_departs(lane, trailer, t)

    def _truck_departs(self, lane: _Lane, trailer: _Trailer, t: int) -> None:
        trailer.departed = True
        if lane.open.get(trailer.cutoff_ms) is trailer:
            del lane.open[trailer.cutoff_ms]
        self._emit(
            t, lane.hub, lane.gate, "TRUCK_DEPARTED", None, None, None, None, None, None, lane.city, None, None,
            trailer.trailer_id,
        )  # fmt: skip
        arrival = t + round(lane.drive_ms * (0.95 + 0.15 * self.rng.random()))
        self._emit(
            arrival, lane.hub, lane.depot, "TRUCK_ARRIVED", None, None, None, None, None, None, lane.city, None,
            None, trailer.trailer_id,
        )  # fmt: skip


_DETOUR = NO_READ_RATE + RECIRCULATE_RATE + MISSORT_RATE
_AIR_CHUTE = {code: f"AIR-{code}" for code in plan.FACILITIES}
_LOG_MEDIAN = math.log(WEIGHT_MEDIAN_G)


def scan_rows(config: SimConfig) -> Iterator[Row]:
    """The scan events of a run as rows, in event-time order: the simulator's pure core."""
    return NetworkModel(config).rows()


def scan_events(config: SimConfig) -> Iterator[ScanEvent]:
    """The scan events of a run, in event-time order (the Python API; slower than rows)."""
    return map(to_event, scan_rows(config))
