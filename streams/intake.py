"""What the worker does with one raw record, as pure functions: decode, validate, or reject."""

from __future__ import annotations

from dataclasses import dataclass

from streams.codec import Codec
from streams.events import InvalidEvent, Reason, ScanEvent
from streams.topology import Source

DEADLETTER_HEADERS = ("source_topic", "source_partition", "source_offset", "reason", "detail")
"""Headers every dead letter carries, beside its original key and bytes."""


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record that is not a valid scan event, and why."""

    reason: Reason
    detail: str


def intake(codec: Codec, data: bytes | None, source: Source) -> ScanEvent | Rejected:
    """Decode and validate the bytes of one record read from ``source``'s topic."""
    if not data:
        return Rejected(Reason.UNDECODABLE, "empty record value")
    try:
        return codec.decode(data, source)
    except InvalidEvent as exc:
        return Rejected(exc.reason, exc.detail)


def deadletter_headers(topic: str, partition: int, offset: int, rejected: Rejected) -> dict[str, bytes]:
    """Kafka headers naming where a rejected record came from and why it was rejected."""
    return {
        "source_topic": topic.encode(),
        "source_partition": str(partition).encode(),
        "source_offset": str(offset).encode(),
        "reason": rejected.reason.value.encode(),
        "detail": rejected.detail.encode()[:1000],
    }
