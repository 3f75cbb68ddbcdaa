"""The second stage: window partials of many first-stage partitions merged per hub."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from streams.aggregate.aggregator import HubAggregator, Limits
from streams.aggregate.observation import Observation
from streams.aggregate.partials import HubMerge, decode_partial, encode_partial, window_key
from streams.aggregate.windows import (
    HOUR_MS,
    MINUTE_MS,
    ClosedWindow,
    Outcome,
    Partial,
    WindowLimits,
    totals,
    window_start,
)
from streams.kafka.topics import Source
from tests.support.scans import HOUR_T0
from tests.support.stores import DictStore

LIMITS = WindowLimits(grace_ms=60_000)
FLOWS = {"ULD_BREAKDOWN": "inbound", "SORTED": "sorted", "LOADED": "outbound"}
SCANS = (("ULD_BREAKDOWN", Source.FLIGHT), ("SORTED", Source.SORTER), ("LOADED", Source.TRUCK))


def test_a_partial_round_trips_and_other_bytes_are_refused() -> None:
    partial = Partial(
        "LGG", 7, {"sorter:7": HOUR_T0, "truck:7": HOUR_T0 - 5}, [((MINUTE_MS, "sorted", HOUR_T0), 3, 1500)]
    )
    assert decode_partial(encode_partial(partial)) == partial
    ok = b'{"h":"LGG","p":1,"m":{},"w":[[60000,"sorted",%d,3,1500]]}' % HOUR_T0
    assert decode_partial(ok).windows == [((MINUTE_MS, "sorted", HOUR_T0), 3, 1500)]
    for garbage in (
        b"",
        b"\x00\x01",
        b'{"h": "LGG"}',
        b'{"h":"LGG","p":1,"m":{},"w":[[1,2]]}',
        ok.replace(b'"p":1', b'"p":70000'),  # no such partition
        ok.replace(b"60000", b"1000"),  # a window size the merge does not keep
        ok.replace(b",3,", b",-3,"),  # counts never go below zero
        ok.replace(b"1500", b"%d" % 2**70),  # nor beyond what a count can hold
    ):
        with pytest.raises((ValueError, KeyError, TypeError)):
            decode_partial(garbage)


def _scans(rng: random.Random, partitions: int, parcels: int) -> list[Observation]:
    """Parcel lives at two hubs over an hour, each parcel on one partition number of the three sources."""
    offsets: Counter[tuple[Source, int]] = Counter()
    out = []
    for i in range(parcels):
        p, hub, t = rng.randrange(partitions), rng.choice(["LGG", "KUL"]), HOUR_T0 + rng.randrange(HOUR_MS)
        for event_type, source, after in (
            ("ULD_BREAKDOWN", Source.FLIGHT, 0),
            ("SORTED", Source.SORTER, 90_000),
            ("LOADED", Source.TRUCK, 600_000),
        ):
            out.append(Observation(hub, event_type, t + after, 100 + i, source, p, 0, f"P{i}"))
    out.sort(key=lambda o: o.event_time_ms)  # each source partition in event-time order: nothing late
    for n, obs in enumerate(out):
        offsets[(obs.source, obs.partition)] += 1
        out[n] = obs._replace(offset=offsets[(obs.source, obs.partition)])
    return out


def _closing(partitions: int) -> list[Observation]:
    """A scan hours later on every source partition: every window ends before the watermark."""
    return [
        Observation(hub, event_type, HOUR_T0 + 3 * HOUR_MS, 1, source, p, 10**6, f"END-{hub}-{p}")
        for p in range(partitions)
        for hub in ("LGG", "KUL")
        for event_type, source in SCANS
    ]


def _truth(scans: list[Observation]) -> dict[tuple[str, str, int, int], tuple[int, int]]:
    counts: dict[tuple[str, str, int, int], tuple[int, int]] = {}
    for obs in scans:
        for size in (MINUTE_MS, HOUR_MS):
            key = (obs.hub, FLOWS[obs.event_type], size, window_start(obs.event_time_ms, size))
            parcels, grams = counts.get(key, (0, 0))
            counts[key] = (parcels + 1, grams + obs.grams)
    return counts


def _first_stage(scans: list[Observation], partitions: int, rng: random.Random) -> list[list[Partial]]:
    """Each partition's scans in random batches; the partials of each batch, per partition in order."""
    stores = [DictStore() for _ in range(partitions)]
    stages = [HubAggregator(Limits(LIMITS), p) for p in range(partitions)]
    sent: list[list[Partial]] = [[] for _ in range(partitions)]
    for p in range(partitions):
        mine = [o for o in scans if o.partition == p]
        while mine:
            size = rng.randint(1, 40)
            sent[p].extend(stages[p].process(stores[p], mine[:size], now=0.0).partials)
            mine = mine[size:]
    return sent


