"""How far the intake is ahead of the first stage: scans forwarded, taken off by the first stage's commits."""

from __future__ import annotations

from streams.ingest.ahead import Ahead


def test_scans_are_pending_from_their_delivery_until_the_first_stage_commits_past_their_record() -> None:
    ahead = Ahead(limit=250)
    ahead.forwarded(0, 10, 100)
    ahead.forwarded(0, 11, 100)
    ahead.forwarded(3, 5, 60)
    assert (ahead.scans, ahead.full, sorted(ahead.partitions())) == (260, True, [0, 3])
    ahead.committed({0: 11})  # the next offset to read: record 10 is taken, 11 is not
    assert (ahead.scans, ahead.full) == (160, False)
    ahead.committed({0: 11, 3: 4})  # the same commit again, and one below partition 3's record
    assert ahead.scans == 160
    ahead.committed({0: 50, 3: 6, 7: 99})  # past everything; a partition never forwarded to
    assert (ahead.scans, ahead.partitions()) == (0, [])


def test_deliveries_confirmed_out_of_order_are_taken_off_by_offset() -> None:
    ahead = Ahead()
    ahead.forwarded(1, 8, 5)
    ahead.forwarded(1, 6, 7)
    ahead.forwarded(1, 7, 11)
    ahead.committed({1: 7})
    assert ahead.scans == 16  # 6 is taken; 7 and 8 are not, whatever order they were confirmed in
    ahead.committed({1: 9})
    assert ahead.scans == 0
