"""A parcel's visit to a hub — first scan to departure — as idempotent pure transitions.

A visit is stored as ``(first_ms, out_ms, previous_out_ms)``, followed by the flow scans it counted
(:class:`Counted`: a 64-bit fingerprint of the event id and the source position that counted it),
so a retransmitted scan counts once: ``out_ms`` is ``None`` while the
parcel is in the hub (it counts in the backlog) and its departure time once it left (kept for a
while so that re-delivered or cross-topic-delayed scans of the visit change nothing);
``previous_out_ms`` is the departure of the visit before, so a late scan of that earlier visit is
not mistaken for part of this one. Applying any already-applied scan again changes nothing, which
is what makes recovery after a crash exact without transactions.

Domain: the scans of one visit may be processed in any order; visits of a parcel to the same hub
are expected in time order (a parcel that returns to a hub while scans of its previous visit are
still delayed can be miscounted once).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from streams.kafka.topics import Source, source_partition_id

Visit = tuple[int, int | None, int | None]
_VISIT = struct.Struct(">qqq")
_COUNTED = struct.Struct(">QBHq")
_NONE = -1
_SOURCES = tuple(Source)
_SOURCE_INDEX = {s: i for i, s in enumerate(_SOURCES)}


@dataclass(frozen=True, slots=True)
class Counted:
    """A flow scan a visit counted: its event key, and the source position it was counted at.

    The position matters after a crash: the visit may have been stored while the windows that
    counted the scan were not. The scan is a repeat only if its position is applied in the windows.
    """

    event_key: int
    source: Source
    partition: int
    offset: int

    @property
    def source_partition(self) -> str:
        """Id of the source partition (as the windows name it)."""
        return source_partition_id(self.source, self.partition)


@dataclass(frozen=True, slots=True)
class Change:
    """Effect of one scan on a visit: the new value (if it changed) and what to count."""

    visit: Visit | None  # new stored value; None means unchanged
    opened: bool = False  # parcel entered the hub's backlog
    departed: bool = False  # parcel left the backlog
    dwell_ms: int | None = None  # a departure to observe (first scan → departure)
    new_visit: bool = False  # the scan starts a visit: what the previous one counted is forgotten


UNCHANGED = Change(None)


def apply_scan(visit: Visit | None, event_time_ms: int, outbound: bool) -> Change:
    """Apply one parcel scan at a hub (``outbound`` = loaded on a truck or built into a ULD)."""
    t = event_time_ms
    if visit is None:
        if outbound:
            return Change((t, t, None), dwell_ms=0, new_visit=True)
        return Change((t, None, None), opened=True, new_visit=True)
    first, out, previous = visit
    if previous is not None and t <= previous:
        return UNCHANGED  # belongs to an earlier visit, already accounted for
    if out is not None:
        if t > out:  # the parcel came back after it left: a new visit
            if outbound:
                return Change((t, t, out), dwell_ms=0, new_visit=True)
            return Change((t, None, out), opened=True, new_visit=True)
        # A scan from before a departure already applied (delayed, or re-delivered): it can
        # only move the visit's start earlier.
        return Change((t, out, previous)) if t < first else UNCHANGED
    if outbound:
        if t >= first:
            return Change((first, t, previous), departed=True, dwell_ms=t - first)
        return Change((first, None, t))  # it had left before the scans of the open visit: a visit before
    return Change((t, None, previous)) if t < first else UNCHANGED


def is_open(visit: Visit) -> bool:
    """Whether the parcel is still in the hub (counts in the backlog)."""
    return visit[1] is None


def expired(visit: Visit, watermark_ms: int, departed_ttl_ms: int, open_ttl_ms: int) -> bool:
    """Whether a visit can be forgotten: departed long ago, or open for longer than any hold."""
    first, out, _previous = visit
    if out is not None:
        return out < watermark_ms - departed_ttl_ms
    return first < watermark_ms - open_ttl_ms


def encode_visit(visit: Visit, counted: tuple[Counted, ...] = ()) -> bytes:
    """24 bytes (first scan, departure, previous departure; −1 for none; epoch ms), then 19 per counted scan."""
    head = _VISIT.pack(*(_NONE if v is None else v for v in visit))
    return head + b"".join(_COUNTED.pack(c.event_key, _SOURCE_INDEX[c.source], c.partition, c.offset) for c in counted)


def decode_visit(data: bytes) -> Visit:
    """The visit of :func:`encode_visit` (a value without event keys, as older versions wrote, reads too)."""
    first, out, previous = _VISIT.unpack_from(data)
    return first, None if out == _NONE else out, None if previous == _NONE else previous


def counted_scans(data: bytes) -> tuple[Counted, ...]:
    """The counted flow scans stored after the visit."""
    return tuple(
        Counted(key, _SOURCES[source], partition, offset)
        for key, source, partition, offset in _COUNTED.iter_unpack(data[_VISIT.size :])
    )
