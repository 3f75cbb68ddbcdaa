"""What the intake sends to the by-partition topic: parcel scans, compact and batched.

Internal to one pipeline (never leaves the app's own topic), so a fixed binary layout instead of
Avro, and one Kafka record carries all the scans of one first-stage partition from one intake
batch: a record per scan would cost more than everything else the worker does with it.
"""

from __future__ import annotations

import hashlib
import struct
from typing import NamedTuple

from streams.events import EVENT_TYPES, FLOW_OF_EVENT_TYPE, ScanEvent
from streams.kafka.topics import Source, source_partition_id

_LAYOUT = struct.Struct(">3sBqiBHqQ")
_LENGTH = struct.Struct(">H")
_TYPES = tuple(EVENT_TYPES)
_TYPE_INDEX = {name: i for i, name in enumerate(_TYPES)}
_SOURCES = tuple(Source)
_SOURCE_INDEX = {s: i for i, s in enumerate(_SOURCES)}
_FLOW_BY_INDEX = tuple(FLOW_OF_EVENT_TYPE[t].value if t in FLOW_OF_EVENT_TYPE else None for t in _TYPES)
_OUTBOUND_BY_INDEX = tuple(
    FLOW_OF_EVENT_TYPE.get(t) is not None and FLOW_OF_EVENT_TYPE[t].value == "outbound" for t in _TYPES
)


class Observation(NamedTuple):
    """A parcel scan as the first aggregation stage needs it, with its exact source position.

    A named tuple, not a frozen dataclass: one is built per scan the aggregation reads, and a
    tuple is built ~4x faster than a frozen dataclass sets its fields.
    """

    hub: str
    event_type: str
    event_time_ms: int
    grams: int
    source: Source
    partition: int
    offset: int
    parcel_id: str
    event_key: int = 0  # 64-bit fingerprint of the event id (0: unknown, never a duplicate)

    @property
    def source_partition(self) -> str:
        """Id of the source partition (for per-partition lateness and de-duplication)."""
        return source_partition_id(self.source, self.partition)

    @property
    def flow(self) -> str | None:
        """Throughput flow of this scan (inbound / sorted / outbound), if any."""
        return _FLOW_BY_INDEX[_TYPE_INDEX[self.event_type]]

    @property
    def outbound(self) -> bool:
        """Whether this scan is the parcel's departure from the hub."""
        return _OUTBOUND_BY_INDEX[_TYPE_INDEX[self.event_type]]


def event_key(event_id: str) -> int:
    """Stable 64-bit fingerprint of an event id (never 0): what a visit remembers to count a scan once."""
    digest = hashlib.blake2b(event_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") or 1


_Fields = tuple[str, str, int, int, Source, int, int, str, int]
"""An observation's fields, in the order of :class:`Observation`."""


def _fields(event: ScanEvent, source: Source, partition: int, offset: int) -> _Fields:
    assert event.parcel_id is not None and event.weight_grams is not None
    return (
        event.hub,
        event.event_type,
        event.event_time_ms,
        event.weight_grams,
        source,
        partition,
        offset,
        event.parcel_id,
        event_key(event.event_id),
    )


def observe(event: ScanEvent, source: Source, partition: int, offset: int) -> Observation:
    """Observation of a parcel scan read at ``source`` partition/offset."""
    return Observation(*_fields(event, source, partition, offset))


def encode(obs: Observation) -> bytes:
    """Observation → bytes (fixed header, then the parcel id in UTF-8)."""
    return _pack(
        obs.hub,
        obs.event_type,
        obs.event_time_ms,
        obs.grams,
        obs.source,
        obs.partition,
        obs.offset,
        obs.parcel_id,
        obs.event_key,
    )


def encode_scan(event: ScanEvent, source: Source, partition: int, offset: int) -> bytes:
    """``encode(observe(event, ...))`` without the object in between (the intake's hot path)."""
    return _pack(*_fields(event, source, partition, offset))


def _pack(
    hub: str,
    event_type: str,
    event_time_ms: int,
    grams: int,
    source: Source,
    partition: int,
    offset: int,
    parcel_id: str,
    key: int,
) -> bytes:
    head = _LAYOUT.pack(
        hub.encode(), _TYPE_INDEX[event_type], event_time_ms, grams, _SOURCE_INDEX[source], partition, offset, key
    )
    return head + parcel_id.encode()


def decode(data: bytes) -> Observation:
    """Inverse of :func:`encode`."""
    hub, type_index, event_time_ms, grams, source_index, partition, offset, key = _LAYOUT.unpack_from(data)
    return Observation(
        hub.decode(),
        _TYPES[type_index],
        event_time_ms,
        grams,
        _SOURCES[source_index],
        partition,
        offset,
        data[_LAYOUT.size :].decode(),
        key,
    )


def encode_batch(observations: list[Observation]) -> bytes:
    """Many observations → one record value (each length-prefixed, order kept)."""
    return join_batch([encode(obs) for obs in observations])


def join_batch(encoded: list[bytes]) -> bytes:
    """Observations already encoded (one by one, so a failure is one record's) → one record value."""
    parts = []
    for data in encoded:
        parts.append(_LENGTH.pack(len(data)))
        parts.append(data)
    return b"".join(parts)


def decode_batch(data: bytes) -> list[Observation]:
    """Inverse of :func:`encode_batch`."""
    observations = []
    position = 0
    while position < len(data):
        (size,) = _LENGTH.unpack_from(data, position)
        position += _LENGTH.size
        observations.append(decode(data[position : position + size]))
        position += size
    return observations
