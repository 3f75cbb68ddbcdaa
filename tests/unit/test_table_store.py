"""The table store sends a batch's changelog once per key, in record batches, and awaits it before the ack."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import pytest
from faust.types import TP
from rocksdict import Rdict

from streams.worker.table_store import TableStore


class Data(dict[bytes, bytes]):
    """A memory store that remembers the persisted offsets it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.persisted: dict[TP, int] = {}

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        self.persisted[tp] = offset


class Metadata:
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


class Producer:
    """Faust's producer: the aiokafka one is under it."""

    def __init__(self, capacity: int) -> None:
        self._producer = KafkaProducer(capacity)


class ChangelogTopic:
    def get_topic_name(self) -> str:
        return "app-partition-state-changelog"


class App:
    def __init__(self, capacity: int) -> None:
        self.producer = Producer(capacity)


class Table:
    """A Faust table's surface the store uses."""

    def __init__(self, capacity: int = 1000) -> None:
        self.data = Data()
        self.app = App(capacity)
        self.changelog_topic = ChangelogTopic()


async def _written_sends_each_key_once_and_waits() -> None:
    table = Table(capacity=2)  # two records a batch: three keys make two batches
    sent = table.app.producer._producer.sent
    store = TableStore(cast(Any, table), 2)
    store.put(b"visit:LGG:P1", b"v1")
    store.put(b"visit:LGG:P2", b"v2")
    store.put(b"hub:LGG", b"state-1")
    store.delete(b"visit:LGG:P1")
    store.put(b"hub:LGG", b"state-2")  # the hub value, written last, is sent last
    assert table.data == {b"2|visit:LGG:P2": b"v2", b"2|hub:LGG": b"state-2"}  # under the partition's number
    assert sent == []  # nothing goes out before the batch is written
    written = asyncio.ensure_future(store.written())
    await asyncio.sleep(0)
    assert [(t, p, b.records) for t, p, b, _ in sent] == [
        ("app-partition-state-changelog", 2, [(b"2|visit:LGG:P2", b"v2"), (b"2|visit:LGG:P1", None)]),
        ("app-partition-state-changelog", 2, [(b"2|hub:LGG", b"state-2")]),
    ]
    sent[1][3].set_result(Metadata(42))  # the second batch's first record is at offset 42
    await asyncio.sleep(0)
    assert not written.done()  # one batch is not on the broker yet
    assert table.data.persisted == {}
    sent[0][3].set_result(Metadata(40))
    await asyncio.wait_for(written, timeout=5)
    assert table.data.persisted == {TP("app-partition-state-changelog", 2): 42}  # the last record's offset
    # send_batch does no metadata lookup: the changelog must be among the topics the client refreshes
    assert table.app.producer._producer.client.tracked == {"app-partition-state-changelog"}
    await asyncio.wait_for(store.written(), timeout=5)  # nothing written since: returns at once
    assert len(sent) == 2


async def _a_failed_record_fails_the_wait() -> None:
    table = Table()
    store = TableStore(cast(Any, table), 0)
    store.put(b"k", b"v")
    written = asyncio.ensure_future(store.written())
    await asyncio.sleep(0)
    table.app.producer._producer.sent[0][3].set_exception(RuntimeError("broker refused"))
    with pytest.raises(RuntimeError, match="broker refused"):
        await written
    assert table.data.persisted == {}  # a failed batch does not move the persisted offset


def test_written_sends_each_key_once_in_order_of_last_write_and_waits_for_the_broker() -> None:
    asyncio.run(_written_sends_each_key_once_and_waits())


def test_a_changelog_record_the_broker_refused_fails_the_wait() -> None:
    asyncio.run(_a_failed_record_fails_the_wait())


class RocksData(Data):
    """A RocksDB store: one real rocksdict database per partition, as Faust keeps them."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory
        self.dbs: dict[int, Rdict] = {}

    def _db_for_partition(self, partition: int) -> Rdict:
        if partition not in self.dbs:
            self.dbs[partition] = Rdict(str(self.directory / f"p{partition}"))
        return self.dbs[partition]


@pytest.mark.parametrize("store", ["memory", "rocksdb"])
def test_keys_by_prefix_are_those_of_the_prefix_and_partition_only(store: str, tmp_path: Path) -> None:
    table = Table()
    if store == "rocksdb":
        table.data = RocksData(tmp_path)
    partition = TableStore(cast(Any, table), 1)
    for key in (b"DXB/P1", b"KUL/P9", b"LGG", b"LGG/P2", b"LGG/P1", b"LGH/P1", b"SVO/P3", b"#applied/1"):
        partition.put(key, b"v")
    partition.delete(b"KUL/P9")
    other = TableStore(cast(Any, table), 11)  # "1|" is a prefix of "11|" only without the separator
    other.put(b"LGG", b"other")
    other.put(b"LGG/P7", b"v")
    try:
        assert sorted(partition.keys(b"LGG/")) == [b"LGG/P1", b"LGG/P2"]
        assert sorted(partition.keys(b"KUL/")) == []
        assert len(list(partition.keys())) == 7
        assert partition.get(b"LGG") == b"v" and other.get(b"LGG") == b"other"  # one key per partition
        assert list(other.keys(b"LGG")) == [b"LGG", b"LGG/P7"]
    finally:
        if isinstance(table.data, RocksData):
            for db in table.data.dbs.values():
                db.close()
