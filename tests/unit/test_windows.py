from __future__ import annotations

import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.aggregate.windows import (
    HOUR_MS,
    MINUTE_MS,
    ClosedWindow,
    HubWindows,
    Outcome,
    WindowLimits,
    totals,
    window_start,
)
from tests.support.stored_forms import whole_state_v2

T0 = 1_795_000_000_000 - 1_795_000_000_000 % HOUR_MS  # an hour boundary
GRACE = 120_000
LIMITS = WindowLimits(grace_ms=GRACE, retention_ms=3_600_000, idle_ms=300_000, horizon_ms=24 * HOUR_MS)


def close(w: HubWindows) -> list[ClosedWindow]:
    """What the merge does after applying partials: emit what the watermark passed, drop what is old."""
    closed = w.emit(LIMITS)
    w.drop_old(LIMITS)
    return closed


def apply(
    w: HubWindows, t: int, offset: int, source: str = "sorter:0", flow: str = "sorted", grams: int = 500
) -> Outcome:
    return w.apply(flow, t, grams, source, offset, LIMITS)


@pytest.mark.parametrize(
    ("t", "size", "start"),
    [
        (T0, MINUTE_MS, T0),
        (T0 + 59_999, MINUTE_MS, T0),
        (T0 + 60_000, MINUTE_MS, T0 + 60_000),
        (T0 + 3_599_999, HOUR_MS, T0),
        (T0 - 1, HOUR_MS, T0 - HOUR_MS),
    ],
)
def test_window_start(t: int, size: int, start: int) -> None:
    assert window_start(t, size) == start


def test_windows_close_on_event_time_progress_only() -> None:
    w = HubWindows("LGG")
    assert apply(w, T0 + 1_000, 1) is Outcome.APPLIED
    assert apply(w, T0 + 2_000, 2, grams=700) is Outcome.APPLIED
    assert close(w) == []  # watermark T0 + 2 s − 120 s: nothing ended
    apply(w, T0 + 60_000 + GRACE, 3)  # watermark = T0 + 60 s: first minute closes
    (closed,) = close(w)
    assert (closed.start_ms, closed.size_ms, closed.parcels, closed.grams, closed.revision) == (
        T0,
        MINUTE_MS,
        2,
        1200,
        1,
    )
    assert closed.key == f"LGG|sorted|60|{T0}"
    assert close(w) == []  # emitted once, unchanged since


def test_event_within_grace_reemits_its_window_and_late_one_is_counted() -> None:
    w = HubWindows("LGG")
    apply(w, T0 + 1_000, 1)
    apply(w, T0 + 60_000 + GRACE, 2)  # sorter:0 is now at T0 + 180 s; the first minute closes
    assert [c.revision for c in close(w)] == [1]
    # Another partition lags behind: its event is on time *for its partition*, so it counts, and
    # the window is emitted again once that partition has passed it too.
    assert apply(w, T0 + 59_000, 1, source="sorter:1") is Outcome.APPLIED
    assert close(w) == []  # sorter:1 now holds the watermark back
    apply(w, T0 + 60_000 + GRACE, 2, source="sorter:1")
    (again,) = close(w)
    assert (again.start_ms, again.parcels, again.revision) == (T0, 2, 2)
    # 150 s behind its own partition's newest event: late, counted, windows untouched.
    assert apply(w, T0 + 30_000, 3) is Outcome.LATE
    assert w.late == {"sorted": 1}
    assert close(w) == []


def test_a_partition_hours_ahead_neither_blocks_nor_expires_the_others() -> None:
    """Reading a backlog, one topic can run hours of event time ahead of another."""
    w = HubWindows("LGG")
    apply(w, T0 + 1_000, 1, source="sorter:0")
    for offset, minutes in enumerate(range(0, 300, 5), start=1):  # truck:0 races 5 hours ahead
        apply(w, T0 + minutes * MINUTE_MS, offset, source="truck:0", flow="outbound")
    emitted = close(w)  # sorter:0 is idle: it does not hold the watermark back...
    assert any(c.flow == "outbound" and c.start_ms > T0 + 4 * HOUR_MS for c in emitted)
    assert apply(w, T0 + 2_000, 2, source="sorter:0") is Outcome.APPLIED  # ...and is not expired
    for offset, minutes in enumerate(range(1, 300, 5), start=3):  # sorter:0 catches up
        apply(w, T0 + minutes * MINUTE_MS, offset, source="sorter:0")
    latest = totals(emitted + close(w))
    assert latest[("LGG", "sorted", MINUTE_MS, T0)] == (2, 1000)


def test_duplicates_are_skipped_by_partition_offset() -> None:
    w = HubWindows("LGG")
    assert apply(w, T0, 5) is Outcome.APPLIED
    assert apply(w, T0, 5) is Outcome.DUPLICATE
    assert apply(w, T0 + 1, 4) is Outcome.DUPLICATE
    assert apply(w, T0, 5, source="flight:0", flow="inbound") is Outcome.APPLIED  # offsets are per partition


