"""The hub network and event types as the tests know them: written out here on purpose, not imported
from ``streams``, so generated scans and their truth check the product instead of repeating it.

``tests/unit/test_events.py`` checks that they agree with ``streams``.
"""

from __future__ import annotations

HUBS = ["LGG", "HGH", "KUL", "DXB", "SVO"]
FLOW = {"ULD_BREAKDOWN": "inbound", "SORTED": "sorted", "LOADED": "outbound", "ULD_BUILDUP": "outbound"}
"""The flow each counted event type counts in."""
OUTBOUND = {event_type for event_type, flow in FLOW.items() if flow == "outbound"}
"""The scans that end a parcel's visit of a hub."""
SOURCE = {
    "FLIGHT_ARRIVED": "flight",
    "FLIGHT_DEPARTED": "flight",
    "ULD_BREAKDOWN": "flight",
    "ULD_BUILDUP": "flight",
    "INDUCTED": "sorter",
    "NO_READ": "sorter",
    "SORTED": "sorter",
    "RECIRCULATED": "sorter",
    "MISSORTED": "sorter",
    "CUSTOMS_HOLD": "sorter",
    "CUSTOMS_RELEASED": "sorter",
    "LOADED": "truck",
    "TRUCK_ARRIVED": "truck",
    "TRUCK_DEPARTED": "truck",
}
"""The source (and so the topic) of every event type."""
MINUTE_MS = 60_000
