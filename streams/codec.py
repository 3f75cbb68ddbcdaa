"""Avro codec for scan events (fastavro), shared by producers and the worker.

Every record on the wire is Avro *single-object encoding*: the marker ``C3 01``, the 8-byte
little-endian CRC-64-AVRO fingerprint of the writer schema, then the Avro binary body. The
fingerprint names the writer schema, so data written with an older schema still decodes after the
current (reader) schema evolves, by Avro schema resolution.

When a schema changes, the previous version is kept, fully expanded, as
``schemas/history/<source>_scan.v<N>.avsc``; the codec accepts every writer schema found there.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fastavro import schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint, load_schema_ordered, parse_schema, to_parsing_canonical_form

from streams.events import InvalidEvent, Reason, ScanEvent, datetime_to_ms, from_record, to_record, validate
from streams.topology import Source
from streams.windows import ClosedWindow

MAGIC = b"\xc3\x01"
HEADER_SIZE = len(MAGIC) + 8
HEADER_SCHEMA_FILE = "scan_header.avsc"


def schema_dir() -> Path:
    """The ``schemas/`` folder: packaged inside ``streams`` in a wheel, beside it in a checkout."""
    packaged = Path(__file__).resolve().parent / "schemas"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "schemas"


def schema_fingerprint(schema: dict[str, Any]) -> bytes:
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


@dataclass(frozen=True)
class _Writer:
    source: Source
    schema: dict[str, Any]
    reader: dict[str, Any] | None  # None when the writer is the current schema: no resolution needed


class Codec:
    """Encodes ScanEvents with the current schemas; decodes any known writer schema."""

    def __init__(self, directory: Path | None = None, older_writers: Iterable[tuple[Source, dict[str, Any]]] = ()):
        self.readers: dict[Source, dict[str, Any]] = {s: load_source_schema(s, directory) for s in Source}
        self._prefix: dict[Source, bytes] = {}
        self._writers: dict[bytes, _Writer] = {}
        for source, schema in self.readers.items():
            fp = schema_fingerprint(schema)
            self._prefix[source] = MAGIC + fp
            self._writers[fp] = _Writer(source, schema, None)
        for source, schema in [*history_schemas(directory), *older_writers]:
            self.register_writer(source, schema)

    def register_writer(self, source: Source, schema: dict[str, Any]) -> bytes:
        """Accept data written with ``schema`` (e.g. an older version); returns its fingerprint."""
        parsed = parse_schema(schema)
        assert isinstance(parsed, dict)
        fp = schema_fingerprint(parsed)
        if fp not in self._writers:
            self._writers[fp] = _Writer(source, parsed, self.readers[source])
        return fp

    def encode_record(self, source: Source, record: Mapping[str, Any], schema: dict[str, Any] | None = None) -> bytes:
        """Avro record → single-object bytes, written with ``schema`` (default: the current one)."""
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
        """Single-object bytes → (source, record read with the current schema); raises InvalidEvent."""
        if len(data) < HEADER_SIZE or data[:2] != MAGIC:
            raise InvalidEvent(Reason.UNDECODABLE, "not Avro single-object encoding (bad marker or too short)")
        writer = self._writers.get(data[2:HEADER_SIZE])
        if writer is None:
            raise InvalidEvent(Reason.UNKNOWN_SCHEMA, f"unknown writer schema fingerprint {data[2:HEADER_SIZE].hex()}")
        body = io.BytesIO(data)
        body.seek(HEADER_SIZE)
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
    """Single-object Avro encoding of closed windows (``schemas/throughput.avsc``)."""

    def __init__(self, directory: Path | None = None) -> None:
        parsed = parse_schema(json.loads(((directory or schema_dir()) / "throughput.avsc").read_text(encoding="utf-8")))
        assert isinstance(parsed, dict)
        self.schema = parsed
        self._prefix = MAGIC + schema_fingerprint(parsed)

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
        """Bytes → closed window (raises InvalidEvent for foreign bytes)."""
        if data[: len(self._prefix)] != self._prefix:
            raise InvalidEvent(Reason.UNKNOWN_SCHEMA, "not a parcelflow throughput record")
        body = io.BytesIO(data)
        body.seek(len(self._prefix))
        record = schemaless_reader(body, self.schema, None)
        assert isinstance(record, dict)
        start = record["window_start"]
        return ClosedWindow(
            hub=record["hub"],
            flow=record["flow"],
            start_ms=datetime_to_ms(start) if isinstance(start, datetime) else int(start),
            size_ms=record["window_seconds"] * 1000,
            parcels=record["parcels"],
            grams=record["grams"],
            revision=record["revision"],
        )
