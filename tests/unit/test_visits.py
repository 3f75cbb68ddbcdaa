from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.aggregate.visits import Change, Visit, apply_scan, decode_visit, encode_visit, expired

T = 1_795_000_000_000


@pytest.mark.parametrize(
    ("visit", "t", "outbound", "change"),
    [
        (None, T, False, Change((T, None, None), opened=True, new_visit=True)),
        (None, T, True, Change((T, T, None), dwell_ms=0, new_visit=True)),
        ((T, None, None), T + 5, False, Change(None)),
        ((T, None, None), T - 5, False, Change((T - 5, None, None))),
        ((T, None, None), T + 90, True, Change((T, T + 90, None), departed=True, dwell_ms=90)),
        ((T, None, None), T - 10, True, Change((T, None, T - 10))),  # it left before: an older visit
        ((T, T + 90, None), T + 90, True, Change(None)),  # the same departure again
        ((T, T + 90, None), T + 10, False, Change(None)),  # a scan from before the departure
        ((T, T + 90, None), T - 10, False, Change((T - 10, T + 90, None))),  # ...that was even earlier
        ((T, T + 90, None), T + 500, False, Change((T + 500, None, T + 90), opened=True, new_visit=True)),  # came back
        ((T + 500, None, T + 90), T + 20, False, Change(None)),  # late scan of the earlier visit
    ],
)
def test_transitions(visit: Visit | None, t: int, outbound: bool, change: Change) -> None:
    assert apply_scan(visit, t, outbound) == change


def _replay(scans: list[tuple[int, bool]]) -> tuple[Visit | None, int, int]:
    visit: Visit | None = None
    backlog = departures = 0
    for t, outbound in scans:
        change = apply_scan(visit, t, outbound)
        visit = change.visit or visit
        backlog += change.opened - change.departed
        departures += change.dwell_ms is not None
    return visit, backlog, departures


@st.composite
def visit_histories(draw: st.DrawFn) -> list[tuple[int, bool]]:
    """Physically possible scans of one parcel at one hub, in a plausible processing order.

    Each visit is scans within [first, departure] (the last visit may still be open); later
    visits start after the previous departure. Within a visit, scans may be processed in any
    order (cross-topic delays); visits are processed in time order.
    """
    processed: list[tuple[int, bool]] = []
    t = draw(st.integers(0, 50))
    for number in range(draw(st.integers(1, 3))):
        times = sorted(draw(st.lists(st.integers(t, t + 50), min_size=1, max_size=5)))
        departs = number < 2 and draw(st.booleans())
        scans = [(x, False) for x in times[:-1]] + [(times[-1], departs)]
        processed += draw(st.permutations(scans))
        if not departs:
            break
        t = times[-1] + 1
    return processed


@given(visit_histories(), st.integers(0, 20))
def test_replaying_a_suffix_changes_nothing(scans: list[tuple[int, bool]], cut: int) -> None:
    """What crash recovery does: re-apply, in order, events that were already applied."""
    cut = min(cut, len(scans))
    once = _replay(scans)
    twice = _replay(scans + scans[cut:])
    assert twice == once


@given(visit_histories())
def test_backlog_is_one_exactly_while_open(scans: list[tuple[int, bool]]) -> None:
    visit, backlog, _ = _replay(scans)
    assert backlog == (1 if visit is not None and visit[1] is None else 0)


def test_encoding_and_expiry() -> None:
    for visit in [(T, None, None), (T, T + 1, None), (T, None, T - 9)]:
        assert decode_visit(encode_visit(visit)) == visit
    assert expired((T, T + 1, None), watermark_ms=T + 1 + 11, departed_ttl_ms=10, open_ttl_ms=10**9)
    assert not expired((T, T + 1, None), watermark_ms=T + 1 + 10, departed_ttl_ms=10, open_ttl_ms=10**9)
    assert expired((T, None, None), watermark_ms=T + 101, departed_ttl_ms=10, open_ttl_ms=100)
