"""The Kafka client layer without a broker: what each client is built with, and confirmed sends on a fake producer."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import InvalidTimestampError, KafkaConnectionError
from faust.types import TP, Message

from streams.kafka.clients import (
    AdminConfig,
    Answer,
    ConsumerConfig,
    InFlight,
    ProducerConfig,
    forget_acks_from,
    new_admin,
    new_consumer,
    new_producer,
    track_topics,
)

BOOTSTRAP = "127.0.0.1:9092"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (  # publish: a named client, the caller's linger
            ProducerConfig(BOOTSTRAP, "parcelflow-publisher", linger_ms=20),
            {
                "bootstrap_servers": BOOTSTRAP,
                "acks": "all",
                "enable_idempotence": True,
                "linger_ms": 20,
                "max_batch_size": 256 * 1024,
                "client_id": "parcelflow-publisher",
            },
        ),
        (  # republish: aiokafka names the client
            ProducerConfig(BOOTSTRAP),
            {
                "bootstrap_servers": BOOTSTRAP,
                "acks": "all",
                "enable_idempotence": True,
                "linger_ms": 5,
                "max_batch_size": 256 * 1024,
            },
        ),
    ],
)
def test_producer_settings(config: ProducerConfig, expected: dict[str, Any]) -> None:
    assert config.kwargs() == expected


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (  # metadata and offsets only: aiokafka's defaults, no group
            ConsumerConfig(BOOTSTRAP),
            {"bootstrap_servers": BOOTSTRAP, "enable_auto_commit": False},
        ),
        (  # the worker's source intake
            ConsumerConfig(
                BOOTSTRAP,
                group_id="app-intake",
                client_id="app-intake",
                offset_reset="earliest",
                session_timeout_ms=30_000,
                heartbeat_interval_ms=3000,
            ),
            {
                "bootstrap_servers": BOOTSTRAP,
                "enable_auto_commit": False,
                "group_id": "app-intake",
                "client_id": "app-intake",
                "auto_offset_reset": "earliest",
                "session_timeout_ms": 30_000,
                "heartbeat_interval_ms": 3000,
            },
        ),
        (  # replay reading history, larger fetches
            ConsumerConfig(BOOTSTRAP, max_partition_fetch_bytes=4 << 20, max_poll_records=5000),
            {
                "bootstrap_servers": BOOTSTRAP,
                "enable_auto_commit": False,
                "max_partition_fetch_bytes": 4 << 20,
                "max_poll_records": 5000,
            },
        ),
    ],
)
def test_consumer_settings(config: ConsumerConfig, expected: dict[str, Any]) -> None:
    assert config.kwargs() == expected


def test_admin_settings() -> None:
    assert AdminConfig(BOOTSTRAP).kwargs() == {"bootstrap_servers": BOOTSTRAP}
    assert AdminConfig(BOOTSTRAP, "parcelflow-admin").kwargs() == {
        "bootstrap_servers": BOOTSTRAP,
        "client_id": "parcelflow-admin",
    }


def test_every_setting_is_one_the_aiokafka_constructor_takes() -> None:
    async def build() -> list[object]:  # aiokafka clients are made in the loop that runs them; none is started
        full_consumer = ConsumerConfig(
            BOOTSTRAP, "g", "c", "earliest", max_partition_fetch_bytes=1 << 20, max_poll_records=10
        )
        return [
            new_producer(ProducerConfig(BOOTSTRAP, "p", linger_ms=1)),
            new_consumer(ConsumerConfig(BOOTSTRAP, session_timeout_ms=30_000, heartbeat_interval_ms=3000)),
            new_consumer(full_consumer),
            new_admin(AdminConfig(BOOTSTRAP, "a")),
        ]

    producer, consumer, full, admin = asyncio.run(build())
    assert isinstance(producer, AIOKafkaProducer)
    assert isinstance(consumer, AIOKafkaConsumer) and isinstance(full, AIOKafkaConsumer)
    assert isinstance(admin, AIOKafkaAdminClient)


class FakeProducer:
    """Answers a send on the next loop turn: a record whose number is in ``failing`` fails with ``error``."""

    def __init__(self, failing: frozenset[int] = frozenset(), error: Exception | None = None) -> None:
        self.failing = failing
        self.error = error or KafkaConnectionError("connection lost")
        self.sent = 0
        self.answered = 0
        self.answered_at_send: list[int] = []  # how many were answered when each record was sent

    async def send(self, record: int) -> asyncio.Future[None]:
        self.answered_at_send.append(self.answered)
        self.sent += 1
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(self._answer, record, future)
        return future

    def _answer(self, record: int, future: asyncio.Future[None]) -> None:
        self.answered += 1
        if record in self.failing:
            future.set_exception(self.error)
        else:
            future.set_result(None)


def test_sends_are_confirmed_at_most_a_window_behind() -> None:
    async def run() -> tuple[FakeProducer, InFlight[int]]:
        producer = FakeProducer()
        in_flight: InFlight[int] = InFlight(3)
        for record in range(7):
            await in_flight.send(producer.send(record), record)
        await in_flight.settle()
        return producer, in_flight

    producer, in_flight = asyncio.run(run())
    assert producer.answered_at_send == [0, 0, 0, 3, 3, 3, 6]  # each window waited for before the next
    assert in_flight.confirmed == producer.answered == 7


def test_without_a_handler_the_first_failed_delivery_raises() -> None:
    async def run() -> InFlight[int]:
        producer = FakeProducer(failing=frozenset({4}))
        in_flight: InFlight[int] = InFlight(3)
        for record in range(3):
            await in_flight.send(producer.send(record), record)
        assert in_flight.confirmed == 3
        for record in range(3, 6):
            in_flight.add(await producer.send(record), record)
            assert not in_flight.due or record == 5  # a failure alone does not make it due without a handler
        with pytest.raises(KafkaConnectionError):
            await in_flight.settle()
        return in_flight

    assert asyncio.run(run()).confirmed == 3


def test_with_a_handler_every_answer_is_handed_over_in_order_and_a_failure_settles_at_the_next_send() -> None:
    refused = InvalidTimestampError()
    settled: list[list[tuple[int, BaseException | None]]] = []

    async def handle(answers: list[Answer[int]]) -> None:
        settled.append([(answer.item, answer.error) for answer in answers])

    async def run() -> InFlight[int]:
        producer = FakeProducer(failing=frozenset({2}), error=refused)
        in_flight = InFlight(100, handle)
        for record in range(6):
            await in_flight.send(producer.send(record), record)
            await asyncio.sleep(0)  # the broker answers between sends, as it does while aiokafka waits
        await in_flight.settle()
        return in_flight

    in_flight = asyncio.run(run())
    first, rest = settled  # settled early, at a send once the failure was seen, not at the window
    assert first[:3] == [(0, None), (1, None), (2, refused)] and 3 < len(first) < 6
    assert first + rest == [(record, refused if record == 2 else None) for record in range(6)]
    assert in_flight.confirmed == 5


class Client:
    """aiokafka's metadata tracking: a new topic starts a refresh, a tracked one answers at once."""

    def __init__(self) -> None:
        self.tracked: set[str] = set()
        self.refreshes = 0

    def add_topic(self, topic: str) -> asyncio.Future[bool]:
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if topic in self.tracked:
            done.set_result(True)
        else:
            self.refreshes += 1
            asyncio.get_running_loop().call_later(0.01, done.set_result, True)
        self.tracked.add(topic)
        return done


