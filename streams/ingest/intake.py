"""What the worker does with one raw record, as pure functions: decode, validate, or reject.

Whatever the bytes hold, the outcome is a scan or a :class:`Rejected` with a bounded reason —
never an exception: a step that fails unexpectedly (a bug) rejects that one record as
``unprocessable``, so one record can never stop the stream.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.aggregate.observation import encode_scan
from streams.events import InvalidEvent, Reason, ScanEvent, ms_to_datetime
from streams.kafka.codec import Codec
from streams.kafka.topics import Source

MAX_FUTURE_MS = 3_600_000
"""Default clock skew allowed: Kafka's own ``log.message.timestamp.after.max.ms`` (one hour)."""


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record that is not a valid scan event, and why."""

    reason: Reason
    detail: str


@dataclass(frozen=True, slots=True)
class Admitted:
    """A valid scan, and its observation encoded for the by-partition topic (parcel scans only)."""

    event: ScanEvent
    observation: bytes | None


def _failed(step: str, exc: Exception) -> Rejected:
    return Rejected(Reason.UNPROCESSABLE, f"{step} failed: {type(exc).__name__}: {str(exc)[:200]}")


def intake(
    codec: Codec, data: bytes | None, source: Source, now_ms: int | None = None, max_future_ms: int = MAX_FUTURE_MS
) -> ScanEvent | Rejected:
    """Decode and validate the bytes of one record read from ``source``'s topic.

    With ``now_ms`` (processing time), a scan more than ``max_future_ms`` ahead of it is rejected:
    one wrong scanner clock must not move its hub's watermark into the future.
    """
    if not data:
        return Rejected(Reason.UNDECODABLE, "empty record value")
    try:
        event = codec.decode(data, source)
    except InvalidEvent as exc:
        return Rejected(exc.reason, exc.detail)
    except Exception as exc:  # noqa: BLE001 - whatever the bytes hold, never an exception
        return _failed("decoding", exc)
    if now_ms is not None and event.event_time_ms > now_ms + max_future_ms:
        ahead_s = (event.event_time_ms - now_ms) / 1000
        return Rejected(
            Reason.FUTURE_EVENT_TIME,
            f"event time {ms_to_datetime(event.event_time_ms).isoformat()} is {ahead_s:,.0f} s ahead of "
            f"processing time (at most {max_future_ms / 1000:,.0f} s)",
        )
    return event


def admit(
    codec: Codec,
    data: bytes | None,
    source: Source,
    partition: int,
    offset: int,
    now_ms: int,
    max_future_ms: int = MAX_FUTURE_MS,
) -> Admitted | Rejected:
    """One record's whole intake: decode, validate, bound the clock skew, observe and encode."""
    result = intake(codec, data, source, now_ms, max_future_ms)
    if isinstance(result, Rejected):
        return result
    if result.parcel_id is None:
        return Admitted(result, None)
    try:
        return Admitted(result, encode_scan(result, source, partition, offset))
    except Exception as exc:  # noqa: BLE001 - a bug in one step rejects one record, not the stream
        return _failed("observing", exc)


def deadletter_headers(topic: str, partition: int, offset: int, rejected: Rejected) -> dict[str, bytes]:
    """Kafka headers naming where a rejected record came from and why it was rejected."""
    return {
        "source_topic": topic.encode(),
        "source_partition": str(partition).encode(),
        "source_offset": str(offset).encode(),
        "reason": rejected.reason.value.encode(),
        "detail": rejected.detail.encode("utf-8", "backslashreplace")[:1000],
    }
