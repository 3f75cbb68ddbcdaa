"""Event-time progress per source partition: lateness, watermark, passed-by-all, settled."""

from __future__ import annotations

import pytest

from streams.aggregate.progress import NO_OFFSET, Arrival, PartitionProgress, Progress

T0 = 1_795_000_000_000
GRACE = 120_000
IDLE = 300_000
HORIZON = 24 * 3_600_000


def hub(**newest: int) -> Progress:
    """A hub whose source partitions (``sorter_0`` for ``sorter:0``) are at ``T0 + newest``, offset 10."""
    partitions = {name.replace("_", ":"): PartitionProgress(T0 + t, 10) for name, t in newest.items()}
    return Progress(max((m.newest_ms for m in partitions.values()), default=None), partitions)


@pytest.mark.parametrize(
    ("source", "t", "offset", "arrival", "after"),
    [
        ("sorter:0", 5_000, 11, Arrival.ON_TIME, PartitionProgress(T0 + 5_000, 11)),  # newer: moves on
        ("sorter:0", -GRACE, 11, Arrival.ON_TIME, PartitionProgress(T0, 11)),  # just within grace: time kept
        ("sorter:0", -GRACE - 1, 11, Arrival.LATE, PartitionProgress(T0, 11)),  # late: offset taken, time not
        ("sorter:0", 5_000, 10, Arrival.REDELIVERED, PartitionProgress(T0, 10)),  # offset applied already
        ("sorter:0", 5_000, 3, Arrival.REDELIVERED, PartitionProgress(T0, 10)),
        ("sorter:1", -GRACE - 1, 11, Arrival.ON_TIME, PartitionProgress(T0 - GRACE - 1, 11)),  # lagging partition
        ("truck:0", -HORIZON, 0, Arrival.ON_TIME, PartitionProgress(T0 - HORIZON, 0)),  # a partition never seen
    ],
)
def test_lateness_and_redelivery_are_judged_per_partition(
    source: str, t: int, offset: int, arrival: Arrival, after: PartitionProgress
) -> None:
    progress = hub(sorter_0=0, sorter_1=-10 * GRACE)
    assert progress.arrive(source, T0 + t, offset, GRACE) is arrival
    assert progress.partitions[source] == after
    assert progress.newest_ms == T0  # moved only once the event counted
    assert progress.redelivered(source, after.offset) and not progress.redelivered(source, after.offset + 1)


def test_the_hub_newest_moves_when_counted_or_seen_never_back() -> None:
    progress = Progress()
    progress.counted(T0)
    progress.counted(T0 - 1)
    assert progress.newest_ms == T0
    progress.seen("flight:3", T0 + 5)
    progress.seen("flight:3", T0 + 1)
    assert progress.partitions == {"flight:3": PartitionProgress(T0 + 5, NO_OFFSET)} and progress.newest_ms == T0 + 5
    assert not progress.redelivered("flight:3", 0)  # a partition seen by the merge applied no offset
    assert progress.newest() == {"flight:3": T0 + 5}


@pytest.mark.parametrize(
    ("newest", "watermark"),
    [
        ({}, None),  # nothing seen yet
        ({"sorter_0": 0}, -GRACE),
        ({"sorter_0": 0, "sorter_1": -60_000}, -60_000 - GRACE),  # the slowest active one holds it back
        ({"sorter_0": 0, "sorter_1": -IDLE}, -IDLE - GRACE),  # at the idle limit: still active
        ({"sorter_0": 0, "sorter_1": -IDLE - 1}, -GRACE),  # beyond it: idle, ignored
        ({"sorter_0": 0, "truck_0": -5 * IDLE, "flight_0": -30_000}, -30_000 - GRACE),
    ],
)
def test_watermark_is_the_oldest_active_partition_minus_grace(newest: dict[str, int], watermark: int | None) -> None:
    expected = None if watermark is None else T0 + watermark
    assert hub(**newest).watermark(GRACE, IDLE) == expected


@pytest.mark.parametrize(
    ("newest", "passed"),
    [
        ({}, None),
        ({"sorter_0": 0, "sorter_1": -IDLE - 1}, -IDLE - 1 - GRACE),  # idle ones hold it back too...
        ({"sorter_0": 0, "truck_0": -2 * HORIZON}, -HORIZON),  # ...up to the hard horizon
    ],
)
def test_passed_by_all_waits_for_every_partition_up_to_the_horizon(newest: dict[str, int], passed: int | None) -> None:
    expected = None if passed is None else T0 + passed
    assert hub(**newest).passed_by_all(GRACE, HORIZON) == expected


@pytest.mark.parametrize(
    ("newest", "active", "settled"),
    [
        ({}, set(), None),
        ({"sorter_0": 0, "flight_0": -60_000}, {"sorter:0", "flight:0"}, -60_000 - GRACE),
        ({"sorter_0": 0, "flight_0": -60_000}, {"sorter:0"}, -60_000 - GRACE),  # the watermark bounds it
        ({"sorter_0": 0, "flight_0": -IDLE - 1}, {"sorter:0"}, -GRACE),  # idle by event time and silent
        ({"sorter_0": 0, "flight_0": -IDLE - 1}, {"sorter:0", "flight:0"}, -IDLE - 1 - GRACE),  # still delivering
        ({"sorter_0": 0, "flight_0": -60_000}, set(), 0),  # none delivering: everything seen is final
        ({"sorter_0": 0}, {"truck:9"}, 0),  # only partitions never seen are delivering
    ],
)
def test_settled_is_what_the_delivering_partitions_passed(
    newest: dict[str, int], active: set[str], settled: int | None
) -> None:
    expected = None if settled is None else T0 + settled
    assert hub(**newest).settled(active, GRACE, IDLE) == expected


def test_the_stored_form_is_newest_and_offset_per_partition() -> None:
    progress = Progress(T0, {"sorter:0": PartitionProgress(T0, 7), "truck:1": PartitionProgress(T0 - 5)})
    assert progress.to_json() == {"sorter:0": [T0, 7], "truck:1": [T0 - 5, NO_OFFSET]}
    assert Progress.from_json(T0, progress.to_json()) == progress
