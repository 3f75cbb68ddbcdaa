"""Avro codec for scan events (fastavro), shared by producers and the worker.

Every record on the wire is Avro *single-object encoding*: the marker ``C3 01``, the 8-byte
little-endian CRC-64-AVRO fingerprint of the writer schema, then the Avro binary body. The
fingerprint names the writer schema, so data written with an older schema still decodes after the
current (reader) schema evolves, by Avro schema resolution.

When a schema changes, the previous version is kept, fully expanded, as
``schemas/history/<source>_scan.v<N>.avsc``; the codec accepts every writer schema found there.

With a schema registry, records may instead use the Confluent wire format (``00`` + 4-byte schema
id, see ``streams/kafka/wire.py``); both framings are read from the same topic, told apart by the first
byte. The codec does no I/O: writer schemas named by id are handed to it (``schema_ids.learn``) by
whoever fetched them from the registry (``streams/kafka/registry.py``), and resolved to the current
reader schema exactly like the fingerprinted ones.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from fastavro import schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint, load_schema_ordered, parse_schema, to_parsing_canonical_form
from fastavro.types import Schema

from streams.aggregate.windows import ClosedWindow
from streams.events import (
    InvalidEvent,
    Reason,
    ScanEvent,
    datetime_to_ms,
    from_record,
    shown,
    to_record,
    validate,
)
from streams.kafka.topics import Source
from streams.kafka.wire import (
    CONFLUENT_HEADER_SIZE,
    CONFLUENT_MAGIC,
    MAX_SCHEMA_ID,
    SINGLE_OBJECT_HEADER_SIZE,
    SINGLE_OBJECT_MARKER,
    confluent_header,
    confluent_ids,
    confluent_schema_id,
)

MAGIC = SINGLE_OBJECT_MARKER
HEADER_SIZE = SINGLE_OBJECT_HEADER_SIZE
HEADER_SCHEMA_FILE = "scan_header.avsc"
NOT_FRAMED = "neither Avro single-object encoding (C3 01) nor the Confluent wire format (00)"

T = TypeVar("T")


def schema_dir() -> Path:
    """The ``schemas/`` folder: packaged inside ``streams`` in a wheel, beside it in a checkout."""
    package = Path(__file__).resolve().parents[1]  # streams/
    packaged = package / "schemas"
    return packaged if packaged.is_dir() else package.parent / "schemas"


def schema_fingerprint(schema: Schema) -> bytes:
    """The 8 bytes that name ``schema`` on the wire (CRC-64-AVRO of its canonical form)."""
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


def history_schemas(directory: Path | None = None) -> list[tuple[Source, dict[str, Any]]]:
    """Earlier versions of the source schemas, from ``<schemas>/history/<source>_scan.v<N>.avsc``."""
    history = (directory or schema_dir()) / "history"
    found = []
    for source in Source:
        for path in sorted(history.glob(f"{source.value}_scan.v*.avsc")):
            found.append((source, json.loads(path.read_text(encoding="utf-8"))))
    return found


def load_source_schema(source: Source, directory: Path | None = None) -> dict[str, Any]:
    """Parse ``<source>_scan.avsc`` together with the shared header record it refers to."""
    directory = directory or schema_dir()
    parsed = load_schema_ordered([str(directory / HEADER_SCHEMA_FILE), str(directory / f"{source.value}_scan.avsc")])
    assert isinstance(parsed, dict)
    return parsed


def registry_text(schema: dict[str, Any]) -> str:
    """A parsed schema as the JSON text to register (fastavro's private keys left out)."""
    return json.dumps({k: v for k, v in schema.items() if not k.startswith("__")}, separators=(",", ":"))


@dataclass(frozen=True)
class _Writer(Generic[T]):
    source: T  # what the writer schema is the schema of (a Source for scans)
    schema: dict[str, Any]
    reader: dict[str, Any] | None  # None when the writer is the current schema: no resolution needed


def _reading_form(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` without its ``timestamp-millis`` logical types: those fields read as epoch ms.

    Decoding is the worker's hot path and it wants milliseconds: fastavro would build a
    ``datetime`` per record only for it to be turned back into an integer. The wire bytes
    and the fingerprint (computed from the schema as written) are unchanged.
    """

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: strip(v)
                for k, v in node.items()
                if not k.startswith("__") and not (k == "logicalType" and v == "timestamp-millis")
            }
        if isinstance(node, list):
            return [strip(item) for item in node]
        return node

    parsed = parse_schema(strip(schema))
    assert isinstance(parsed, dict)
    return parsed


def _decoding_writer(source: T, schema: dict[str, Any], reader: dict[str, Any] | None) -> _Writer[T]:
    """A writer schema (and the reader it resolves to) in the form records are decoded with."""
    return _Writer(source, _reading_form(schema), None if reader is None else _reading_form(reader))


class SchemaIds(Generic[T]):
    """Writer schemas named by registry id, each matched to one of our reader schemas by record name.

    Filled from outside (the registry client fetches, this class only parses), so decoding stays
    pure and a record never waits for I/O: an id the registry does not know is remembered as such
    and its records are rejected as ``unknown_schema_id``.
    """

    def __init__(self, readers: Mapping[str, tuple[T, dict[str, Any]]], what: str) -> None:
        self._readers = readers  # full record name → (what it is, current reader schema)
        self._what = what
        self._known: dict[int, _Writer[T] | tuple[Reason, str]] = {}  # a writer, or why its records are rejected

    def unknown(self, values: Iterable[bytes | None]) -> set[int]:
        """Ids named by Confluent-framed ``values`` that were never learned (to fetch, once each)."""
        return {i for i in confluent_ids(values) if i not in self._known}

    def learn(self, schema_id: int, text: str | None, schema_type: str = "AVRO") -> None:
        """Record what the registry said about ``schema_id``: its schema text, or None (no such id)."""
        self._known[schema_id] = self._writer(schema_id, text, schema_type)

    def _writer(self, schema_id: int, text: str | None, schema_type: str) -> _Writer[T] | tuple[Reason, str]:
        if text is None:
            return Reason.UNKNOWN_SCHEMA_ID, f"the schema registry has no schema with id {schema_id}"
        if schema_type.upper() != "AVRO":
            return Reason.UNKNOWN_SCHEMA, f"schema id {schema_id} is a {schema_type} schema, not Avro"
        try:
            parsed = parse_schema(json.loads(text))
        except Exception as exc:  # noqa: BLE001 - whatever a registry holds, a reason rather than a crash
            return Reason.UNKNOWN_SCHEMA, f"schema id {schema_id} is not valid Avro: {exc}"[:300]
        name = parsed.get("name") if isinstance(parsed, dict) else None
        known = self._readers.get(str(name))
        if not isinstance(parsed, dict) or known is None:
            return Reason.UNKNOWN_SCHEMA, f"schema id {schema_id} is {shown(name)}, not a parcelflow {self._what}"
        tag, reader = known
        same = to_parsing_canonical_form(parsed) == to_parsing_canonical_form(reader)
        return _decoding_writer(tag, parsed, None if same else reader)

    def writer(self, data: bytes) -> _Writer[T]:
        """The writer schema of a Confluent-framed record; raises InvalidEvent with the reason."""
        schema_id = confluent_schema_id(data)
        if schema_id is None:
            raise InvalidEvent(Reason.UNDECODABLE, f"Confluent wire format, but only {len(data)} bytes")
        if schema_id > MAX_SCHEMA_ID:
            raise InvalidEvent(Reason.UNDECODABLE, f"not the Confluent wire format: no registry has an id {schema_id}")
        found = self._known.get(schema_id)
        if found is None:
            raise InvalidEvent(
                Reason.UNDECODABLE,
                f"Confluent wire format (schema id {schema_id}) and no schema registry is configured "
                "(PARCELFLOW_SCHEMA_REGISTRY_URL)",
            )
        if isinstance(found, tuple):
            raise InvalidEvent(*found)
        return found


class Codec:
    """Encodes ScanEvents with the current schemas; decodes any known writer schema."""

    def __init__(self, directory: Path | None = None, older_writers: Iterable[tuple[Source, dict[str, Any]]] = ()):
        self.readers: dict[Source, dict[str, Any]] = {s: load_source_schema(s, directory) for s in Source}
        self._prefix: dict[Source, bytes] = {}
        self._writers: dict[bytes, _Writer[Source]] = {}
        self.schema_ids: SchemaIds[Source] = SchemaIds(
            {str(schema["name"]): (source, schema) for source, schema in self.readers.items()}, "scan"
        )
        for source, schema in self.readers.items():
            fp = schema_fingerprint(schema)
            self._prefix[source] = MAGIC + fp
            self._writers[fp] = _decoding_writer(source, schema, None)
        for source, schema in [*history_schemas(directory), *older_writers]:
            self.register_writer(source, schema)

    def register_writer(self, source: Source, schema: dict[str, Any]) -> bytes:
        """Accept data written with ``schema`` (e.g. an older version); returns its fingerprint."""
        parsed = parse_schema(schema)
        assert isinstance(parsed, dict)
        fp = schema_fingerprint(parsed)
        if fp not in self._writers:
            self._writers[fp] = _decoding_writer(source, parsed, self.readers[source])
        return fp

    def write_schema_ids(self, ids: Mapping[Source, int]) -> None:
        """From now on, write these sources' records in the Confluent wire format with these registry ids."""
        for source, schema_id in ids.items():
            self._prefix[source] = confluent_header(schema_id)
            self.schema_ids.learn(schema_id, registry_text(self.readers[source]))

    def encode_record(self, source: Source, record: Mapping[str, Any], schema: dict[str, Any] | None = None) -> bytes:
        """Avro record → bytes written with ``schema`` (default: the current one, framed as configured).

        An explicit ``schema`` (an older or newer version, in tests) is always single-object framed.
        """
        buf = io.BytesIO()
        if schema is None:
            buf.write(self._prefix[source])
            schemaless_writer(buf, self.readers[source], dict(record))
        else:
            buf.write(MAGIC + schema_fingerprint(schema))
            schemaless_writer(buf, schema, dict(record))
        return buf.getvalue()

    def encode(self, event: ScanEvent) -> bytes:
        """ScanEvent → single-object bytes with the current schema of its source."""
        return self.encode_record(event.source, to_record(event))

    def decode_record(self, data: bytes) -> tuple[Source, dict[str, Any]]:
        """Single-object or Confluent bytes → (source, record read with the current schema); raises InvalidEvent."""
        if data[:2] == MAGIC:
            if len(data) < HEADER_SIZE:
                raise InvalidEvent(Reason.UNDECODABLE, f"Avro single-object encoding, but only {len(data)} bytes")
            found = self._writers.get(data[2:HEADER_SIZE])
            if found is None:
                raise InvalidEvent(
                    Reason.UNKNOWN_SCHEMA, f"unknown writer schema fingerprint {data[2:HEADER_SIZE].hex()}"
                )
            writer, start = found, HEADER_SIZE
        elif data[:1] == CONFLUENT_MAGIC:
            writer, start = self.schema_ids.writer(data), CONFLUENT_HEADER_SIZE
        else:
            raise InvalidEvent(Reason.UNDECODABLE, NOT_FRAMED)
        body = io.BytesIO(data)
        body.seek(start)
        try:
            record = schemaless_reader(body, writer.schema, writer.reader)
        except Exception as exc:  # fastavro raises EOFError, ValueError, UnicodeDecodeError, ...
            raise InvalidEvent(Reason.UNDECODABLE, f"Avro body does not decode: {type(exc).__name__}: {exc}") from None
        if body.tell() != len(data):
            raise InvalidEvent(Reason.UNDECODABLE, f"{len(data) - body.tell()} trailing bytes after the Avro body")
        assert isinstance(record, dict)
        return writer.source, record

    def decode(self, data: bytes, source: Source | None = None) -> ScanEvent:
        """Bytes from a source topic → a validated ScanEvent; raises InvalidEvent with the reason."""
        writer_source, record = self.decode_record(data)
        if source is not None and writer_source is not source:
            raise InvalidEvent(
                Reason.WRONG_SOURCE, f"record written with the {writer_source.value} schema on the {source.value} topic"
            )
        return validate(from_record(record), writer_source)


class ThroughputCodec:
    """Avro encoding of closed windows (``schemas/throughput.avsc``): single-object, or Confluent with a registry."""

    def __init__(self, directory: Path | None = None) -> None:
        parsed = parse_schema(json.loads(((directory or schema_dir()) / "throughput.avsc").read_text(encoding="utf-8")))
        assert isinstance(parsed, dict)
        self.schema = parsed
        self._single_object = MAGIC + schema_fingerprint(parsed)
        self._prefix = self._single_object
        self.schema_ids: SchemaIds[None] = SchemaIds({str(parsed["name"]): (None, parsed)}, "throughput")

    def write_schema_id(self, schema_id: int) -> None:
        """From now on, write windows in the Confluent wire format with this registry id."""
        self._prefix = confluent_header(schema_id)
        self.schema_ids.learn(schema_id, registry_text(self.schema))

    def encode(self, window: ClosedWindow) -> bytes:
        """Closed window → bytes."""
        buf = io.BytesIO()
        buf.write(self._prefix)
        schemaless_writer(
            buf,
            self.schema,
            {
                "hub": window.hub,
                "flow": window.flow,
                "window_start": window.start_ms,
                "window_seconds": window.size_ms // 1000,
                "parcels": window.parcels,
                "grams": window.grams,
                "revision": window.revision,
            },
        )
        return buf.getvalue()

    def decode(self, data: bytes) -> ClosedWindow:
        """Bytes (either framing) → closed window (raises InvalidEvent for foreign bytes)."""
        if data[: len(self._single_object)] == self._single_object:
            writer, reader, start = self.schema, None, len(self._single_object)
        elif data[:1] == CONFLUENT_MAGIC:
            found = self.schema_ids.writer(data)
            writer, reader, start = found.schema, found.reader, CONFLUENT_HEADER_SIZE
        else:
            raise InvalidEvent(Reason.UNKNOWN_SCHEMA, "not a parcelflow throughput record")
        body = io.BytesIO(data)
        body.seek(start)
        record = schemaless_reader(body, writer, reader)
        assert isinstance(record, dict)
        start_ms = record["window_start"]
        return ClosedWindow(
            hub=record["hub"],
            flow=record["flow"],
            start_ms=datetime_to_ms(start_ms) if isinstance(start_ms, datetime) else int(start_ms),
            size_ms=record["window_seconds"] * 1000,
            parcels=record["parcels"],
            grams=record["grams"],
            revision=record["revision"],
        )