class TrackingProducer:
    def __init__(self) -> None:
        self.client = Client()


def test_track_topics_waits_for_new_topics_and_not_for_tracked_ones() -> None:
    async def run() -> TrackingProducer:
        producer = TrackingProducer()
        await track_topics(producer, ["a", "b"])
        assert producer.client.tracked == {"a", "b"} and producer.client.refreshes == 2
        tracked = asyncio.ensure_future(track_topics(producer, ["a"]))
        await asyncio.sleep(0)
        assert tracked.done()  # no pause on the hot path when the topic is tracked already
        return producer

    assert asyncio.run(run()).client.refreshes == 2


@pytest.mark.parametrize("forget", [False, True], ids=["faust-alone", "acks-forgotten"])
async def test_records_read_again_after_a_skip_are_committed_at_once_not_one_offset_per_commit(forget: bool) -> None:
    """Faust's own ack bookkeeping: a skipped range it noted as a gap, then read again and acked."""
    app = faust.App("t-read-again", broker="kafka://127.0.0.1:1", store="memory://")  # never connects
    app.topics.acks_enabled_for = lambda topic: True  # type: ignore[method-assign]  # as for an agent's topic
    consumer: Any = app.consumer
    tp = TP("internal", 0)
    consumer._committed_offset[tp] = 20  # noqa: SLF001 - the next offset to read

    def ack(offset: int) -> None:
        consumer.ack(Message("internal", 0, offset, 0.0, 0, None, b"k", b"v", None, tp=tp))

    def commit() -> int | None:  # what Faust's commit takes, each commit interval
        offset: int | None = consumer._new_offset(tp)  # noqa: SLF001
        if offset is not None:
            consumer._committed_offset[tp] = offset  # noqa: SLF001
        return offset

    ack(20)
    ack(21)
    await consumer._add_gap(tp, 22, 29)  # noqa: SLF001 - the consumer skipped 22..29, handed out 30..40
    for offset in range(30, 41):
        ack(offset)
    if forget:  # what faust_read_again does after its seek back to 22
        forget_acks_from(consumer, tp, 22)
    for offset in range(22, 46):  # read again from 22
        ack(offset)
    commits = [commit() for _ in range(3)]
    if forget:
        assert commits == [46, None, None]
    else:  # each offset 22..29 acked twice: Faust's commit crawls
        assert commits == [23, 24, 25]
