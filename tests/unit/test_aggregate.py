from __future__ import annotations

import random
from collections import Counter

import pytest

from streams.aggregate.aggregator import (
    HubAggregator,
    Limits,
    StagedStore,
    applied_key,
    hubs_in,
    in_sequence,
    process_isolating_failures,
)
from streams.aggregate.observation import Observation, decode, decode_batch, encode, encode_batch
from streams.aggregate.windows import HOUR_MS, MINUTE_MS, Outcome, WindowLimits, totals
from streams.kafka.topics import Source
from tests.support.scans import HOUR_T0, parcel_life
from tests.support.stages import TwoStages
from tests.support.stores import DictStore

CLOSERS = (("ULD_BREAKDOWN", Source.FLIGHT), ("SORTED", Source.SORTER), ("LOADED", Source.TRUCK))
"""A scan of each source, to move every source partition on."""


def test_observation_round_trip() -> None:
    obs = Observation("LGG", "SORTED", HOUR_T0, 480, Source.SORTER, 5, 123456789, "P-ü-1")
    assert decode(encode(obs)) == obs
    many = [obs, Observation("KUL", "LOADED", HOUR_T0 + 1, 1, Source.TRUCK, 0, 0, "Q"), obs]
    assert decode_batch(encode_batch(many)) == many
    assert decode_batch(b"") == []
    assert obs.flow == "sorted" and not obs.outbound
    assert Observation("LGG", "ULD_BUILDUP", HOUR_T0, 1, Source.FLIGHT, 0, 0, "P").outbound


def test_windows_dwell_and_backlog_from_parcel_lives() -> None:
    store, stages = DictStore(), TwoStages(Limits(WindowLimits(grace_ms=60_000)))
    agg = stages.first
    lives = [parcel_life(f"P{i}", "LGG", HOUR_T0 + i * 1000, i) for i in range(1, 50)]
    events = sorted((o for life in lives for o in life), key=lambda o: o.event_time_ms)
    first = stages.process(store, events[:60], now=0.0)
    assert first.backlog["LGG"] == len({o.parcel_id for o in events[:60]}) - sum(o.outbound for o in events[:60])
    result = stages.process(
        store, events[60:] + [Observation("LGG", "SORTED", HOUR_T0 + 3 * HOUR_MS, 1, Source.SORTER, 1, 1, "X")], now=0.0
    )
    assert result.backlog["LGG"] == 1  # only parcel X is still in the hub
    closed = totals(first.closed + result.closed)
    inbound_minutes = {k: v for k, v in closed.items() if k[1] == "inbound" and k[2] == MINUTE_MS}
    assert sum(p for p, _ in inbound_minutes.values()) == 49
    assert first.dwell_seconds == result.dwell_seconds == []  # flight:0 and truck:0 may still deliver
    later = agg.tick(lambda hub: store, now=60.0)  # ...until they fall silent
    assert sorted(seconds for _hub, seconds in later.dwell_seconds) == [780.0] * 49
    assert agg.tick(lambda hub: store, now=120.0).dwell_seconds == []  # observed once


def test_dwell_waits_for_a_lagging_partition_that_still_delivers() -> None:
    """The truck topic read hours ahead: a departure is final only once the flight scans are in."""
    store, agg = DictStore(), HubAggregator()
    life = parcel_life("P1", "LGG", HOUR_T0, 1)
    ahead = [
        Observation("LGG", "LOADED", HOUR_T0 + h * HOUR_MS, 1, Source.TRUCK, 0, 10 + h, f"Q{h}") for h in range(1, 4)
    ]
    other = Observation("LGG", "ULD_BREAKDOWN", HOUR_T0 - 60_000, 1, Source.FLIGHT, 0, 0, "OTHER")
    early = agg.process(store, [other, life[3], *ahead], now=0.0)  # departure first, truck:0 far ahead
    assert early.dwell_seconds == []  # flight:0 is behind but delivering: wait for it
    agg.process(store, [life[0]], now=1.0)  # the flight partition delivers the breakdown
    agg.process(store, [life[1], life[2]], now=2.0)
    done = agg.tick(lambda hub: store, now=30.0)
    assert ("LGG", 780.0) in done.dwell_seconds


