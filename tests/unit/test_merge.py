"""The intake's event-time merge of fetched partitions (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from streams.ingest.merge import EventTimeMerge


@dataclass(frozen=True)
class Rec:
    timestamp: int
    offset: int


def recs(*timestamps: int) -> list[Rec]:
    return [Rec(ts, offset) for offset, ts in enumerate(timestamps)]


def always(_p: str) -> bool:
    return True


def never(_p: str) -> bool:
    return False


def test_oldest_head_first_across_partitions_and_offset_order_within_one() -> None:
    merge: EventTimeMerge[str, Rec] = EventTimeMerge()
    merge.assign(["a", "b"])
    merge.add("a", recs(10, 30, 20))  # disorder inside a partition stays in offset order
    merge.add("b", recs(15, 25))
    taken = merge.take(10, always)
    assert [(p, r.timestamp) for p, r in taken] == [("a", 10), ("b", 15), ("b", 25), ("a", 30), ("a", 20)]


def test_an_empty_partition_not_caught_up_holds_the_others_back() -> None:
    merge: EventTimeMerge[str, Rec] = EventTimeMerge()
    merge.assign(["a", "b"])
    merge.add("a", recs(10, 20))
    assert merge.take(10, never) == []  # b could still bring something older than 10
    assert [r.timestamp for _p, r in merge.take(10, lambda p: p == "b")] == [10, 20]  # b has nothing more


def test_the_merge_stops_where_a_partition_runs_dry() -> None:
    merge: EventTimeMerge[str, Rec] = EventTimeMerge()
    merge.assign(["a", "b"])
    merge.add("a", recs(10, 20, 30))
    merge.add("b", recs(15))
    taken = merge.take(10, lambda p: p == "a")  # b's next record is not fetched yet
    assert [(p, r.timestamp) for p, r in taken] == [("a", 10), ("b", 15)]
    assert merge.buffered("a") == 2
    merge.add("b", recs(40))
    assert [r.timestamp for _p, r in merge.take(10, lambda p: p == "a")] == [20, 30, 40]


def test_force_hands_out_what_waits_on_a_silent_partition() -> None:
    merge: EventTimeMerge[str, Rec] = EventTimeMerge()
    merge.assign(["a", "b"])
    merge.add("a", recs(10, 20))
    assert [r.timestamp for _p, r in merge.take(10, never, force=True)] == [10, 20]


def test_limit_and_revocation() -> None:
    merge: EventTimeMerge[str, Rec] = EventTimeMerge()
    merge.assign(["a", "b"])
    merge.add("a", recs(1, 2, 3))
    merge.add("b", recs(4))
    assert len(merge.take(2, always)) == 2
    merge.revoke(["a"])
    merge.add("a", recs(9))  # no longer assigned: ignored
    assert merge.partitions == ["b"]
    assert [(p, r.timestamp) for p, r in merge.take(10, always)] == [("b", 4)]


@given(st.dictionaries(st.sampled_from("abcd"), st.lists(st.integers(0, 1000), max_size=30), min_size=1))
def test_everything_comes_out_once_in_offset_order_per_partition(fetched: dict[str, list[int]]) -> None:
    merge: EventTimeMerge[str, Rec] = EventTimeMerge()
    merge.assign(fetched)
    for p, timestamps in fetched.items():
        merge.add(p, recs(*timestamps))
    taken = []
    while batch := merge.take(7, always):
        taken.extend(batch)
    for p, timestamps in fetched.items():
        assert [r for q, r in taken if q == p] == recs(*timestamps)
    # Partitions sorted in event time merge into one sorted stream.
    if all(t == sorted(t) for t in fetched.values()):
        assert [r.timestamp for _p, r in taken] == sorted(r.timestamp for _p, r in taken)
