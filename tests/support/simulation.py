"""Helpers for the simulator tests: read its files back and check a run independently of its code."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import fastavro

from streams.events import InvalidEvent, ScanEvent, from_mapping, from_record
from streams.kafka.topics import Source
from tests.support.network import FLOW, HUBS, MINUTE_MS, OUTBOUND


@dataclass
class SourceFile:
    """One source's records as read back: valid events in file order, and how many records were bad."""

    events: list[ScanEvent] = field(default_factory=list)
    bad: int = 0


def read_jsonl_dir(directory: Path) -> dict[Source, SourceFile]:
    """Parse ``<dir>/<source>.jsonl`` the way ``parcelflow publish`` would: bad lines are counted."""
    files = {}
    for source in Source:
        result = SourceFile()
        for line in (directory / f"{source.value}.jsonl").read_text(encoding="ascii").splitlines():
            try:
                row = json.loads(line)
                if not isinstance(row, dict):
                    raise ValueError("not a JSON object")
                event = from_mapping(row)
            except (ValueError, TypeError, InvalidEvent):  # JSONDecodeError, "not a JSON object", a bad event
                result.bad += 1
                continue
            assert event.source is source, f"{event.event_type} in {source.value}.jsonl"
            result.events.append(event)
        files[source] = result
    return files


def read_avro_dir(directory: Path) -> dict[Source, SourceFile]:
    """Read ``<dir>/<source>.avro`` container files; records failing validation are counted as bad."""
    from streams.events import validate

    files = {}
    for source in Source:
        result = SourceFile()
        with (directory / f"{source.value}.avro").open("rb") as handle:
            for record in fastavro.reader(handle):
                event = from_record(record)  # type: ignore[arg-type]
                try:
                    validate(event, source)
                except InvalidEvent:
                    result.bad += 1
                    continue
                result.events.append(event)
        files[source] = result
    return files


def nearest_rank(values: list[int], q: str) -> int:
    """Value number ceil(q·n) of the sorted values, q exact (written apart from streams.simulate.truth)."""
    ordered = sorted(values)
    rank = math.ceil(Fraction(q) * len(ordered))
    return ordered[max(rank, 1) - 1]


