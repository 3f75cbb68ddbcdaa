from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from fastavro.schema import parse_schema

from streams.events import InvalidEvent, Reason, from_record, to_record
from streams.kafka.codec import MAGIC, Codec, schema_fingerprint
from streams.kafka.topics import Source
from tests.support.scans import VALID
from tests.support.schemas import next_release_schemas, v2_schema


@pytest.fixture(scope="module")
def codec() -> Codec:
    return Codec()


@pytest.mark.parametrize("event", VALID, ids=lambda e: e.event_type)
def test_round_trip_every_source(codec: Codec, event: Any) -> None:
    data = codec.encode(event)
    assert data[:2] == MAGIC
    assert data[2:10] == schema_fingerprint(codec.readers[event.source])
    assert codec.decode(data, event.source) == event


def test_fingerprint_matches_the_avro_spec_for_a_primitive() -> None:
    # The Avro specification's CRC-64-AVRO of the canonical form '"int"' is 0x7275d51a3f395c8f,
    # written little-endian on the wire.
    assert schema_fingerprint(parse_schema("int")) == (0x7275D51A3F395C8F).to_bytes(8, "little")


def test_newer_reader_decodes_older_data(codec: Codec, tmp_path: Path) -> None:
    """A v2 reader (with an added field) reads bytes written with the v1 schema."""
    event = VALID[0]
    v1_bytes = codec.encode(event)
    newer = Codec(next_release_schemas(tmp_path, event.source))
    source, record = newer.decode_record(v1_bytes)
    assert source is event.source
    assert record["handling_code"] is None
    assert from_record(record) == event
    assert newer.encode(event) != v1_bytes  # the new release writes v2, named by its own fingerprint
    assert newer.decode(newer.encode(event)) == event


def test_without_history_older_data_is_an_unknown_schema(codec: Codec, tmp_path: Path) -> None:
    event = VALID[0]
    folder = next_release_schemas(tmp_path, event.source)
    shutil.rmtree(folder / "history")
    with pytest.raises(InvalidEvent) as caught:
        Codec(folder).decode(codec.encode(event))
    assert caught.value.reason is Reason.UNKNOWN_SCHEMA


def test_older_reader_decodes_newer_data_once_it_knows_the_writer(codec: Codec) -> None:
    event = VALID[0]
    v2 = parse_schema(v2_schema(event.source))
    assert isinstance(v2, dict)
    record = {**to_record(event), "handling_code": "DG"}
    v2_bytes = codec.encode_record(event.source, record, v2)
    with pytest.raises(InvalidEvent) as caught:
        Codec().decode(v2_bytes)
    assert caught.value.reason is Reason.UNKNOWN_SCHEMA
    older = Codec(older_writers=[(event.source, v2_schema(event.source))])
    assert older.decode(v2_bytes) == event


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda b: b"hello, world", Reason.UNDECODABLE),
        (lambda b: b[:5], Reason.UNDECODABLE),
        (lambda b: b[:-7], Reason.UNDECODABLE),
        (lambda b: b + b"\x00\x01", Reason.UNDECODABLE),
        (lambda b: b[:2] + bytes(8) + b[10:], Reason.UNKNOWN_SCHEMA),
    ],
    ids=["garbage", "header-only", "truncated", "trailing", "unknown-fingerprint"],
)
def test_corrupt_bytes_are_rejected_with_a_reason(codec: Codec, mangle: Any, reason: Reason) -> None:
    with pytest.raises(InvalidEvent) as caught:
        codec.decode(mangle(codec.encode(VALID[0])))
    assert caught.value.reason is reason


def test_record_on_the_wrong_topic_is_rejected(codec: Codec) -> None:
    sorted_event = VALID[1]
    with pytest.raises(InvalidEvent) as caught:
        codec.decode(codec.encode(sorted_event), Source.FLIGHT)
    assert caught.value.reason is Reason.WRONG_SOURCE


def test_well_formed_avro_with_invalid_content_is_rejected(codec: Codec) -> None:
    record = to_record(VALID[0])
    record["header"]["hub"] = "ZZZ"
    with pytest.raises(InvalidEvent) as caught:
        codec.decode(codec.encode_record(Source.FLIGHT, record))
    assert caught.value.reason is Reason.UNKNOWN_HUB


def test_throughput_round_trip() -> None:
    from streams.aggregate.windows import ClosedWindow
    from streams.kafka.codec import ThroughputCodec

    codec = ThroughputCodec()
    window = ClosedWindow("LGG", "outbound", 1_795_000_020_000, 60_000, 1234, 617_000, 2)
    assert codec.decode(codec.encode(window)) == window
    with pytest.raises(InvalidEvent):
        codec.decode(b"\xc3\x01" + bytes(8) + b"x")