@pytest.mark.parametrize("seed", range(6))
def test_windows_merged_from_many_partitions_equal_the_truth_whatever_the_order(seed: int) -> None:
    rng = random.Random(seed)
    partitions = 4
    scans = _scans(rng, partitions, 150)
    sent = _first_stage(scans + _closing(partitions), partitions, rng)
    # The by-hub topic keeps each partition's partials in order but interleaves partitions
    # anyhow; a first stage that re-applies a batch after a crash sends partials again.
    queues = [list(p) for p in sent]
    arrived: list[Partial] = []
    while any(queues):
        queue = rng.choice([q for q in queues if q])
        arrived.append(queue.pop(0))
        if rng.random() < 0.2:
            arrived.append(rng.choice(arrived))  # an older partial again
    merge, store = HubMerge(LIMITS), DictStore()
    emitted: list[ClosedWindow] = []
    for start in range(0, len(arrived), 7):
        emitted += merge.apply(store, arrived[start : start + 7]).closed
    got = {k: v for k, v in totals(emitted).items() if k[3] < HOUR_T0 + 2 * HOUR_MS}
    assert got == _truth(scans)


def test_a_merge_read_again_from_its_store_goes_on_as_if_it_had_never_stopped() -> None:
    rng = random.Random(11)
    scans = _scans(rng, 3, 80)
    arrived = [p for partials in zip(*_first_stage(scans + _closing(3), 3, rng), strict=False) for p in partials]
    steady, steady_store = HubMerge(LIMITS), DictStore()
    restarted_store = DictStore()
    for start in range(0, len(arrived), 5):
        batch = arrived[start : start + 5]
        out = steady.apply(steady_store, batch)
        again = HubMerge(LIMITS).apply(restarted_store, batch)  # a new process each batch
        assert again.closed == out.closed and again.watermark_ms == out.watermark_ms
    assert restarted_store.data == steady_store.data


def test_a_lagging_partition_holds_the_hub_watermark_back() -> None:
    merge, store = HubMerge(LIMITS), DictStore()
    minute = (MINUTE_MS, "sorted", HOUR_T0)
    # Partition 1 is behind but not idle (within 5 minutes of the newest event): it holds the watermark.
    ahead = Partial("LGG", 0, {"sorter:0": HOUR_T0 + 4 * MINUTE_MS}, [(minute, 4, 2000)])
    behind = Partial("LGG", 1, {"sorter:1": HOUR_T0 + 30_000}, [(minute, 1, 500)])
    first = merge.apply(store, [ahead, behind])
    assert first.closed == [] and first.watermark_ms == {"LGG": HOUR_T0 + 30_000 - LIMITS.grace_ms}
    caught_up = Partial("LGG", 1, {"sorter:1": HOUR_T0 + 4 * MINUTE_MS}, [(minute, 2, 900)])
    (closed,) = [w for w in merge.apply(store, [caught_up]).closed if w.size_ms == MINUTE_MS]
    assert (closed.parcels, closed.grams, closed.revision) == (6, 2900, 1)  # 4 + 2: partition 1's newest count


def test_an_older_partial_changes_nothing_and_one_for_a_dropped_window_counts_as_expired() -> None:
    merge, store = HubMerge(LIMITS), DictStore()
    minute = (MINUTE_MS, "sorted", HOUR_T0)
    merge.apply(store, [Partial("KUL", 0, {"sorter:0": HOUR_T0}, [(minute, 5, 2500)])])
    merge.apply(store, [Partial("KUL", 0, {"sorter:0": HOUR_T0}, [(minute, 3, 1500)])])  # sent before the 5
    late = HOUR_T0 + 40 * HOUR_MS  # the horizon lets windows go; nothing holds them
    result = merge.apply(store, [Partial("KUL", 0, {"sorter:0": late}, [])])
    assert [(w.parcels, w.grams) for w in result.closed if w.size_ms == MINUTE_MS] == [(5, 2500)]
    assert list(store.keys(b"KUL/")) == [window_key("KUL", minute)]  # dropped: deleted in the next batch
    again = merge.apply(store, [Partial("KUL", 1, {"sorter:1": HOUR_T0}, [(minute, 2, 900)])])
    assert again.outcomes[("KUL", "sorted", Outcome.EXPIRED)] == 2 and again.closed == []
    assert list(store.keys(b"KUL/")) == []
    assert HubMerge(LIMITS).apply(store, []).closed == []  # read again: nothing of it left