def test_the_last_departures_are_final_once_every_source_partition_fell_silent() -> None:
    """No later scan moves this partition's event time past them: silence alone makes them final."""
    store, agg = DictStore(), HubAggregator()
    agg.process(store, parcel_life("P1", "HGH", HOUR_T0, 1), now=0.0)
    assert agg.tick(lambda hub: store, now=5.0).dwell_seconds == []  # its partitions may still deliver
    assert agg.tick(lambda hub: store, now=30.0).dwell_seconds == [("HGH", 780.0)]


def test_a_batch_replayed_after_a_crash_changes_nothing() -> None:
    """Recovery: the table holds the visits of a half-written batch but not the hub value."""
    rng = random.Random(4)
    events = sorted(
        (o for i in range(1, 200) for o in parcel_life(f"P{i}", "KUL", HOUR_T0 + rng.randrange(HOUR_MS), i)),
        key=lambda o: o.event_time_ms,
    )
    batches = [events[i : i + 37] for i in range(0, len(events), 37)]

    clean_store, clean = DictStore(), TwoStages()
    clean_out = [clean.process(clean_store, b, now=0.0) for b in batches]

    store, crashed = DictStore(), TwoStages()
    out = [crashed.process(store, b, now=0.0) for b in batches[:5]]
    before = dict(store.data)
    partial = DictStore()
    partial.data = dict(before)
    # The crashed process got this far: its partials reached the merge (they are sent first)...
    out.append(crashed.merged(HubAggregator().process(partial, batches[5], now=0.0)))
    half = [w for w in partial.writes if w[0] != b"KUL"][: len(partial.writes) // 2]
    for key, value in half:  # ...and only half of its changelog writes reached Kafka
        if value is None:
            store.data.pop(key, None)
        else:
            store.data[key] = value
    restarted = crashed.restarted()  # a new process: indexes rebuilt from the stores
    out += [restarted.process(store, b, now=0.0) for b in batches[5:]]

    assert store.data == clean_store.data
    assert out[-1].backlog == clean_out[-1].backlog
    assert totals(w for r in out for w in r.closed) == totals(w for r in clean_out for w in r.closed)


def _in_offset_order(events: list[Observation]) -> list[Observation]:
    """``events`` with offsets counted per source partition in their order, as a consumer reads them."""
    seen: Counter[tuple[Source, int]] = Counter()
    out = []
    for obs in events:
        seen[(obs.source, obs.partition)] += 1
        out.append(obs._replace(offset=seen[(obs.source, obs.partition)]))
    return out


@pytest.mark.parametrize("reached", [0.5, 0.9, 1.0], ids=["half", "most", "all-but-the-head"])
def test_windows_stored_without_their_head_are_read_as_before_and_the_batch_counts_once(reached: float) -> None:
    """A crash after some of a batch's writes (visits, then windows) reached the store, not the head."""
    rng = random.Random(7)
    lives = (o for i in range(300) for o in parcel_life(f"P{i}", "KUL", HOUR_T0 + rng.randrange(HOUR_MS), 0))
    events = _in_offset_order(sorted(lives, key=lambda o: o.event_time_ms))
    events += [Observation("KUL", t, HOUR_T0 + 5 * HOUR_MS, 1, s, 0, 10**6, "END") for t, s in CLOSERS]
    batches = [events[i : i + 50] for i in range(0, len(events), 50)]
    clean_store, clean = DictStore(), TwoStages()
    expected = totals(w for b in batches for w in clean.process(clean_store, b, now=0.0).closed)

    store, crashed = DictStore(), TwoStages()
    out = [crashed.process(store, b, now=0.0) for b in batches[:8]]
    attempt = DictStore()
    attempt.data = dict(store.data)
    out.append(crashed.merged(HubAggregator().process(attempt, batches[8], now=0.0)))  # partials sent first
    written = [w for w in attempt.writes if w[0] != b"KUL"]
    assert any(b"|" in key for key, _ in written)  # the batch changed windows
    for key, value in written[: int(len(written) * reached)]:
        if value is None:
            store.data.pop(key, None)
        else:
            store.data[key] = value
    restarted = crashed.restarted()
    out += [restarted.process(store, b, now=0.0) for b in batches[8:]]
    assert totals(w for r in out for w in r.closed) == expected
    assert store.data == clean_store.data


def test_duplicates_are_counted_not_applied() -> None:
    store, agg = DictStore(), HubAggregator()
    life = parcel_life("P1", "DXB", HOUR_T0, 1)
    agg.process(store, life, now=0.0)
    again = agg.process(store, life, now=0.0)
    assert again.outcomes[("DXB", "inbound", Outcome.DUPLICATE)] == 1
    assert again.backlog["DXB"] == 0
    assert again.scans == Counter({"DXB": len(life)})  # taken, whatever became of them


def test_old_departures_and_endless_visits_expire_once_every_partition_passed() -> None:
    store = DictStore()
    agg = HubAggregator(Limits(departed_ttl_ms=HOUR_MS, open_ttl_ms=5 * HOUR_MS))
    stuck = Observation("SVO", "INDUCTED", HOUR_T0, 1, Source.SORTER, 3, 1, "STUCK")
    agg.process(store, parcel_life("GONE", "SVO", HOUR_T0, 1) + [stuck], now=0.0)
    assert b"SVO/GONE" in store.data and b"SVO/STUCK" in store.data

    def everyone_at(t: int, offset: int) -> list[Observation]:
        return [
            Observation("SVO", event_type, t, 1, source, 0, offset, f"N{offset}")
            for event_type, source in [
                ("ULD_BREAKDOWN", Source.FLIGHT),
                ("SORTED", Source.SORTER),
                ("LOADED", Source.TRUCK),
            ]
        ]

    only_sorter = agg.process(
        store, [Observation("SVO", "SORTED", HOUR_T0 + 3 * HOUR_MS, 1, Source.SORTER, 0, 9, "N")], now=0.0
    )
    assert b"SVO/GONE" in store.data  # the flight and truck partitions have not moved on yet
    assert only_sorter.backlog["SVO"] == 2
    agg.process(store, everyone_at(HOUR_T0 + 3 * HOUR_MS, 10), now=0.0)
    assert b"SVO/GONE" not in store.data and b"SVO/STUCK" in store.data
    latest = agg.process(store, everyone_at(HOUR_T0 + 6 * HOUR_MS, 11), now=0.0)
    assert b"SVO/STUCK" not in store.data
    assert latest.expired_visits["SVO"] == 1 and latest.backlog["SVO"] == 1  # N is still in the hub


class PoisonedAggregator(HubAggregator):
    """An aggregator with a bug that one parcel triggers, after the hub's earlier scans were applied."""

    def _process_hub(self, store, hub, batch, now, result):  # type: ignore[no-untyped-def]
        poisoned = [i for i, obs in enumerate(batch) if obs.parcel_id.startswith("POISON")]
        if poisoned:
            super()._process_hub(store, hub, batch[: poisoned[0]], now, result)  # half the batch written
            raise OverflowError("a bug that one scan triggers")
        super()._process_hub(store, hub, batch, now, result)


def _two_hub_records() -> list[tuple[int, list[Observation]]]:
    """By-hub records of LGG (applied first) and KUL; hours of scans, so the batch closes windows."""
    lgg = [o for i in range(1, 40) for o in parcel_life(f"L{i}", "LGG", HOUR_T0 + i * 60_000, i)]
    kul = [o for i in range(1, 40) for o in parcel_life(f"K{i}", "KUL", HOUR_T0 + i * 60_000, 100 + i)]
    late = [
        Observation(hub, "LOADED", HOUR_T0 + 3 * HOUR_MS, 1, Source.TRUCK, 1, 1, f"END-{hub}") for hub in ("LGG", "KUL")
    ]
    return [(0, sorted(lgg, key=lambda o: o.event_time_ms)), (1, sorted(kul, key=lambda o: o.event_time_ms) + late)]


def test_staged_writes_reach_the_store_only_on_commit_once_per_key_in_last_write_order() -> None:
    base = DictStore()
    base.put(b"a", b"1")
    base.put(b"gone", b"x")
    base.writes.clear()
    staged = StagedStore(base)
    staged.put(b"HUB", b"old")
    staged.put(b"b", b"2")
    staged.put(b"HUB", b"new")
    staged.delete(b"gone")
    assert staged.get(b"HUB") == b"new" and staged.get(b"a") == b"1" and staged.get(b"gone") is None
    assert sorted(staged.keys()) == [b"HUB", b"a", b"b"]
    assert base.writes == [] and base.data == {b"a": b"1", b"gone": b"x"}
    staged.commit()
    assert base.writes == [(b"b", b"2"), (b"HUB", b"new"), (b"gone", None)]
    assert base.data == {b"a": b"1", b"b": b"2", b"HUB": b"new"}


def test_a_scan_that_breaks_the_aggregation_is_left_out_and_the_rest_applied_exactly_once() -> None:
    records = _two_hub_records()
    clean_store = DictStore()
    clean, no_failures = process_isolating_failures(HubAggregator(), clean_store, records, now=0.0)
    clean = TwoStages().merged(clean)
    assert no_failures == [] and clean.closed

    poison = Observation("KUL", "SORTED", HOUR_T0 + 20 * 60_000, 7, Source.SORTER, 2, 5, "POISON-1")
    kul = records[1][1]
    poisoned = [records[0], (1, [*kul[:50], poison, *kul[50:]])]  # KUL's first 50 scans are applied, then it fails
    store = DictStore()
    result, failures = process_isolating_failures(PoisonedAggregator(), store, poisoned, now=0.0)
    result = TwoStages().merged(result)

    assert [(f.offset, f.observation, type(f.error)) for f in failures] == [(1, poison, OverflowError)]
    assert store.data == clean_store.data  # no trace of the failed attempt, nothing lost or counted twice
    assert totals(result.closed) == totals(clean.closed)  # LGG's windows, closed in the failed attempt too
    assert result.outcomes == clean.outcomes and result.backlog == clean.backlog


def test_when_the_rest_fails_too_the_error_is_raised_and_nothing_is_written() -> None:
    class Broken(HubAggregator):
        def _process_hub(self, store, hub, batch, now, result):  # type: ignore[no-untyped-def]
            super()._process_hub(store, hub, batch, now, result)
            if hub == "KUL" and len(batch) > 1:
                raise RuntimeError("KUL scans fail together, never alone")

    store = DictStore()
    with pytest.raises(RuntimeError, match="never alone"):
        process_isolating_failures(Broken(), store, _two_hub_records(), now=0.0)
    assert store.data == {} and store.writes == []


@pytest.mark.parametrize(
    ("offsets", "applied", "kept", "resume"),
    [
        ([5, 6, 7], 4, [5, 6, 7], None),  # the next ones
        ([3, 4, 5, 6], 4, [5, 6], None),  # re-delivered ones left out
        ([7, 5, 6, 6], 4, [5, 6, 7], None),  # in offset order, a repeat once
        ([5, 6, 9, 10], 4, [5, 6], 7),  # 7 and 8 skipped by the consumer: 9 waits, read again from 7
        ([9, 10], 4, [], 5),  # the whole batch is past a gap
        ([12, 13], None, [12, 13], None),  # nothing applied yet: the first offset starts the sequence
        ([], 4, [], None),
    ],
)
def test_by_hub_records_are_applied_in_order_without_a_gap(
    offsets: list[int], applied: int | None, kept: list[int], resume: int | None
) -> None:
    assert in_sequence(offsets, applied) == (kept, resume)


def test_the_applied_offset_kept_beside_the_state_is_never_taken_for_a_visit() -> None:
    store = DictStore()
    store.put(applied_key(0), b"41")
    store.put(applied_key(1), b"7")
    result = HubAggregator().process(store, parcel_life("P1", "LGG", HOUR_T0, 1)[:2], now=0.0)
    assert result.backlog == {"LGG": 1}  # one parcel in the hub, whatever else the partition holds
    assert applied_key(0) != applied_key(1) and store.data[applied_key(0)] == b"41"


def test_a_partition_restored_from_its_state_knows_the_backlog_of_every_hub_in_it() -> None:
    store, first = DictStore(), HubAggregator()
    lives = [parcel_life(f"P{i}", hub, HOUR_T0 + i * 1000, i) for i, hub in enumerate(["LGG", "KUL", "LGG", "DXB"])]
    first.process(store, [life[0] for life in lives], now=0.0)  # every parcel arrived, none left
    store.put(applied_key(0), b"7")
    assert hubs_in(store) == ["DXB", "KUL", "LGG"]  # heads only: not visits, windows or the applied offset
    restarted = HubAggregator()  # a new process on the same state, before any new scan
    assert restarted.restore(store).backlog == {"DXB": 1, "KUL": 1, "LGG": 2}
    assert [restarted.backlog(hub) for hub in ("LGG", "KUL", "DXB", "HGH")] == [2, 1, 1, 0]
