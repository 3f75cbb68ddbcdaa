"""The Kafka client layer: every client is built here, and only here are aiokafka's (or Faust's) internals used.

- Settings → client: :class:`ProducerConfig`, :class:`ConsumerConfig` and :class:`AdminConfig` say
  what a client is built with (pure: ``kwargs()`` is what the aiokafka constructor gets);
  :func:`new_producer`, :func:`new_consumer`, :func:`new_admin`, :func:`consumer_client` and
  :func:`admin_client` build (and, for the context managers, start and close) them.
- Confirmed sends: :class:`InFlight` keeps sends until the broker answered, at most a window behind.
- Partition metadata and topic tracking: :func:`partitions_of`, :func:`await_partitions`,
  :func:`track_topics`, and :func:`faust_kafka_producer` for the aiokafka producer under Faust's.
- Faust's consumer: :func:`faust_read_again` seeks an internal partition back without its commits
  then crawling.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

if TYPE_CHECKING:
    from faust.types import TP, AppT

MAX_BATCH_BYTES = 256 * 1024
"""A producer's record batch (aiokafka's default is 16 KiB): fewer, larger requests when sending history."""

T = TypeVar("T")


def _named(settings: dict[str, Any], client_id: str | None) -> dict[str, Any]:
    """``settings`` with the client id, when one is given (else aiokafka names the client)."""
    return settings if client_id is None else {**settings, "client_id": client_id}


@dataclass(frozen=True, slots=True)
class ProducerConfig:
    """A producer whose every record is confirmed by all in-sync replicas, idempotent (no duplicates on retry)."""

    bootstrap: str
    client_id: str | None = None
    linger_ms: int = 5

    def kwargs(self) -> dict[str, Any]:
        """The ``AIOKafkaProducer`` arguments (pure)."""
        settings = {
            "bootstrap_servers": self.bootstrap,
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": self.linger_ms,
            "max_batch_size": MAX_BATCH_BYTES,
        }
        return _named(settings, self.client_id)


@dataclass(frozen=True, slots=True)
class ConsumerConfig:
    """A consumer that never commits on its own: with a group it commits what it processed, without one nothing.

    Options left ``None`` keep aiokafka's defaults.
    """

    bootstrap: str
    group_id: str | None = None
    client_id: str | None = None
    offset_reset: str | None = None
    """``auto_offset_reset``: where a partition without a committed (or a valid) position starts."""
    max_partition_fetch_bytes: int | None = None
    max_poll_records: int | None = None
    session_timeout_ms: int | None = None
    heartbeat_interval_ms: int | None = None

    def kwargs(self) -> dict[str, Any]:
        """The ``AIOKafkaConsumer`` arguments (pure)."""
        options = {
            "group_id": self.group_id,
            "auto_offset_reset": self.offset_reset,
            "max_partition_fetch_bytes": self.max_partition_fetch_bytes,
            "max_poll_records": self.max_poll_records,
            "session_timeout_ms": self.session_timeout_ms,
            "heartbeat_interval_ms": self.heartbeat_interval_ms,
        }
        settings = {"bootstrap_servers": self.bootstrap, "enable_auto_commit": False}
        settings.update((name, value) for name, value in options.items() if value is not None)
        return _named(settings, self.client_id)


@dataclass(frozen=True, slots=True)
class AdminConfig:
    """An admin client (topics, configs, group offsets, deleting records)."""

    bootstrap: str
    client_id: str | None = None

    def kwargs(self) -> dict[str, Any]:
        """The ``AIOKafkaAdminClient`` arguments (pure)."""
        return _named({"bootstrap_servers": self.bootstrap}, self.client_id)


def new_producer(config: ProducerConfig) -> AIOKafkaProducer:
    """A producer, not started (call in the event loop that will run it)."""
    return AIOKafkaProducer(**config.kwargs())


def new_consumer(config: ConsumerConfig) -> AIOKafkaConsumer:
    """A consumer, not started (call in the event loop that will run it)."""
    return AIOKafkaConsumer(**config.kwargs())


def new_admin(config: AdminConfig) -> AIOKafkaAdminClient:
    """An admin client, not started (one kept open; :func:`admin_client` for one per call)."""
    return AIOKafkaAdminClient(**config.kwargs())


@asynccontextmanager
async def consumer_client(config: ConsumerConfig) -> AsyncIterator[AIOKafkaConsumer]:
    """A started consumer, stopped on the way out."""
    consumer = new_consumer(config)
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


@asynccontextmanager
async def admin_client(config: AdminConfig) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, closed on the way out."""
    admin = new_admin(config)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


# --- confirmed sends ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer(Generic[T]):
    """The broker's answer to one send: ``error`` is None when it holds the record."""

    item: T
    error: BaseException | None


