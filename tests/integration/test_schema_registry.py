"""The Confluent wire format on the real broker and a real schema registry (Apicurio, Confluent-compatible API).

Records are written and read by confluent-kafka's own ``AvroSerializer`` / ``AvroDeserializer`` and
librdkafka's producer, clients we did not write, so what "Confluent wire format" means is not
ours to decide.
"""

from __future__ import annotations

import asyncio
import copy
import json
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from fastavro.schema import parse_schema

from streams.aggregate.windows import ClosedWindow
from streams.events import datetime_to_ms, from_mapping, ms_to_datetime, to_record
from streams.ingest.publish import Publisher
from streams.kafka.codec import Codec, load_source_schema, registry_text
from streams.kafka.registry import SchemaRegistry
from streams.kafka.topics import Source, Topics
from streams.kafka.wire import confluent_header, subject_of
from streams.settings import Settings
from tests.support.broker import days_ago_ms, free_port, unique_name
from tests.support.flows import closing_rows, make_flows
from tests.support.pipeline import assert_windows_equal_truth, publish_rows, read_all, wait_consumed
from tests.support.workers import WorkerProcess, cli, readiness, scrape, total, wait_for

pytestmark = pytest.mark.broker

UNKNOWN_ID = 2_000_000_000
"""A schema id no registry of these tests hands out (they count from 1)."""


def confluent_windows(url: str, topic: str) -> Callable[[bytes], ClosedWindow]:
    """Decode throughput records with confluent-kafka's AvroDeserializer (it fetches the schema by id)."""
    deserialize = AvroDeserializer(SchemaRegistryClient({"url": url}))
    context = SerializationContext(topic, MessageField.VALUE)

    def decode(data: bytes) -> ClosedWindow:
        assert data[:1] == b"\x00", f"a window not in the Confluent wire format: {data[:6]!r}"
        record = deserialize(data, context)
        assert isinstance(record, dict)
        start = record["window_start"]
        return ClosedWindow(
            record["hub"],
            record["flow"],
            datetime_to_ms(start) if isinstance(start, datetime) else int(start),
            record["window_seconds"] * 1000,
            record["parcels"],
            record["grams"],
            record["revision"],
        )

    return decode


def produce_with_confluent_kafka(bootstrap: str, url: str, prefix: str, rows: list[dict[str, object]]) -> int:
    """Send rows as a Kafka ecosystem producer would: AvroSerializer (auto-registering) and librdkafka."""
    registry = SchemaRegistryClient({"url": url})
    readers = Codec().readers
    serializers = {source: AvroSerializer(registry, registry_text(readers[source])) for source in Source}
    topics = Topics(prefix)
    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "partitioner": "murmur2_random"}
    )
    failures: list[str] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    for row in rows:
        event = from_mapping(row)
        topic = topics.source(event.source)
        value = serializers[event.source](to_record(event), SerializationContext(topic, MessageField.VALUE))
        producer.produce(
            topic, value=value, key=event.key.encode(), timestamp=event.event_time_ms, on_delivery=delivered
        )
        producer.poll(0)
    assert producer.flush(60) == 0 and not failures, failures[:3]
    return len(rows)


def test_scans_from_confluent_kafkas_serializer_are_counted_exactly_and_windows_read_by_its_deserializer(
    kafka_bootstrap: str, schema_registry: str, start_worker: Callable[..., WorkerProcess]
) -> None:
    prefix = unique_name("srser")
    topics = Topics(prefix)
    settings = Settings(bootstrap=kafka_bootstrap, topic_prefix=prefix, app_id=prefix, partitions=3)
    flows = make_flows(seed=51, parcels=1500, start_ms=days_ago_ms(2), disorder=0.05, late=0.01)
    publish_rows(settings, [])  # creates the topics with the pipeline's configs
    sent = produce_with_confluent_kafka(kafka_bootstrap, schema_registry, prefix, flows.rows + closing_rows(flows))
    assert all(r.value[:1] == b"\x00" for r in read_all(kafka_bootstrap, [topics.source(Source.FLIGHT)]))

    worker = start_worker(prefix, registry=schema_registry)
    wait_consumed(kafka_bootstrap, prefix, worker)
    samples = scrape(worker.metrics_port)
    assert total(samples, "parcelflow_events_total") == sent
    assert total(samples, "parcelflow_invalid_events_total") == 0
    assert_windows_equal_truth(
        kafka_bootstrap, topics.throughput, flows, confluent_windows(schema_registry, topics.throughput)
    )
    latest = SchemaRegistryClient({"url": schema_registry}).get_latest_version(subject_of(topics.throughput))
    assert latest.schema.schema_str is not None
    assert json.loads(latest.schema.schema_str)["name"] == "Throughput"


