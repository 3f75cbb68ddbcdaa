"""The surface of aiokafka's producer that Faust's changelog sends go through, faked: batches are kept
and their delivery resolved by the test."""

from __future__ import annotations

import asyncio


class Metadata:
    """What a delivered batch resolves to: its offset."""

    def __init__(self, offset: int) -> None:
        self.offset = offset


class Batch:
    """aiokafka's BatchBuilder surface: refuses a record past ``capacity`` (a first one always fits)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.records: list[tuple[bytes, bytes | None]] = []

    def append(self, *, key: bytes, value: bytes | None, timestamp: None) -> object | None:
        if len(self.records) >= self.capacity:
            return None
        self.records.append((key, value))
        return object()

    def record_count(self) -> int:
        return len(self.records)


class Client:
    """The aiokafka client's metadata tracking: which topics each refresh asks for."""

    def __init__(self) -> None:
        self.tracked: set[str] = set()

    def add_topic(self, topic: str) -> asyncio.Future[bool]:
        self.tracked.add(topic)
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        done.set_result(True)
        return done


class KafkaProducer:
    """The aiokafka producer surface the store uses: batches whose delivery we resolve by hand."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.sent: list[tuple[str, int, Batch, asyncio.Future[Metadata]]] = []
        self.client = Client()

    def create_batch(self) -> Batch:
        return Batch(self.capacity)

    async def send_batch(self, batch: Batch, topic: str, *, partition: int) -> asyncio.Future[Metadata]:
        delivered: asyncio.Future[Metadata] = asyncio.get_running_loop().create_future()
        self.sent.append((topic, partition, batch, delivered))
        return delivered
