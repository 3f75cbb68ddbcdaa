"""Where emitted records go: JSON Lines or Avro container files (one per source), or the Kafka source topics."""

from __future__ import annotations

from hashlib import sha256
from pathlib import Path
from typing import IO, Protocol

from fastavro.write import Writer

from streams.events import EVENT_TYPES
from streams.ingest.publish import Publisher
from streams.kafka.clients import InFlight
from streams.kafka.codec import Codec
from streams.kafka.topics import Source, Topics
from streams.simulate.disorder import CORRUPT
from streams.simulate.render import JsonLines, avro_record, corrupt_bytes, corrupt_line, invalid_row
from streams.simulate.rows import Row, to_event


class Sink(Protocol):
    """A synchronous destination of emitted records."""

    def write(self, mark: int, row: Row) -> None:
        """Take one record (``mark`` says whether and how it is corrupt)."""

    def close(self) -> list[Path]:
        """Finish writing; return the files written."""


def output_path(directory: Path, source: Source, fmt: str) -> Path:
    """The file holding one source's records: ``<dir>/<source>.<fmt>``."""
    return directory / f"{source.value}.{fmt}"


class JsonlSink:
    """One JSON Lines file per source, records in emission order; corrupt ones are bad lines."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.paths = {source: output_path(directory, source, "jsonl") for source in Source}
        self._files: dict[str, IO[str]] = {}
        for source, path in self.paths.items():
            handle = path.open("w", encoding="ascii", newline="\n", buffering=1 << 20)
            for event_type, event_source in EVENT_TYPES.items():
                if event_source is source:
                    self._files[event_type] = handle
        self._handles = list({id(h): h for h in self._files.values()}.values())
        self._lines = JsonLines()

    def write(self, mark: int, row: Row) -> None:
        """Append one line to the file of the row's source."""
        if mark < CORRUPT:
            self._files[row[4]].write(self._lines.line(row, "\n"))
        else:
            self._files[row[4]].write(corrupt_line(mark, row, self._lines) + "\n")

    def close(self) -> list[Path]:
        """Flush and close the three files."""
        for handle in self._handles:
            handle.close()
        return list(self.paths.values())


class AvroSink:
    """One Avro object container file per source (schema embedded); corrupt records fail validation.

    A container file can only hold records of its schema, so every corrupt record is written as a
    decodable twin with an unknown hub. The sync marker is derived from the seed, so the same
    run writes the same bytes.
    """

    def __init__(self, directory: Path, seed: int, codec: Codec | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        codec = codec or Codec()
        self.paths = {source: output_path(directory, source, "avro") for source in Source}
        self._handles: list[IO[bytes]] = []
        self._writers: dict[str, Writer] = {}
        by_source: dict[Source, Writer] = {}
        for source, path in self.paths.items():
            handle = path.open("wb")
            self._handles.append(handle)
            marker = sha256(f"parcelflow-avro:{seed}:{source.value}".encode()).digest()[:16]
            by_source[source] = Writer(handle, codec.readers[source], codec="null", sync_marker=marker)
        for event_type, source in EVENT_TYPES.items():
            self._writers[event_type] = by_source[source]
        self._by_source = by_source

    def write(self, mark: int, row: Row) -> None:
        """Append one record to the file of the row's source."""
        self._writers[row[4]].write(avro_record(row if mark < CORRUPT else invalid_row(row)))

    def close(self) -> list[Path]:
        """Flush the last blocks and close the three files."""
        for writer in self._by_source.values():
            writer.flush()
        for handle in self._handles:
            handle.close()
        return list(self.paths.values())


class KafkaSink:
    """Sends records to the three source topics through a started Publisher; corrupt ones as raw bytes."""

    def __init__(self, publisher: Publisher, window: int = 20_000) -> None:
        self.publisher = publisher
        self.topics = Topics(publisher.settings.topic_prefix)
        self._in_flight: InFlight[Row] = InFlight(window)

    @property
    def sent(self) -> int:
        """Records the broker confirmed so far."""
        return self._in_flight.confirmed

    async def write(self, mark: int, row: Row) -> None:
        """Queue one record; waits for confirmations once ``window`` are outstanding."""
        if mark < CORRUPT:
            sending = self.publisher.send(to_event(row))
        else:
            topic = self.topics.source(EVENT_TYPES[row[4]])
            value = corrupt_bytes(mark, row, self.publisher.codec)
            key = to_event(row).key.encode()
            sending = self.publisher.send_raw(topic, value, key, row[1])
        await self._in_flight.send(sending, row)

    async def confirm(self) -> None:
        """Wait until the broker confirmed every record sent so far (raises the first error)."""
        await self._in_flight.settle()