def _v2(source: Source) -> dict[str, Any]:
    """The next version of a source schema: a new optional field with a default (BACKWARD compatible)."""
    schema = {k: v for k, v in copy.deepcopy(load_source_schema(source)).items() if not k.startswith("__")}
    schema["fields"] = [*schema["fields"], {"name": "handling_code", "type": ["null", "string"], "default": None}]
    return schema


def test_single_object_and_confluent_v1_and_v2_records_on_one_topic_are_all_counted_and_an_unknown_id_dead_lettered(
    kafka_bootstrap: str, schema_registry: str, start_worker: Callable[..., WorkerProcess]
) -> None:
    prefix = unique_name("srmix")
    topics = Topics(prefix)
    settings = Settings(
        bootstrap=kafka_bootstrap, topic_prefix=prefix, app_id=prefix, partitions=3, schema_registry_url=schema_registry
    )
    flows = make_flows(seed=52, parcels=1500, start_ms=days_ago_ms(2), disorder=0.05, late=0.01)
    rows = flows.rows + closing_rows(flows)
    single_object = Codec()
    v2 = _v2(Source.SORTER)
    v2_parsed = parse_schema(v2)
    assert isinstance(v2_parsed, dict)
    sorter_subject = subject_of(topics.source(Source.SORTER))
    kinds = {"single-object": 0, "confluent v1": 0, "confluent v2": 0}
    unknown = confluent_header(UNKNOWN_ID) + single_object.encode(from_mapping(rows[0]))[10:]

    async def send() -> tuple[str, int, int]:
        async with Publisher(settings) as publisher:  # registers v1 (the current schemas) of each source
            registry = SchemaRegistry(schema_registry)
            v2_id = await asyncio.to_thread(registry.register, sorter_subject, json.dumps(v2))  # BACKWARD: accepted
            pending = []
            for n, row in enumerate(rows):
                event = from_mapping(row)
                if n % 3 == 0:
                    value, kind = single_object.encode(event), "single-object"
                elif n % 3 == 2 and event.source is Source.SORTER:
                    record = {**to_record(event), "handling_code": "DG"}
                    body = single_object.encode_record(event.source, record, v2_parsed)[10:]
                    value, kind = confluent_header(v2_id) + body, "confluent v2"
                else:
                    value, kind = publisher.codec.encode(event), "confluent v1"
                kinds[kind] += 1
                topic = topics.source(event.source)
                pending.append(await publisher.send_raw(topic, value, event.key.encode(), event.event_time_ms))
            await asyncio.gather(*pending)
            meta: Any = await (await publisher.send_raw(topics.source(Source.FLIGHT), unknown, b"unknown", None))
            return meta.topic, meta.partition, meta.offset

    origin = asyncio.run(send())
    assert min(kinds.values()) > 500, kinds
    client = SchemaRegistryClient({"url": schema_registry})
    assert len(client.get_versions(sorter_subject)) == 2
    latest_sorter = client.get_latest_version(sorter_subject).schema.schema_str
    assert latest_sorter is not None and "handling_code" in latest_sorter  # v2 is the latest

    worker = start_worker(prefix, registry=schema_registry)
    wait_consumed(kafka_bootstrap, prefix, worker)
    samples = scrape(worker.metrics_port)
    assert total(samples, "parcelflow_events_total") == len(rows)
    assert_windows_equal_truth(
        kafka_bootstrap, topics.throughput, flows, confluent_windows(schema_registry, topics.throughput)
    )
    assert total(samples, "parcelflow_invalid_events_total") == 1
    assert total(samples, "parcelflow_invalid_events_total", source="flight", reason="unknown_schema_id") == 1
    dead = read_all(kafka_bootstrap, [topics.deadletter], at_least=1, timeout=60)
    assert len(dead) == 1
    headers = {k: v.decode() for k, v in dead[0].headers}
    assert (headers["source_topic"], int(headers["source_partition"]), int(headers["source_offset"])) == origin
    assert headers["reason"] == "unknown_schema_id" and str(UNKNOWN_ID) in headers["detail"]
    assert dead[0].value == unknown


