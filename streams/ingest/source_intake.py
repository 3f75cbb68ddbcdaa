"""The worker's intake of the source topics: an aiokafka consumer off Faust's per-message path.

Faust's stream machinery costs far more per record than decoding it (see the README's
Benchmarks), and source topics carry one scan per record. So the source topics are consumed here,
in batches, by a consumer group of their own (``<app id>-intake``); the by-hub topic the intake
feeds stays with Faust (cheap: one record per hub and batch), with its table, changelog,
recovery and rebalancing.

Contract (the same as Faust's agent had): a batch's offsets are committed only after every
record it forwarded or dead-lettered is on the broker, so a crash re-delivers, never loses; a
re-delivered scan is skipped downstream by the last applied offset of its source partition. The
next batches are decoded while a batch's records are on their way (up to ``MAX_IN_FLIGHT``), so
a broker round trip per batch does not leave the worker idle; deliveries are settled in order.
Records are handed out in event-time order across partitions (:mod:`streams.ingest.merge`), so a
backlog read partition by partition does not make on-time scans late. On a rebalance the batch
in flight is finished and the offsets committed before partitions are given up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, RebalanceInProgressError
from aiokafka.structs import OffsetAndMetadata

from streams.ingest.merge import EventTimeMerge
from streams.kafka.clients import ConsumerConfig, new_consumer
from streams.kafka.topics import Topics
from streams.settings import Settings

log = logging.getLogger(__name__)

BATCH_SIZE = 1000
FETCH_TIMEOUT_MS = 100
COMMIT_INTERVAL_SECONDS = 1.0
PAUSE_ABOVE = 5000
"""Buffered records of a partition above which it is not fetched (the others catch up)."""
MAX_HOLD_SECONDS = 5.0
"""How long a silent, not caught-up partition may hold the others back."""

MAX_IN_FLIGHT = 4
"""Handled batches whose records may still be on their way to the broker."""

Batch = list[tuple[TopicPartition, ConsumerRecord]]
Delivery = Awaitable[object]
"""What handling a batch returns: done once every record it sent is on the broker (or failed)."""


class SourceIntake:
    """Consumes the source topics and hands batches to ``handle``; commits what it has delivered.

    ``handle`` processes a batch and returns its delivery, which the intake awaits (in order, at
    most ``MAX_IN_FLIGHT`` at a time) before the batch's offsets may be committed.
    """

    def __init__(
        self,
        settings: Settings,
        topics: list[str],
        handle: Callable[[Batch], Awaitable[Delivery]],
        on_revoked: Callable[[set[TopicPartition]], None] = lambda revoked: None,
        held: Callable[[], bool] = lambda: False,
    ) -> None:
        self.topics = topics
        self._settings = settings
        self._consumer: AIOKafkaConsumer | None = None  # made in the loop that runs it (aiokafka's rule)
        self._handle = handle
        self._on_revoked = on_revoked
        self._held = held  # true while downstream is too far behind: no new batch is taken
        self._held_seconds = 0.0  # waited for downstream, not yet reported
        self._merge: EventTimeMerge[TopicPartition, ConsumerRecord] = EventTimeMerge()
        self._done: dict[TopicPartition, int] = {}  # next offset to commit, delivered
        self._in_flight: deque[tuple[asyncio.Future[object], dict[TopicPartition, int]]] = deque()
        self._committed: dict[TopicPartition, int] = {}
        self._lock = asyncio.Lock()  # held by a batch in flight; a revocation waits for it
        self._caught_up: dict[TopicPartition, bool] = {}

    @property
    def consumer(self) -> AIOKafkaConsumer:
        """The running consumer (its assignment and highwaters tell the lag)."""
        if self._consumer is None:
            raise RuntimeError("the source intake is not running")
        return self._consumer

    def take_held_seconds(self) -> float:
        """Seconds the intake waited for downstream since the last call."""
        seconds, self._held_seconds = self._held_seconds, 0.0
        return seconds

    @property
    def running(self) -> bool:
        """Whether the consumer exists (the app has started the intake)."""
        return self._consumer is not None

    async def run(self) -> None:
        """Consume until cancelled (the worker stopping); leave the group on the way out."""
        intake = self

        class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
                await intake._revoked(set(revoked))

            async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
                log.info("intake assigned %s", _names(assigned))
                intake._merge.assign(assigned)

        settings = self._settings
        self._consumer = new_consumer(
            ConsumerConfig(
                settings.bootstrap,
                group_id=Topics.intake_group(settings.app_id),
                client_id=f"{settings.app_id}-intake",
                offset_reset="earliest",
                session_timeout_ms=round(settings.session_timeout_seconds * 1000),
                heartbeat_interval_ms=3000,
            )
        )
        self.consumer.subscribe(self.topics, listener=Listener())
        await self.consumer.start()
        try:
            await self._loop()
        finally:
            with contextlib.suppress(Exception):  # what is not committed is re-read: harmless
                await self._settle()
                await self._commit()
            await self.consumer.stop()

    async def _loop(self) -> None:
        consumer = self.consumer
        merge = self._merge
        held_since: float | None = None
        last_commit = time.monotonic()
        turned = time.monotonic()
        while True:
            fetched = await consumer.getmany(timeout_ms=FETCH_TIMEOUT_MS)
            now = time.monotonic()
            if self._held():
                self._held_seconds += now - turned
            turned = now
            async with self._lock:
                assigned = consumer.assignment()
                # The consumer can hand out records of a newly assigned partition before the
                # rebalance listener has run: follow its assignment, never drop what it returned.
                merge.assign(assigned)
                gone = set(merge.partitions) - assigned
                if gone:
                    log.info(
                        "intake: %s left the assignment (%d buffered records dropped)",
                        _names(gone),
                        _count(merge, gone),
                    )
                merge.revoke(gone)
                for tp, records in fetched.items():
                    if tp in assigned:
                        merge.add(tp, records)
                    else:  # revoked after the fetch: its new owner reads it from the last commit
                        log.info("intake: %d fetched records of revoked %s dropped", len(records), tp)
                for tp in merge.partitions:  # the assigned ones, as of now
                    self._caught_up[tp] = await self._is_caught_up(tp)
            while True:
                # The lock is taken per batch: a revocation waits for one batch, never for the
                # whole buffer (which could take longer than the group's rebalance timeout, and
                # the group would then go on without this worker and re-deliver its partitions).
                async with self._lock:
                    force = held_since is not None and time.monotonic() - held_since > MAX_HOLD_SECONDS
                    # While downstream is behind, deliveries settle and commit; nothing new is taken.
                    batch: Batch = (
                        []
                        if self._held()
                        else merge.take(BATCH_SIZE, lambda tp: self._caught_up.get(tp, False), force=force)
                    )
                    if batch:
                        held_since = None
                        delivery = asyncio.ensure_future(await self._handle(batch))
                        self._in_flight.append((delivery, {tp: record.offset + 1 for tp, record in batch}))
                    await self._settle(keep=MAX_IN_FLIGHT)
                    if time.monotonic() - last_commit >= COMMIT_INTERVAL_SECONDS:
                        await self._commit()
                        last_commit = time.monotonic()
                if len(batch) < BATCH_SIZE:
                    break
            async with self._lock:
                # Records held back for downstream are not waiting on a silent partition.
                waiting = not self._held() and any(merge.buffered(tp) for tp in merge.partitions)
                if waiting and held_since is None:
                    held_since = time.monotonic()  # records wait on a partition not read yet
                elif not waiting:
                    held_since = None
                self._flow_control(consumer.assignment())

    async def _settle(self, keep: int = 0) -> None:
        """Mark delivered batches done, oldest first; wait for the oldest while more than ``keep`` are on their way.

        A failed delivery raises: nothing after it is marked done, so nothing after it is committed.
        """
        in_flight = self._in_flight
        while in_flight and (in_flight[0][0].done() or len(in_flight) > keep):
            delivery, offsets = in_flight[0]
            await delivery
            in_flight.popleft()
            self._done.update(offsets)

    async def _is_caught_up(self, tp: TopicPartition) -> bool:
        highwater = self.consumer.highwater(tp)
        return highwater is not None and await self.consumer.position(tp) >= highwater

    def _flow_control(self, assigned: set[TopicPartition]) -> None:
        """Pause the partitions whose buffer is full, or all while held; the consumer keeps polling (and its group)."""
        consumer = self.consumer
        paused = consumer.paused()
        held = self._held()
        for tp in assigned:
            full = held or self._merge.buffered(tp) >= PAUSE_ABOVE
            if full and tp not in paused:
                consumer.pause(tp)
            elif not full and tp in paused:
                consumer.resume(tp)

    async def _commit(self, only: set[TopicPartition] | None = None) -> None:
        due = {
            tp: OffsetAndMetadata(offset, "")
            for tp, offset in self._done.items()
            if self._committed.get(tp) != offset and (only is None or tp in only)
        }
        if not due:
            return
        try:
            await self.consumer.commit(due)
        except (CommitFailedError, IllegalStateError, RebalanceInProgressError) as exc:
            # This worker was out of the group (e.g. paused past its session) or the group is
            # rebalancing: the partitions' owners re-read from the last commit, which is harmless.
            log.warning("the intake's offsets were not committed (%s); their new owner reads them again", exc)
            return
        self._committed.update({tp: meta.offset for tp, meta in due.items()})

    async def _revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._lock:  # the batch being handled is finished first, then every delivery
            await self._settle()
            await self._commit(revoked)
            log.info("intake revoked %s (%d buffered records dropped)", _names(revoked), _count(self._merge, revoked))
            self._merge.revoke(revoked)
            for tp in revoked:
                self._done.pop(tp, None)
                self._committed.pop(tp, None)
                self._caught_up.pop(tp, None)
            self._on_revoked(revoked)


def _names(tps: set[TopicPartition]) -> str:
    """``sorter:0,truck:2``: partitions as the logs name them (the topic's last dotted part)."""
    return ",".join(sorted(f"{tp.topic.rsplit('.', 1)[-1]}:{tp.partition}" for tp in tps)) or "nothing"


def _count(merge: EventTimeMerge[TopicPartition, ConsumerRecord], tps: set[TopicPartition]) -> int:
    return sum(merge.buffered(tp) for tp in tps)
