"""What the worker does when the registry is down or does not know an id (a fake registry, no HTTP)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from streams.events import InvalidEvent, Reason
from streams.kafka.codec import Codec, ThroughputCodec, registry_text
from streams.kafka.registry import RegistryUnavailable, SchemaRefused, WriterSchemas, _message
from streams.kafka.topics import Source
from streams.settings import Settings, SettingsError
from streams.worker.health import Health
from tests.support.scans import VALID


class FakeRegistry:
    """Answers from a script: an exception to raise, or a value to return, per call."""

    url = "http://registry.invalid/apis/ccompat/v7"

    def __init__(self, answers: list[object]) -> None:
        self.answers: Iterator[object] = iter(answers)
        self.calls: list[tuple[str, object]] = []

    def _next(self) -> object:
        answer = next(self.answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def schema(self, schema_id: int) -> tuple[str, str] | None:
        self.calls.append(("schema", schema_id))
        return self._next()  # type: ignore[return-value]

    def register(self, subject: str, text: str) -> int:
        self.calls.append(("register", subject))
        return self._next()  # type: ignore[return-value]


DOWN = RegistryUnavailable("cannot reach the schema registry at http://registry.invalid: ConnectError: refused")
FLIGHT_TEXT = registry_text(Codec().readers[Source.FLIGHT])


def confluent(schema_id: int) -> bytes:
    writer = Codec()
    writer.write_schema_ids({Source.FLIGHT: schema_id})
    return writer.encode(VALID[0])


def test_an_unreachable_registry_is_waited_for_with_bounded_backoff_and_readiness_says_why() -> None:
    health = Health()
    health.beat()
    registry = FakeRegistry([DOWN, DOWN, DOWN, DOWN, (FLIGHT_TEXT, "AVRO")])
    seen: list[tuple[float, tuple[bool, str]]] = []

    async def sleep(seconds: float) -> None:
        seen.append((seconds, health.status()))

    schemas = WriterSchemas(registry, health, sleep=sleep, max_backoff=2.0)
    codec = Codec()
    asyncio.run(schemas.prepare(codec.schema_ids, [confluent(3), confluent(3)]))
    assert [delay for delay, _ in seen] == [0.5, 1.0, 2.0, 2.0]  # doubling, never above the bound
    for _delay, (ready, why) in seen:
        assert not ready and why.startswith("waiting: schema registry: cannot reach") and "schema id 3" in why
    assert health.status() == (True, "ready")  # back once it answered
    assert codec.decode(confluent(3)) == VALID[0]
    assert registry.calls == [("schema", 3)] * 5
    asyncio.run(schemas.prepare(codec.schema_ids, [confluent(3)]))  # known now: no more calls
    assert len(registry.calls) == 5


def test_an_unknown_id_is_asked_once_and_its_records_are_rejected_with_the_reason() -> None:
    registry = FakeRegistry([None])
    schemas = WriterSchemas(registry, Health())
    codec = Codec()
    asyncio.run(schemas.prepare(codec.schema_ids, [confluent(8)] * 50))
    asyncio.run(schemas.prepare(codec.schema_ids, [confluent(8)] * 50))
    assert registry.calls == [("schema", 8)]
    with pytest.raises(InvalidEvent) as caught:
        codec.decode(confluent(8))
    assert caught.value.reason is Reason.UNKNOWN_SCHEMA_ID


def test_without_a_registry_nothing_is_fetched() -> None:
    codec = Codec()
    asyncio.run(WriterSchemas(None, Health()).prepare(codec.schema_ids, [confluent(4)]))
    with pytest.raises(InvalidEvent, match="no schema registry is configured"):
        codec.decode(confluent(4))


def test_a_command_gives_up_after_its_attempts() -> None:
    async def no_wait(_seconds: float) -> None:
        return None

    schemas = WriterSchemas(FakeRegistry([DOWN, DOWN, DOWN]), Health(), sleep=no_wait, attempts=3)
    with pytest.raises(RegistryUnavailable):
        asyncio.run(schemas.prepare(Codec().schema_ids, [confluent(4)]))


def test_the_output_schema_is_registered_once_and_a_refusal_goes_up() -> None:
    registry = FakeRegistry([12])
    schemas = WriterSchemas(registry, Health())
    codec = ThroughputCodec()
    asyncio.run(schemas.frame_output(codec, "p.throughput"))
    asyncio.run(schemas.frame_output(codec, "p.throughput"))
    assert registry.calls == [("register", "p.throughput-value")]
    from streams.aggregate.windows import ClosedWindow

    assert codec.encode(ClosedWindow("LGG", "sorted", 0, 60_000, 1, 1, 1))[:5] == b"\x00\x00\x00\x00\x0c"
    refused = WriterSchemas(FakeRegistry([SchemaRefused("refused: incompatible")]), Health())
    with pytest.raises(SchemaRefused):
        asyncio.run(refused.frame_output(ThroughputCodec(), "p.throughput"))


def test_registry_messages_are_one_line_without_java_class_names() -> None:
    text = "io.apicurio.registry.rules.violation.RuleViolationException: Incompatible artifact:\n x [AVRO]"
    assert _message(text) == "Incompatible artifact: x [AVRO]"
    assert len(_message("y" * 1000)) == 300


def test_the_registry_url_setting() -> None:
    url = "http://127.0.0.1:18081/apis/ccompat/v7"
    assert Settings.from_env({"PARCELFLOW_SCHEMA_REGISTRY_URL": url + "/"}).schema_registry_url == url
    assert Settings.from_env({"PARCELFLOW_SCHEMA_REGISTRY_URL": ""}).schema_registry_url is None
    assert Settings.from_env({}).schema_registry_url is None
    with pytest.raises(SettingsError, match="PARCELFLOW_SCHEMA_REGISTRY_URL"):
        Settings.from_env({"PARCELFLOW_SCHEMA_REGISTRY_URL": "127.0.0.1:18081"})