def recompute_truth(files: dict[Source, SourceFile], late_ids: set[str]) -> dict[str, Any]:
    """The truth document's aggregates, from the files alone (plus which records were sent late)."""
    windows: dict[tuple[str, str, int], list[int]] = defaultdict(lambda: [0, 0])
    late: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    first: dict[tuple[str, str], int] = {}
    out: dict[tuple[str, str], int] = {}
    by_source = {source.value: len(files[source].events) for source in Source}
    for source in Source:
        for event in files[source].events:
            flow = FLOW.get(event.event_type)
            if flow is not None:
                assert event.weight_grams is not None
                if event.event_id in late_ids:
                    acc = late[(event.hub, flow)]
                else:
                    acc = windows[(event.hub, flow, event.event_time_ms // MINUTE_MS * MINUTE_MS)]
                acc[0] += 1
                acc[1] += event.weight_grams
            if event.parcel_id is not None:
                visit = (event.parcel_id, event.hub)
                first[visit] = min(first.get(visit, event.event_time_ms), event.event_time_ms)
                if event.event_type in OUTBOUND:
                    out[visit] = event.event_time_ms
    dwell: dict[str, list[int]] = {hub: [] for hub in HUBS}
    backlog = dict.fromkeys(HUBS, 0)
    for visit, begin in first.items():
        if visit in out:
            dwell[visit[1]].append(out[visit] - begin)
        else:
            backlog[visit[1]] += 1
    return {
        "by_source": by_source,
        "windows": [
            {"hub": h, "flow": f, "start_ms": s, "parcels": acc[0], "grams": acc[1]}
            for (h, f, s), acc in sorted(windows.items())
        ],
        "late": [{"hub": h, "flow": f, "parcels": acc[0], "grams": acc[1]} for (h, f), acc in sorted(late.items())],
        "dwell": {
            hub: {
                "parcels": len(values),
                "quantiles": {
                    q: (nearest_rank(values, q) / 1000 if values else None) for q in ("0.5", "0.9", "0.95", "0.99")
                },
            }
            for hub, values in dwell.items()
        },
        "backlog_end": backlog,
    }


# Which scan may follow which in a parcel's life (see streams.simulate.model).
NEXT: dict[str, set[str]] = {
    "INDUCTED": {"SORTED", "NO_READ", "RECIRCULATED", "MISSORTED"},
    "RECIRCULATED": {"SORTED", "NO_READ", "RECIRCULATED", "MISSORTED"},
    "NO_READ": {"RECIRCULATED"},
    "MISSORTED": {"INDUCTED"},
    "SORTED": {"ULD_BUILDUP", "LOADED", "CUSTOMS_HOLD"},
    "CUSTOMS_HOLD": {"CUSTOMS_RELEASED"},
    "CUSTOMS_RELEASED": {"INDUCTED"},
    "ULD_BUILDUP": {"ULD_BREAKDOWN"},
    "ULD_BREAKDOWN": {"INDUCTED"},
    "LOADED": set(),
}


def lifecycle_violations(events: Iterable[ScanEvent]) -> list[str]:
    """Every way the events break physics: parcel scan order, hubs, flights and trailers (empty when fine)."""
    problems: list[str] = []
    by_parcel: dict[str, list[ScanEvent]] = defaultdict(list)
    flight_departed: dict[str, ScanEvent] = {}
    flight_arrived: dict[str, ScanEvent] = {}
    truck_departed: dict[str, ScanEvent] = {}
    truck_arrived: dict[str, ScanEvent] = {}
    for event in events:
        if event.parcel_id is not None:
            by_parcel[event.parcel_id].append(event)
        elif event.event_type == "FLIGHT_DEPARTED":
            flight_departed[event.flight_id or ""] = event
        elif event.event_type == "FLIGHT_ARRIVED":
            flight_arrived[event.flight_id or ""] = event
        elif event.event_type == "TRUCK_DEPARTED":
            truck_departed[event.trailer_id or ""] = event
        elif event.event_type == "TRUCK_ARRIVED":
            truck_arrived[event.trailer_id or ""] = event
    for trailer, arrived in truck_arrived.items():
        departed = truck_departed.get(trailer)
        if departed is not None and not (
            departed.event_time_ms < arrived.event_time_ms and departed.hub == arrived.hub
        ):
            problems.append(f"trailer {trailer} arrived before it left or at another hub")
    for flight, arrived in flight_arrived.items():
        departed = flight_departed.get(flight)
        if departed is not None and departed.event_time_ms >= arrived.event_time_ms:
            problems.append(f"flight {flight} arrived before it departed")
    for parcel, scans in by_parcel.items():
        scans.sort(key=lambda e: (e.event_time_ms, e.event_id))  # ids count up in creation order
        for before, after in zip(scans, scans[1:], strict=False):
            if after.event_type not in NEXT[before.event_type]:
                problems.append(f"{parcel}: {before.event_type} then {after.event_type}")
            crosses = before.event_type == "ULD_BUILDUP"
            if crosses != (before.hub != after.hub):
                problems.append(f"{parcel}: changed hub {before.hub}→{after.hub} at {after.event_type}")
            if crosses and before.flight_id != after.flight_id:
                problems.append(f"{parcel}: built into {before.flight_id}, broken down from {after.flight_id}")
        for scan in scans:
            if scan.event_type == "ULD_BUILDUP":
                flight_left = flight_departed.get(scan.flight_id or "")
                if flight_left is not None and flight_left.event_time_ms <= scan.event_time_ms:
                    problems.append(f"{parcel}: built into {scan.flight_id} after it departed")
            elif scan.event_type == "ULD_BREAKDOWN":
                landed = flight_arrived.get(scan.flight_id or "")
                # (a flight that landed before the simulated span has no FLIGHT_ARRIVED)
                if landed is not None and (landed.event_time_ms >= scan.event_time_ms or landed.hub != scan.hub):
                    problems.append(f"{parcel}: broken down from {scan.flight_id} before it arrived at {scan.hub}")
            elif scan.event_type == "LOADED":
                truck_left = truck_departed.get(scan.trailer_id or "")
                if truck_left is not None and not (
                    truck_left.event_time_ms > scan.event_time_ms and truck_left.destination == scan.destination
                ):
                    problems.append(f"{parcel}: loaded on {scan.trailer_id} after it left, or for another city")
    return problems
