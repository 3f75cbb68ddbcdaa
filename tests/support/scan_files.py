"""Test data for the broker tests: a deterministic mix of valid scans and bad lines."""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tests.support.network import FLOW, HUBS, SOURCE

BAD_LINES = [
    "this is not json",
    json.dumps(
        {
            "event_time": "2026-11-24T10:00:00Z",
            "hub": "CDG",
            "read_point": "X",
            "event_type": "SORTED",
            "parcel_id": "PX",
            "weight_grams": 100,
            "sorter_id": "S",
        }
    ),
    json.dumps(
        {
            "event_time": "2026-11-24T10:00:00Z",
            "hub": "LGG",
            "read_point": "X",
            "event_type": "SORTED",
            "parcel_id": "PX",
            "weight_grams": -3,
            "sorter_id": "S",
        }
    ),
    json.dumps(
        {
            "event_time": "2026-11-24T10:00:00",
            "hub": "LGG",
            "read_point": "X",
            "event_type": "SORTED",
            "parcel_id": "PX",
            "weight_grams": 100,
            "sorter_id": "S",
        }
    ),
    json.dumps(
        {
            "event_time": "2026-11-24T10:00:00Z",
            "hub": "LGG",
            "read_point": "X",
            "event_type": "LOADED",
            "weight_grams": 100,
            "trailer_id": "T",
            "destination": "PAR",
        }
    ),
]


@dataclass
class ScanFile:
    """Valid rows, the line numbers of bad lines, and what a worker must count."""

    rows: list[dict[str, object]] = field(default_factory=list)
    bad_lines: set[int] = field(default_factory=set)

    def events_by_hub_source_type(self) -> Counter[tuple[str, str, str]]:
        return Counter((str(r["hub"]), SOURCE[str(r["event_type"])], str(r["event_type"])) for r in self.rows)

    def parcels_by_hub_flow(self) -> Counter[tuple[str, str]]:
        return Counter((str(r["hub"]), FLOW[str(r["event_type"])]) for r in self.rows if r["event_type"] in FLOW)

    def grams_by_hub_flow(self) -> Counter[tuple[str, str]]:
        grams: Counter[tuple[str, str]] = Counter()
        for r in self.rows:
            if r["event_type"] in FLOW:
                grams[(str(r["hub"]), FLOW[str(r["event_type"])])] += int(r["weight_grams"])  # type: ignore[call-overload]
        return grams


def make_scan_file(seed: int, parcels: int = 150) -> tuple[str, ScanFile]:
    """JSON Lines text of ``parcels`` parcels' scans plus flights, trucks and bad lines."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    result = ScanFile()
    for hub in HUBS:
        result.rows.append(
            {
                "event_time": start.isoformat(),
                "hub": hub,
                "read_point": "STAND-1",
                "event_type": "FLIGHT_ARRIVED",
                "flight_id": f"CK{rng.randint(100, 999)}-{hub}",
            }
        )
    for i in range(parcels):
        hub = rng.choice(HUBS)
        weight = rng.randint(40, 30_000)
        at = start + timedelta(seconds=10 * i)
        base = {"hub": hub, "parcel_id": f"P{seed}-{i:05d}", "weight_grams": weight}
        steps: list[tuple[str, dict[str, object]]] = [
            ("ULD_BREAKDOWN", {"flight_id": f"CK251-{hub}", "uld_id": "PMC1", "read_point": "BD-1"}),
            ("INDUCTED", {"sorter_id": f"{hub}-XB1", "read_point": "IND-2"}),
        ]
        if rng.random() < 0.1:
            steps.append(("NO_READ", {"sorter_id": f"{hub}-XB1", "read_point": "SCAN-1"}))
        steps.append(
            ("SORTED", {"sorter_id": f"{hub}-XB1", "read_point": "SCAN-1", "chute": "C7", "destination": "PAR"})
        )
        steps.append(("LOADED", {"trailer_id": f"{hub}-PAR-1", "destination": "PAR", "read_point": "DOCK-3"}))
        for n, (event_type, extra) in enumerate(steps):
            row = {
                **base,
                **extra,
                "event_type": event_type,
                "event_time": (at + timedelta(minutes=5 * n)).isoformat().replace("+00:00", "Z"),
            }
            result.rows.append(row)
    result.rows.append(
        {
            "event_time": (start + timedelta(hours=2)).isoformat(),
            "hub": "LGG",
            "read_point": "GATE",
            "event_type": "TRUCK_DEPARTED",
            "trailer_id": "LGG-PAR-1",
            "destination": "PAR",
        }
    )
    lines = [json.dumps(r) for r in result.rows]
    for bad in BAD_LINES:  # spread the bad lines through the file
        position = rng.randint(0, len(lines))
        lines.insert(position, bad)
    result.bad_lines = {i + 1 for i, line in enumerate(lines) if line in BAD_LINES}
    return "\n".join(lines) + "\n", result