def test_an_incompatible_schema_is_refused_in_one_line_and_nothing_is_sent(
    kafka_bootstrap: str, schema_registry: str, tmp_path: Path
) -> None:
    prefix = unique_name("srbad")
    topics = Topics(prefix)
    # An earlier version without flight_id: ours adds it as a required field (no default), so ours
    # cannot read data written with that version: not BACKWARD compatible.
    older = {k: v for k, v in copy.deepcopy(load_source_schema(Source.FLIGHT)).items() if not k.startswith("__")}
    older["fields"] = [f for f in older["fields"] if f["name"] != "flight_id"]
    SchemaRegistry(schema_registry).register(subject_of(topics.source(Source.FLIGHT)), json.dumps(older))
    scans = tmp_path / "scans.jsonl"
    row = {"event_time": days_ago_ms(1), "hub": "LGG", "read_point": "BD-1", "event_type": "ULD_BREAKDOWN"}
    scans.write_text(json.dumps({**row, "parcel_id": "P1", "weight_grams": 500, "flight_id": "CK1"}) + "\n")

    result = cli(
        "publish", str(scans), "--bootstrap", kafka_bootstrap, "--prefix", prefix, "--schema-registry", schema_registry
    )
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: the schema registry at {schema_registry} refused the schema for subject ")
    assert f"{topics.source(Source.FLIGHT)}-value" in lines[0] and "flight_id" in lines[0], lines[0]
    assert read_all(kafka_bootstrap, list(topics.sources)) == []


def test_simulate_and_replay_write_the_confluent_format_with_the_subjects_registered(
    kafka_bootstrap: str, schema_registry: str, tmp_path: Path
) -> None:
    prefix = unique_name("srsim")
    start = ms_to_datetime(days_ago_ms(2)).isoformat()
    run = ["--to", "kafka", "--start", start, "--duration", "20m", "--scale", "0.02", "--seed", "5"]
    sent = cli(
        *["simulate", *run, "--bootstrap", kafka_bootstrap, "--prefix", prefix, "--truth", str(tmp_path / "t.json")],
        *["--schema-registry", schema_registry],
        timeout=300,
    )
    assert sent.returncode == 0, sent.stderr
    events = json.loads((tmp_path / "t.json").read_text())["events"]["total"]
    single = unique_name("srsrc")  # the same run, single-object: replayed below into the Confluent format
    plain = ["simulate", *run, "--bootstrap", kafka_bootstrap, "--prefix", single, "--truth", str(tmp_path / "s.json")]
    assert cli(*plain, timeout=300).returncode == 0
    name = unique_name("srrep")
    replayed = cli(
        *["replay", "run", name, "--source-prefix", single, "--workers", "0", "--bootstrap", kafka_bootstrap],
        *["--schema-registry", schema_registry],
        timeout=300,
    )
    assert replayed.returncode == 0, replayed.stderr

    registry = SchemaRegistryClient({"url": schema_registry})
    deserialize = AvroDeserializer(registry)
    for target in (prefix, f"replay.{name}"):
        decoded: dict[Source, list[tuple[int, bytes, str]]] = {}
        for source in Source:
            topic = Topics(target).source(source)
            registry.get_latest_version(subject_of(topic))  # registered under TopicNameStrategy
            records = sorted(read_all(kafka_bootstrap, [topic]), key=lambda r: (r.partition, r.offset))
            assert records and all(r.value[:1] == b"\x00" for r in records), topic
            context = SerializationContext(topic, MessageField.VALUE)
            decoded[source] = [(r.partition, r.key, _plain(deserialize(r.value, context))) for r in records]
        assert sum(len(d) for d in decoded.values()) == events
        if target != prefix:  # the replay holds the same events, in the same partitions and order, as its source
            codec = Codec()
            for source in Source:
                originals = sorted(
                    read_all(kafka_bootstrap, [Topics(single).source(source)]), key=lambda r: (r.partition, r.offset)
                )
                want = [(r.partition, r.key, _plain(codec.decode_record(r.value)[1])) for r in originals]
                assert decoded[source] == want, source


def _plain(record: object) -> str:
    """A decoded record as comparable text (timestamps as epoch ms, whichever way a decoder gives them)."""

    def default(value: object) -> object:
        return datetime_to_ms(value) if isinstance(value, datetime) else str(value)

    return json.dumps(record, sort_keys=True, default=default)


