"""The Confluent wire format in the codec, without a registry: writer schemas handed over by id.

confluent-kafka's own serializers run here against its in-process mock registry (``mock://``), so
the framing is checked against a client we did not write; the real registry is in
``tests/integration/test_schema_registry.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from streams.aggregate.windows import ClosedWindow
from streams.events import InvalidEvent, Reason, to_record
from streams.ingest.intake import Rejected, admit
from streams.kafka.codec import Codec, ThroughputCodec, registry_text
from streams.kafka.topics import Source
from streams.kafka.wire import confluent_header
from tests.support.scans import VALID
from tests.support.schemas import expanded, next_release_schemas, v2_schema

BREAKDOWN = VALID[0]


def confluent_bytes(schema_id: int, codec: Codec, source: Source, record: dict[str, Any]) -> bytes:
    """A record as a Confluent producer would write it with ``schema_id`` (framing only differs)."""
    writer = Codec()
    writer.write_schema_ids({source: schema_id})
    return writer.encode_record(source, record)


def test_a_codec_given_ids_writes_the_confluent_format_and_reads_it_back() -> None:
    codec = Codec()
    codec.write_schema_ids({Source.FLIGHT: 41, Source.SORTER: 42, Source.TRUCK: 43})
    for event in VALID:
        data = codec.encode(event)
        assert data[:5] == confluent_header({Source.FLIGHT: 41, Source.SORTER: 42, Source.TRUCK: 43}[event.source])
        assert codec.decode(data, event.source) == event
        assert data[5:] == Codec().encode(event)[10:]  # same Avro body as single-object


def test_a_reader_learns_each_id_once_and_reads_both_framings_on_one_topic() -> None:
    writer = Codec()
    writer.write_schema_ids({Source.FLIGHT: 7})
    confluent = writer.encode(BREAKDOWN)
    single = Codec().encode(BREAKDOWN)
    reader = Codec()
    assert reader.schema_ids.unknown([confluent, single, confluent, None, b""]) == {7}
    with pytest.raises(InvalidEvent) as caught:  # not learned: only possible without a registry
        reader.decode(confluent)
    assert caught.value.reason is Reason.UNDECODABLE and "no schema registry" in str(caught.value)
    reader.schema_ids.learn(7, registry_text(reader.readers[Source.FLIGHT]))
    assert reader.schema_ids.unknown([confluent]) == set()
    assert reader.decode(confluent, Source.FLIGHT) == reader.decode(single, Source.FLIGHT) == BREAKDOWN


def test_an_id_the_registry_does_not_know_is_a_reason_not_an_error() -> None:
    reader = Codec()
    reader.schema_ids.learn(99, None)
    result = admit(reader, confluent_header(99) + b"\x02x", Source.FLIGHT, 0, 5, 1_795_000_000_000)
    assert isinstance(result, Rejected)
    assert result.reason is Reason.UNKNOWN_SCHEMA_ID and "99" in result.detail


@pytest.mark.parametrize(
    ("text", "schema_type", "says"),
    [
        ('{"type": "record", "name": "Other", "fields": []}', "AVRO", "'Other', not a parcelflow scan"),
        ("syntax = 'proto3';", "PROTOBUF", "PROTOBUF schema, not Avro"),
        ("{not json", "AVRO", "not valid Avro"),
    ],
    ids=["foreign-record", "protobuf", "broken"],
)
def test_a_schema_that_is_not_ours_is_an_unknown_schema(text: str, schema_type: str, says: str) -> None:
    reader = Codec()
    reader.schema_ids.learn(5, text, schema_type)
    with pytest.raises(InvalidEvent) as caught:
        reader.decode(confluent_header(5) + Codec().encode(BREAKDOWN)[10:])
    assert caught.value.reason is Reason.UNKNOWN_SCHEMA and says in str(caught.value)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x00\x00\x07", Reason.UNDECODABLE),  # too short for an id
        (confluent_header(7), Reason.UNDECODABLE),  # no body
        (b"\x01garbage", Reason.UNDECODABLE),  # neither framing
        (b"\x00\x9f" + bytes(40), Reason.UNDECODABLE),  # an "id" above 2^31 - 1: noise, not a Confluent record
    ],
    ids=["short", "empty-body", "unframed", "beyond-ids"],
)
def test_damaged_confluent_records_are_undecodable(data: bytes, reason: Reason) -> None:
    reader = Codec()
    reader.schema_ids.learn(7, registry_text(reader.readers[Source.FLIGHT]))
    with pytest.raises(InvalidEvent) as caught:
        reader.decode(data)
    assert caught.value.reason is reason


def test_evolution_by_id_a_newer_writer_and_an_older_reader() -> None:
    """v2 registered (a new optional field): the current (v1) reader counts v2 records."""
    v2 = v2_schema(BREAKDOWN.source)
    record = {**to_record(BREAKDOWN), "handling_code": "DG"}
    v2_writer = Codec(older_writers=[(BREAKDOWN.source, v2)])
    from fastavro.schema import parse_schema

    parsed_v2 = parse_schema(v2)
    assert isinstance(parsed_v2, dict)
    body = v2_writer.encode_record(BREAKDOWN.source, record, parsed_v2)[10:]
    reader = Codec()
    reader.schema_ids.learn(2, json.dumps(v2))
    assert reader.decode(confluent_header(2) + body, BREAKDOWN.source) == BREAKDOWN


def test_evolution_by_id_an_older_writer_and_a_newer_reader(tmp_path: Path) -> None:
    """The next release reads v2; v1 records named by their registry id still count (as history/ does)."""
    v1_bytes = confluent_bytes(1, Codec(), BREAKDOWN.source, to_record(BREAKDOWN))
    newer = Codec(next_release_schemas(tmp_path, BREAKDOWN.source))
    newer.schema_ids.learn(1, json.dumps(expanded(BREAKDOWN.source)))
    source, record = newer.decode_record(v1_bytes)
    assert source is BREAKDOWN.source and record["handling_code"] is None
    assert newer.decode(v1_bytes) == BREAKDOWN


def mock_registry() -> SchemaRegistryClient:
    return SchemaRegistryClient.new_client({"url": "mock://parcelflow-unit"})


def test_bytes_from_confluent_kafkas_serializer_decode_here() -> None:
    registry = mock_registry()
    codec = Codec()
    text = registry_text(codec.readers[Source.SORTER])
    serialize = AvroSerializer(registry, text)
    event = VALID[1]
    data = serialize(to_record(event), SerializationContext("t.scans.sorter", MessageField.VALUE))
    assert data is not None and data[:1] == b"\x00"
    schema_id = int.from_bytes(data[1:5], "big")
    found = registry.get_schema(schema_id)
    assert found.schema_type is not None
    codec.schema_ids.learn(schema_id, found.schema_str, found.schema_type)
    assert codec.decode(data, Source.SORTER) == event


def test_windows_written_here_decode_with_confluent_kafkas_deserializer() -> None:
    registry = mock_registry()
    codec = ThroughputCodec()
    schema_id = registry.register_schema("t.throughput-value", _schema(registry_text(codec.schema)))
    codec.write_schema_id(schema_id)
    window = ClosedWindow("LGG", "sorted", 1_795_000_020_000, 60_000, 12, 6_000, 1)
    data = codec.encode(window)
    record = AvroDeserializer(registry)(data, SerializationContext("t.throughput", MessageField.VALUE))
    assert isinstance(record, dict)
    assert (record["hub"], record["parcels"], record["grams"], record["revision"]) == ("LGG", 12, 6_000, 1)
    assert codec.decode(data) == window
    reader = ThroughputCodec()
    reader.schema_ids.learn(schema_id, registry.get_schema(schema_id).schema_str)
    assert reader.decode(data) == window


def _schema(text: str) -> Any:
    from confluent_kafka.schema_registry import Schema

    return Schema(text, "AVRO")
