"""Parcel flows with out-of-order and late events, and the truth a worker must reproduce.

Written independently of ``streams`` (hubs and flows from :mod:`tests.support.network`): the expected
windows, late counts and dwell are computed here from the generated events.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field

from tests.support.network import FLOW, HUBS, MINUTE_MS


@dataclass
class Flows:
    """Rows in the order they are published, and the truth about them."""

    rows: list[dict[str, object]] = field(default_factory=list)
    windows: Counter[tuple[str, str, int]] = field(default_factory=Counter)  # parcels
    grams: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    late: Counter[tuple[str, str]] = field(default_factory=Counter)
    dwell_seconds: dict[str, list[float]] = field(default_factory=dict)
    end_ms: int = 0

    def dwell_quantile(self, hub: str, q: float) -> float:
        values = sorted(self.dwell_seconds[hub])
        return values[max(0, math.ceil(q * len(values)) - 1)]  # nearest rank


def make_flows(
    seed: int,
    parcels: int,
    start_ms: int,
    duration_s: int = 7200,
    disorder: float = 0.05,
    disorder_max_s: int = 60,
    late: float = 0.01,
    late_delay_s: int = 1800,
) -> Flows:
    """Parcels breaking down, inducted, sorted and loaded at the five hubs over ``duration_s``."""
    rng = random.Random(seed)
    timed: list[tuple[int, int, dict[str, object]]] = []  # (emit time, tiebreak, row)
    flows = Flows()
    for i in range(parcels):
        hub = rng.choice(HUBS)
        parcel = f"P{seed}-{i:07d}"
        grams = rng.randint(40, 30_000)
        t = start_ms + rng.randrange(duration_s * 1000)
        sort_at = t + rng.randint(60, 900) * 1000
        load_at = sort_at + rng.choice([rng.randint(300, 3600), rng.randint(3600, 6 * 3600)]) * 1000
        life = [
            ("ULD_BREAKDOWN", t, {"flight_id": f"CK{hub}1", "uld_id": "PMC1", "read_point": "BD-1"}),
            ("INDUCTED", t + 30_000, {"sorter_id": f"{hub}-XB1", "read_point": "IND-1"}),
            (
                "SORTED",
                sort_at,
                {"sorter_id": f"{hub}-XB1", "read_point": "SCAN-1", "chute": "C1", "destination": "PAR"},
            ),
            (
                "LOADED",
                load_at,
                {"trailer_id": f"{hub}-PAR-{load_at // 3_600_000}", "destination": "PAR", "read_point": "DOCK-1"},
            ),
        ]
        flows.dwell_seconds.setdefault(hub, []).append((load_at - t) / 1000)
        for event_type, at, extra in life:
            row = {
                "event_time": at,
                "hub": hub,
                "event_type": event_type,
                "parcel_id": parcel,
                "weight_grams": grams,
                "event_id": f"{parcel}-{event_type}",
                **extra,
            }
            emit = at
            roll = rng.random()
            flow = FLOW.get(event_type)
            # Late only where traffic goes on long after: lateness is judged against newer events
            # of the same source partition, and the tail of a run has none.
            if flow is not None and roll < late and at < start_ms + (duration_s - 1200) * 1000:
                emit = at + late_delay_s * 1000
                flows.late[(hub, flow)] += 1
            else:
                if roll < late + disorder:
                    emit = at + rng.randint(1, disorder_max_s * 1000)
                if flow is not None:
                    window = at - at % MINUTE_MS
                    flows.windows[(hub, flow, window)] += 1
                    flows.grams[(hub, flow, window)] += grams
            timed.append((emit, len(timed), row))
    timed.sort(key=lambda item: (item[0], item[1]))
    flows.rows = [row for _emit, _n, row in timed]
    flows.end_ms = max(emit for emit, _n, _row in timed)
    return flows


def closing_rows(flows: Flows, after_s: int = 7200) -> list[dict[str, object]]:
    """One departure per hub far after the run: moves every hub's watermark past all windows."""
    at = flows.end_ms + after_s * 1000
    return [
        {
            "event_time": at,
            "hub": hub,
            "event_type": "LOADED",
            "parcel_id": f"CLOSE-{hub}",
            "weight_grams": 1,
            "trailer_id": f"{hub}-END",
            "destination": "PAR",
            "read_point": "DOCK-1",
            "event_id": f"close-{hub}",
        }
        for hub in HUBS
    ]
