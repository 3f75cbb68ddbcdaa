"""How an Avro record is framed on the wire, as pure functions: which writer schema its first bytes name.

Two framings share our topics and are told apart by the first byte:

- Avro **single-object encoding** (the Avro specification): ``C3 01``, the 8-byte little-endian
  CRC-64-AVRO fingerprint of the writer schema, then the body. Needs no registry: the reader knows
  the schemas by fingerprint.
- The **Confluent wire format** (what Kafka Connect, ksqlDB, Flink and confluent-kafka's
  serializers speak): magic byte ``00``, the writer schema's id in a schema registry as a 4-byte
  big-endian integer, then the body. The reader fetches the schema by id once.

A valid Avro record body can start with any byte, so a record is framed by its first bytes only;
neither framing can be mistaken for the other (``C3`` is not ``00``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from enum import StrEnum

SINGLE_OBJECT_MARKER = b"\xc3\x01"
SINGLE_OBJECT_HEADER_SIZE = len(SINGLE_OBJECT_MARKER) + 8
CONFLUENT_MAGIC = b"\x00"
CONFLUENT_HEADER_SIZE = len(CONFLUENT_MAGIC) + 4
MAX_SCHEMA_ID = 2**31 - 1
"""Registries hand out ids as Java ints; a negative one (high bit set) names nothing."""

_ID = struct.Struct(">I")


class Framing(StrEnum):
    """Which wire format a record uses."""

    SINGLE_OBJECT = "single-object"
    CONFLUENT = "confluent"


def framing_of(data: bytes) -> Framing | None:
    """The framing that ``data``'s first bytes announce (None: neither; the record is undecodable)."""
    if data[:2] == SINGLE_OBJECT_MARKER:
        return Framing.SINGLE_OBJECT
    if data[:1] == CONFLUENT_MAGIC:
        return Framing.CONFLUENT
    return None


def confluent_header(schema_id: int) -> bytes:
    """The 5 bytes before the body of a record written with registry schema ``schema_id``."""
    if not 0 <= schema_id <= MAX_SCHEMA_ID:
        raise ValueError(f"schema id {schema_id} is outside 0–{MAX_SCHEMA_ID}")
    return CONFLUENT_MAGIC + _ID.pack(schema_id)


def confluent_schema_id(data: bytes) -> int | None:
    """The schema id a Confluent-framed record names; None if ``data`` is too short to hold one."""
    if len(data) < CONFLUENT_HEADER_SIZE:
        return None
    schema_id: int = _ID.unpack_from(data, 1)[0]
    return schema_id


def confluent_ids(values: Iterable[bytes | None]) -> set[int]:
    """Every schema id a registry could know among the Confluent-framed ``values`` (others are skipped).

    An id above ``MAX_SCHEMA_ID`` is never looked up: no registry hands it out, and asking one
    about it could get an error that would pass for an outage.
    """
    found: set[int] = set()
    for value in values:
        if value and value[:1] == CONFLUENT_MAGIC and len(value) >= CONFLUENT_HEADER_SIZE:
            schema_id = _ID.unpack_from(value, 1)[0]
            if schema_id <= MAX_SCHEMA_ID:
                found.add(schema_id)
    return found


def subject_of(topic: str) -> str:
    """The registry subject of a topic's values under Confluent's default TopicNameStrategy."""
    return f"{topic}-value"


def backoff_seconds(attempt: int, first: float = 0.5, cap: float = 30.0) -> float:
    """Wait before retry number ``attempt`` (1, 2, …): doubling from ``first``, never more than ``cap``."""
    if attempt < 1:
        raise ValueError("attempts are counted from 1")
    return min(cap, first * (1 << min(attempt - 1, 32)))