class Forwarder:
    """A TCP forwarder on 127.0.0.1:port to the registry, started late: until then the registry is unreachable."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port, self.target = port, target
        self._server: socket.socket | None = None
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        self._server = server
        self._spawn(self._accept)

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        assert self._server is not None
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(self.target, timeout=10)
            self._spawn(self._pipe, client, upstream)
            self._spawn(self._pipe, upstream, client)

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()


@pytest.fixture
def forwarder(schema_registry: str) -> Iterator[Forwarder]:
    host_port = schema_registry.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    proxy = Forwarder(free_port(), (host, int(port)))
    yield proxy
    proxy.stop()


def test_an_unreachable_registry_is_waited_for_while_ready_says_why_then_everything_is_counted(
    kafka_bootstrap: str, schema_registry: str, forwarder: Forwarder, start_worker: Callable[..., WorkerProcess]
) -> None:
    prefix = unique_name("srdown")
    topics = Topics(prefix)
    settings = Settings(
        bootstrap=kafka_bootstrap, topic_prefix=prefix, app_id=prefix, partitions=3, schema_registry_url=schema_registry
    )
    flows = make_flows(seed=53, parcels=300, start_ms=days_ago_ms(1), disorder=0.0, late=0.0)
    sent = publish_rows(settings, flows.rows + closing_rows(flows))  # Confluent format, ids in the real registry

    behind_proxy = schema_registry.replace(
        schema_registry.split("//", 1)[1].split("/", 1)[0], f"127.0.0.1:{forwarder.port}"
    )
    worker = start_worker(prefix, registry=behind_proxy)
    waiting: list[str] = []

    def says_it_waits() -> bool:
        status, why = readiness(worker.metrics_port)
        if status == 503 and why.startswith("waiting: schema registry: cannot reach"):
            waiting.append(why)
        return bool(waiting)

    wait_for(says_it_waits, timeout=90, what="/ready to say the worker waits for the registry", proc=worker)
    samples = scrape(worker.metrics_port)
    assert total(samples, "parcelflow_events_total") == 0  # held, not dropped
    assert total(samples, "parcelflow_invalid_events_total") == 0  # and not dead-lettered
    assert total(samples, "parcelflow_worker_ready") == 0
    forwarder.start()  # the registry comes back
    wait_consumed(kafka_bootstrap, prefix, worker, timeout=120)
    samples = scrape(worker.metrics_port)
    assert total(samples, "parcelflow_events_total") == sent
    assert total(samples, "parcelflow_invalid_events_total") == 0
    assert_windows_equal_truth(
        kafka_bootstrap, topics.throughput, flows, confluent_windows(schema_registry, topics.throughput)
    )
    wait_for(lambda: readiness(worker.metrics_port) == (200, "ready"), timeout=30, what="ready again", proc=worker)
    assert "retrying fetching schema id" in worker.log()


def test_the_archiver_reads_confluent_records_and_their_replay_writes_them_confluent_again(
    kafka_bootstrap: str, schema_registry: str, tmp_path: Path
) -> None:
    from streams.replay.archive import archived_files, read_file, run_archiver

    prefix = unique_name("srarc")
    settings = Settings(
        bootstrap=kafka_bootstrap, topic_prefix=prefix, app_id=prefix, partitions=3, schema_registry_url=schema_registry
    )
    flows = make_flows(seed=54, parcels=200, start_ms=days_ago_ms(3), disorder=0.0, late=0.0)
    sent = publish_rows(settings, flows.rows)
    root = tmp_path / "archive"

    async def archive() -> int:
        stop = asyncio.Event()

        def on_segment(stats: Any) -> None:
            if stats.records + stats.rejected >= sent:
                stop.set()

        task = asyncio.create_task(
            run_archiver(
                kafka_bootstrap,
                prefix,
                root,
                f"{prefix}-archive",
                1.0,
                stop=stop,
                on_segment=on_segment,
                registry_url=schema_registry,
            )
        )
        await asyncio.wait_for(stop.wait(), timeout=120)
        stats = await task
        assert stats.rejected == 0  # every Confluent record decoded with its schema fetched by id
        return int(stats.records)

    assert asyncio.run(archive()) == sent
    assert sum(1 for f in archived_files(root) for _ in read_file(f.path)) == sent
    name = unique_name("srarr")
    replayed = cli(
        *["replay", "run", name, "--archive", str(root), "--workers", "0", "--bootstrap", kafka_bootstrap],
        *["--schema-registry", schema_registry],
        timeout=300,
    )
    assert replayed.returncode == 0, replayed.stderr
    records = read_all(kafka_bootstrap, list(Topics(f"replay.{name}").sources))
    assert len(records) == sent and all(r.value[:1] == b"\x00" for r in records)
    deserialize = AvroDeserializer(SchemaRegistryClient({"url": schema_registry}))
    want = {row["event_id"] for row in flows.rows}
    got = {
        deserialize(r.value, SerializationContext(r.topic, MessageField.VALUE))["header"]["event_id"] for r in records
    }
    assert got == want
