"""Forms of stored state that only earlier versions wrote, written here so the tests can show they stay readable."""

from __future__ import annotations

import json
import struct

from streams.aggregate.windows import HubWindows


def whole_state_v2(windows: HubWindows) -> bytes:
    """A hub's whole state in one value, as the first stage stored it before heads (version 2).

    A version byte, the small part as JSON, then the windows packed with ``struct`` (size, flow
    index, start, parcels, grams, revision, dirty).
    """
    flows = sorted({flow for _size, flow, _start in windows.windows})
    index = {flow: i for i, flow in enumerate(flows)}
    head = {
        "hub": windows.hub,
        "max": windows.progress.newest_ms,
        "p": windows.progress.to_json(),
        "late": windows.late,
        "dropped": windows.dropped_until_ms,
        "f": flows,
    }
    text = json.dumps(head, separators=(",", ":")).encode()
    packed = b"".join(struct.pack(">qBqqqIB", s, index[f], st, *c) for (s, f, st), c in windows.windows.items())
    return b"\x02" + struct.pack(">I", len(text)) + text + packed