def test_windows_are_dropped_once_every_partition_passed_them() -> None:
    w = HubWindows("LGG")
    apply(w, T0, 1)
    apply(w, T0, 1, source="sorter:1")
    for source in ("sorter:0", "sorter:1"):
        apply(w, T0 + 2 * HOUR_MS + GRACE, 2, source=source)
    closed = close(w)
    assert {(c.size_ms, c.start_ms) for c in closed} == {(MINUTE_MS, T0), (HOUR_MS, T0)}
    assert (MINUTE_MS, "sorted", T0) not in w.windows  # minute dropped after retention
    assert (HOUR_MS, "sorted", T0) in w.windows  # hours are kept an hour longer
    assert apply(w, T0 + 5, 1, source="sorter:2") is Outcome.EXPIRED
    assert w.late == {"sorted": 1}


def test_the_hard_horizon_bounds_state_when_a_partition_falls_silent() -> None:
    w = HubWindows("LGG")
    apply(w, T0, 1, source="flight:0")  # never heard of again
    for hour in range(1, 30):
        apply(w, T0 + hour * HOUR_MS, hour)
        close(w)
    assert min(start for _size, _flow, start in w.windows) >= T0 + 3 * HOUR_MS


def test_hour_windows_sum_their_minutes() -> None:
    w = HubWindows("KUL")
    rng = random.Random(1)
    for offset in range(1, 400):
        apply(w, T0 + rng.randrange(HOUR_MS), offset, grams=rng.randint(1, 9000))
    apply(w, T0 + 2 * HOUR_MS, 400)
    latest = totals(close(w))
    minutes = [(p, g) for (_h, _f, size, _s), (p, g) in latest.items() if size == MINUTE_MS]
    assert latest[("KUL", "sorted", HOUR_MS, T0)] == (sum(p for p, _ in minutes), sum(g for _, g in minutes))


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10 * MINUTE_MS), st.integers(1, 30_000)), max_size=60))
def test_state_survives_serialisation_mid_stream(events: list[tuple[int, int, int]]) -> None:
    straight, restored = HubWindows("DXB"), HubWindows("DXB")
    out_a, out_b = [], []
    for offset, (partition, t, grams) in enumerate(events):
        source = f"truck:{partition}"
        straight.apply("outbound", T0 + t, grams, source, offset, LIMITS)
        restored = HubWindows.from_bytes(whole_state_v2(restored))
        restored.apply("outbound", T0 + t, grams, source, offset, LIMITS)
        out_a += close(straight)
        out_b += close(restored)
    assert out_a == out_b
    assert whole_state_v2(straight) == whole_state_v2(restored)


def test_state_written_by_the_previous_version_reads_the_same() -> None:
    w = HubWindows("HGH")
    for offset, t in enumerate([0, 30_000, 70_000, 3 * MINUTE_MS, 2 * HOUR_MS]):
        apply(w, T0 + t, offset, source=f"sorter:{offset % 2}")
        close(w)
    first_form = json.dumps(  # what the first stage wrote before the windows were packed
        {
            "hub": w.hub,
            "max": w.progress.newest_ms,
            "w": [[s, f, st, *c] for (s, f, st), c in w.windows.items()],
            "p": {source: [mark.newest_ms, mark.offset] for source, mark in w.progress.partitions.items()},
            "late": w.late,
            "dropped": w.dropped_until_ms,
        }
    ).encode()
    old, new = HubWindows.from_bytes(first_form), HubWindows.from_bytes(whole_state_v2(w))
    assert old == new == w
    apply(old, T0 + 3 * HOUR_MS, 9)
    apply(new, T0 + 3 * HOUR_MS, 9)
    assert close(old) == close(new) != []  # the derived indexes are rebuilt alike


def test_the_current_value_of_a_window_is_its_largest_count_whatever_the_order_of_its_records() -> None:
    """A frozen worker's stale revision arriving after its successor's does not take the window back."""
    successor = [ClosedWindow("KUL", "inbound", T0, MINUTE_MS, 42, 709_044, 1)]
    stale = [ClosedWindow("KUL", "inbound", T0, MINUTE_MS, 26, 432_723, 1)]  # same revision, delivered later
    stale_later_revision = [ClosedWindow("KUL", "inbound", T0, MINUTE_MS, 30, 500_000, 2)]
    for records in (successor + stale, stale + successor, successor + stale_later_revision):
        assert totals(records) == {("KUL", "inbound", MINUTE_MS, T0): (42, 709_044)}
    growing = [ClosedWindow("KUL", "sorted", T0, MINUTE_MS, n, n * 100, r) for r, n in enumerate((3, 5, 9), 1)]
    assert totals(reversed(growing)) == {("KUL", "sorted", MINUTE_MS, T0): (9, 900)}
