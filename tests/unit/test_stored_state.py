"""State stored by the version before event-time progress had its own module reads the same, and is written the same.

The literals below were written by that version's code (commit 96c9b82) running :func:`_stores` and
:func:`_whole` as they are here.
"""

from __future__ import annotations

import hashlib

from streams.aggregate.aggregator import HubAggregator, Limits, load_windows
from streams.aggregate.observation import Observation
from streams.aggregate.partials import HubMerge
from streams.aggregate.progress import PartitionProgress, Progress
from streams.aggregate.windows import HOUR_MS, MINUTE_MS, HubWindows, Partial, WindowLimits
from streams.kafka.topics import Source
from tests.support.scans import HOUR_T0, parcel_life
from tests.support.stored_forms import whole_state_v2
from tests.support.stores import DictStore

LIMITS = Limits(WindowLimits(grace_ms=60_000))

FIRST_STAGE_HEAD = (
    b'\x03{"hub":"LGG","max":1795028400000,"p":{"flight:0":[1794999700000,5],"sorter:0":[1794999880000,100],'
    b'"truck:0":[1795028400000,50],"sorter:1":[1794999630000,7]},"late":{"sorted":1},"dropped":1794978040000,"v":4}'
)
MERGE_HEAD = (
    b'{"max":1795028400000,"p":{"flight:0":1794999700000,"sorter:0":1794999880000,"truck:0":1795028400000,'
    b'"sorter:1":1794999630000},"dropped":1794978040000}'
)
WHOLE = (  # the whole state in one value (version 2, as the first stage stored it before heads)
    b'\x02\x00\x00\x00\xb9{"hub":"KUL","max":1795010400005,"p":{"sorter:0":[1795010400000,4],'
    b'"sorter:1":[1795010400000,5],"flight:2":[1795010400005,9]},"late":{"sorted":1},"dropped":1795006740000,'
    b'"f":["sorted"]}\x00\x00\x00\x00\x00\x00\xea`\x00\x00\x00\x01\xa1\xee\xf5\x0f\x00\x00\x00\x00\x00\x00\x00\x00'
    b"\x03\x00\x00\x00\x00\x00\x00\x03*\x00\x00\x00\x00\x01\x00\x00\x00\x00\x006\xee\x80\x00\x00\x00\x01\xa1\xee"
    b"\xf5\x0f\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x03*\x00\x00\x00\x00\x01"
)
DIGESTS = (  # SHA-256 of every key and value of the first stage's store and of the merge's, after _stores()
    "ee4576bfacd28d65b49aefb3b1db8a55df5b27933cb0638431265e440388984b",
    "359851a900bf6de9266103277cb2750de823f9f142246a70829794b2473c9e72",
)


def _stores() -> tuple[DictStore, DictStore]:
    """Five parcel lives at LGG, a late scan, a lagging partition, a re-delivery, then a scan hours later."""
    first, merge = HubAggregator(LIMITS), HubMerge(LIMITS.windows)
    store, merge_store = DictStore(), DictStore()
    lives = sorted(
        (o for i in range(1, 6) for o in parcel_life(f"P{i}", "LGG", HOUR_T0 + i * 20_000, i)),
        key=lambda o: o.event_time_ms,
    )
    late = Observation("LGG", "SORTED", HOUR_T0, 1, Source.SORTER, 0, 100, "LATE")
    other = Observation("LGG", "SORTED", HOUR_T0 + 30_000, 700, Source.SORTER, 1, 7, "Q")
    closer = Observation("LGG", "LOADED", HOUR_T0 + 8 * HOUR_MS, 900, Source.TRUCK, 0, 50, "END")
    for batch in (lives[:10], [*lives[10:], late, other], lives[:3], [closer]):
        merge.apply(merge_store, first.process(store, batch, now=0.0).partials)
    return store, merge_store


def _whole() -> bytes:
    w = HubWindows("KUL")
    limits = WindowLimits(grace_ms=60_000, retention_ms=HOUR_MS)
    scans = [(0, "sorter:0"), (30_000, "sorter:1"), (200_000, "sorter:0"), (10_000, "sorter:0")]
    scans += [(3 * HOUR_MS, "sorter:0"), (3 * HOUR_MS, "sorter:1")]
    for offset, (t, source) in enumerate(scans):
        w.apply("sorted", HOUR_T0 + t, 400 + offset, source, offset, limits)
        w.emit(limits)
        w.drop_old(limits)
    w.apply("sorted", HOUR_T0 + 3 * HOUR_MS + 5, 1, "flight:2", 9, limits)
    return whole_state_v2(w)


def _digest(store: DictStore) -> str:
    sha = hashlib.sha256()
    for key in sorted(store.data):
        sha.update(key + b"\0" + store.data[key] + b"\0")
    return sha.hexdigest()


def test_a_first_stage_head_stored_before_reads_as_the_same_progress() -> None:
    store = DictStore()
    store.put(b"LGG", FIRST_STAGE_HEAD)
    windows, version = load_windows(store, "LGG")
    progress = Progress(
        HOUR_T0 + 8 * HOUR_MS,
        {
            "flight:0": PartitionProgress(HOUR_T0 + 100_000, 5),
            "sorter:0": PartitionProgress(HOUR_T0 + 280_000, 100),
            "truck:0": PartitionProgress(HOUR_T0 + 8 * HOUR_MS, 50),
            "sorter:1": PartitionProgress(HOUR_T0 + 30_000, 7),
        },
    )
    assert version == 4
    assert windows == HubWindows("LGG", progress, {}, {"sorted": 1}, HOUR_T0 - 21_560_000)
    assert windows.head_bytes(version) == FIRST_STAGE_HEAD


def test_the_whole_state_stored_before_reads_the_same() -> None:
    progress = Progress(
        HOUR_T0 + 3 * HOUR_MS + 5,
        {
            "sorter:0": PartitionProgress(HOUR_T0 + 3 * HOUR_MS, 4),
            "sorter:1": PartitionProgress(HOUR_T0 + 3 * HOUR_MS, 5),
            "flight:2": PartitionProgress(HOUR_T0 + 3 * HOUR_MS + 5, 9),
        },
    )
    windows = {
        (MINUTE_MS, "sorted", HOUR_T0 + 3 * HOUR_MS): [3, 810, 0, 1],
        (HOUR_MS, "sorted", HOUR_T0 + 3 * HOUR_MS): [3, 810, 0, 1],
    }
    loaded = HubWindows.from_bytes(WHOLE)
    assert loaded == HubWindows("KUL", progress, windows, {"sorted": 1}, HOUR_T0 + 2 * HOUR_MS - 60_000)
    assert whole_state_v2(loaded) == WHOLE


def test_a_merge_head_stored_before_reads_as_the_same_progress() -> None:
    store = DictStore()
    store.put(b"LGG", MERGE_HEAD)
    result = HubMerge(LIMITS.windows).apply(store, [Partial("LGG", 0, {}, [])])
    assert result.watermark_ms == {"LGG": HOUR_T0 + 8 * HOUR_MS - 60_000}  # flight:0 and sorter:* are idle
    assert store.data == {b"LGG": MERGE_HEAD}  # and written back the same


def test_the_stores_and_the_whole_state_are_written_byte_for_byte_as_before() -> None:
    store, merge_store = _stores()
    assert (_digest(store), _digest(merge_store)) == DIGESTS
    assert store.data[b"LGG"] == FIRST_STAGE_HEAD and merge_store.data[b"LGG"] == MERGE_HEAD
    assert _whole() == WHOLE
