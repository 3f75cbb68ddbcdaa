"""A scan counts once: re-delivered offsets and retransmitted event ids, also across a crash."""

from __future__ import annotations

from streams.aggregate.aggregator import BatchResult, Limits
from streams.aggregate.observation import Observation, decode, encode, event_key
from streams.aggregate.visits import Counted, counted_scans, decode_visit, encode_visit
from streams.aggregate.windows import MINUTE_MS, WindowLimits, totals
from streams.kafka.topics import Source
from tests.support.scans import HOUR_T0
from tests.support.stages import TwoStages
from tests.support.stores import DictStore

LIMITS = Limits(WindowLimits(grace_ms=60_000))


def scans(parcels: int, offset0: int = 0) -> list[Observation]:
    """Breakdown then sort of each parcel at LGG, one event id each, from partition 0."""
    out = []
    for i in range(parcels):
        for j, (etype, source) in enumerate((("ULD_BREAKDOWN", Source.FLIGHT), ("SORTED", Source.SORTER))):
            t = HOUR_T0 + i * 1000 + j * 60_000
            key = event_key(f"e-{i}-{etype}")
            out.append(Observation("LGG", etype, t, 500, source, 0, offset0 + i, f"P{i}", key))
    return out


def closing(offset: int) -> list[Observation]:
    """A much later scan on every partition used, so every window of the run closes."""
    late = HOUR_T0 + 3 * 3_600_000
    return [
        Observation("LGG", "ULD_BREAKDOWN", late, 1, Source.FLIGHT, 0, offset, "END-F", event_key("end-f")),
        Observation("LGG", "SORTED", late, 1, Source.SORTER, 0, offset, "END-S", event_key("end-s")),
    ]


def minute_totals(results: list[BatchResult]) -> dict[tuple[str, str, int], tuple[int, int]]:
    windows = [w for r in results for w in r.closed]
    return {
        (h, f, s): v for (h, f, size, s), v in totals(windows).items() if size == MINUTE_MS and s < HOUR_T0 + 3_000_000
    }


def test_retransmitted_scans_count_once_and_are_counted_by_kind() -> None:
    once, agg = DictStore(), TwoStages(LIMITS)
    expected = minute_totals([agg.process(once, scans(40) + closing(1000), now=0.0)])
    store, agg = DictStore(), TwoStages(LIMITS)
    original = scans(40)
    retransmitted = [o._replace(offset=o.offset + 500) for o in original[::3]]  # same ids, new offsets
    results = [agg.process(store, original[:50], now=0.0), agg.process(store, original[50:] + retransmitted, now=0.0)]
    results.append(agg.process(store, closing(1000), now=0.0))
    assert minute_totals(results) == expected
    assert sum(r.repeated["LGG"] for r in results) == len(retransmitted)
    redelivered = agg.process(store, original[:10], now=0.0)  # the same offsets again: a re-delivery
    assert redelivered.repeated["LGG"] == 0 and sum(redelivered.outcomes.values()) == 10


def test_a_crash_between_the_visit_and_the_windows_write_loses_no_count() -> None:
    """The visit remembers the scan, the windows that counted it were never stored: it is no repeat."""
    once = DictStore()
    expected = minute_totals([TwoStages(LIMITS).process(once, scans(20) + closing(1000), now=0.0)])
    store, agg = DictStore(), TwoStages(LIMITS)
    batch = scans(20)
    agg.process(store, batch[:10], now=0.0)
    before = dict(store.data)
    agg.process(store, batch[10:], now=0.0)
    store.data[b"LGG"] = before[b"LGG"]  # the hub value of the second batch was lost in the crash
    recovered = agg.restarted()  # a new worker: indexes rebuilt from the stores
    results = [recovered.process(store, batch[10:], now=0.0), recovered.process(store, closing(1000), now=0.0)]
    assert results[0].repeated["LGG"] == 0
    assert minute_totals(results) == expected  # the first batch's windows close here too, with the second's


def test_visit_values_keep_their_counted_scans_and_old_values_still_read() -> None:
    counted = (Counted(2**64 - 1, Source.TRUCK, 65_535, 2**62), Counted(1, Source.FLIGHT, 0, 0))
    data = encode_visit((HOUR_T0, None, HOUR_T0 - 5), counted)
    assert decode_visit(data) == (HOUR_T0, None, HOUR_T0 - 5) and counted_scans(data) == counted
    old = encode_visit((HOUR_T0, HOUR_T0 + 9, None))  # as the previous version wrote it
    assert len(old) == 24 and decode_visit(old) == (HOUR_T0, HOUR_T0 + 9, None) and counted_scans(old) == ()


def test_event_keys_are_stable_and_travel_with_the_observation() -> None:
    assert event_key("e-1") == event_key("e-1") != event_key("e-2")
    obs = Observation("LGG", "SORTED", HOUR_T0, 480, Source.SORTER, 5, 9, "P-1", event_key("e-1"))
    assert decode(encode(obs)) == obs