class InFlight(Generic[T]):
    """Sends the broker has not answered yet, each with what was sent; settled at most ``window`` behind.

    The window bounds memory and the records a failure can take down; every delivery is checked.
    Without ``on_answers``, :meth:`settle` raises the first failed delivery (the run ends). With it,
    :meth:`settle` hands it every send's answer in the order sent, and a failed delivery makes the
    next :meth:`send` settle at once, before more records queue up behind it.
    """

    def __init__(self, window: int, on_answers: Callable[[list[Answer[T]]], Awaitable[None]] | None = None) -> None:
        self.window = window
        self.confirmed = 0
        """Deliveries the broker confirmed."""
        self._on_answers = on_answers
        self._futures: list[asyncio.Future[Any]] = []
        self._items: list[T] = []
        self._failed = False  # a delivery failed: settle now (only with on_answers)

    def add(self, future: asyncio.Future[Any], item: T) -> None:
        """Keep a queued send (``future`` resolves when the broker answered) until it is settled."""
        self._futures.append(future)
        self._items.append(item)
        if self._on_answers is not None:
            future.add_done_callback(self._note_failure)

    def _note_failure(self, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None:
            self._failed = True

    @property
    def due(self) -> bool:
        """Whether to settle now: the window is full, or a delivery failed that the caller handles."""
        return len(self._futures) >= self.window or self._failed

    async def send(self, sending: Awaitable[asyncio.Future[Any]], item: T) -> None:
        """Queue one send (``sending`` returns its delivery future); settle when :attr:`due`."""
        self.add(await sending, item)
        if self.due:
            await self.settle()

    async def settle(self) -> None:
        """Wait for every queued send; raise the first failure, or hand the answers to ``on_answers``."""
        futures, items = self._futures, self._items
        self._futures, self._items = [], []
        if self._on_answers is None:
            await asyncio.gather(*futures)
            self.confirmed += len(futures)
            return
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
        self._failed = False
        answers = [
            Answer(item, outcome if isinstance(outcome, BaseException) else None)
            for item, outcome in zip(items, outcomes, strict=True)
        ]
        self.confirmed += sum(1 for answer in answers if answer.error is None)
        await self._on_answers(answers)


# --- partition metadata and topic tracking ---------------------------------------------------------


async def partitions_of(consumer: AIOKafkaConsumer, topics: list[str]) -> list[TopicPartition]:
    """Every partition of ``topics``; a topic the cluster does not know (yet) has none."""
    if any(not consumer.partitions_for_topic(t) for t in topics):
        await consumer._client.force_metadata_update()  # noqa: SLF001 - the consumer has no public refresh
    return [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or [])]


async def await_partitions(producer: AIOKafkaProducer, topics: list[str], timeout: float = 30.0) -> None:
    """Wait until the producer's metadata lists the partitions of freshly created topics (at most ``timeout``)."""
    client = producer.client
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while any(not client.cluster.partitions_for_topic(t) for t in topics) and loop.time() < deadline:
        for topic in topics:
            client.add_topic(topic)
        await client.force_metadata_update()
        await asyncio.sleep(0.1)


async def track_topics(producer: AIOKafkaProducer, names: Iterable[str]) -> None:
    """Make the producer's client refresh the metadata of every topic of ``names`` (at once when tracked already).

    aiokafka's client refreshes the metadata of all topics until it tracks one, then of the
    tracked ones only, and a ``send`` to a topic whose metadata it holds does not track it. So
    once any topic is tracked (a ``send`` to a topic created after the last refresh, a
    ``send_batch``), the next refresh forgets every untracked topic, and a record batch pending
    for one of them waits for a leader that never becomes known: Faust's commit flushes the
    producer and waits with it, and so does a rebalance (seen as stalls of a minute and more,
    with four workers joining at once). Tracking every topic written to up front avoids that;
    ``send_batch`` does no metadata lookup, so its topic must be tracked too.
    """
    updates = [producer.client.add_topic(name) for name in names]  # one refresh for the new ones
    for update in updates:
        await update  # done already for a tracked topic: no pause


def faust_kafka_producer(app: AppT) -> AIOKafkaProducer:
    """The aiokafka producer under Faust's, started and stopped with the app (Faust's commit flushes it)."""
    faust_producer: Any = app.producer  # Faust's aiokafka driver; typed as its abstract ProducerT
    producer: AIOKafkaProducer | None = faust_producer._producer  # noqa: SLF001 - Faust has no public accessor
    if producer is None:
        raise RuntimeError("Faust's producer is not started")
    return producer


async def faust_read_again(app: AppT, tp: TP, offset: int) -> None:
    """Seek Faust's consumer back to ``offset`` of ``tp``, and make it forget what it acked there since.

    For an internal partition whose consumer skipped records (around a rebalance). Faust notes a
    skipped range as a gap, which its commit takes as acknowledged; when the records are then read
    again and acknowledged for real, each of those offsets is in its acknowledged list twice, and
    every commit advances by one offset only: a partition with ~150 records behind took a minute
    to commit, with four workers starting at once (seen by its committed offset moving one record
    per second). Forgetting its acks and gaps from ``offset`` on lets the records read again count
    once.
    """
    consumer: Any = app.consumer  # Faust's consumer; its ack bookkeeping is private
    await consumer.seek(tp, offset)
    forget_acks_from(consumer, tp, offset)


def forget_acks_from(consumer: Any, tp: TP, offset: int) -> None:
    """Drop what Faust noted as acknowledged or skipped of ``tp`` from ``offset`` on (see :func:`faust_read_again`)."""
    from faust.types.tuples import ack_lock

    with ack_lock:  # Faust's own lock over its ack bookkeeping
        consumer._gap[tp].chop(offset, sys.maxsize)  # noqa: SLF001 - Faust has no public way
        acked: list[int] = consumer._acked[tp]  # noqa: SLF001
        acked[:] = [o for o in acked if o < offset]
        index: set[int] = consumer._acked_index[tp]  # noqa: SLF001
        index.difference_update([o for o in index if o >= offset])
