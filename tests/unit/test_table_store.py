"""One suite over the state stores: the unit tests' dict store and a Faust table on ``memory://`` and ``rocksdb://``.

The Faust tables are real (app, table, store), used without a running worker or broker; only the
aiokafka producer under Faust's is faked, so the changelog batches the table store sends can be
looked at and their delivery resolved by hand. A Faust upgrade that changes what the table store
reaches into (see :mod:`streams.worker.table_store`) fails here, not in the broker suite.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.types import TP, TableT
from rocksdict import AccessType, Options, Rdict

from streams.aggregate.aggregator import StateStore
from streams.worker.table_store import TableStore
from tests.support.producers import Batch, KafkaProducer, Metadata
from tests.support.stores import DictStore

CHANGELOG = "app-partition-state-changelog"


class Producer:
    """Faust's producer: the aiokafka one is under it (started; no broker behind it)."""

    def __init__(self, capacity: int) -> None:
        self._producer = KafkaProducer(capacity)


class Faust:
    """A Faust app with the worker's first-stage table on one store, its producer faked."""

    def __init__(self, store: str, directory: Path, capacity: int) -> None:
        self.store = store
        self.app = faust.App(
            "app", broker="kafka://127.0.0.1:9", store=store, datadir=str(directory), web_enabled=False
        )
        self.producer = Producer(capacity)
        self.app.producer = self.producer  # type: ignore[assignment]
        self.table: TableT[bytes, bytes] = self.app.Table(
            "partition-state",
            key_type=bytes,
            value_type=bytes,
            partitions=12,
            options={"driver": "rocksdict"},  # as the worker declares its tables
        )
        self.persisted: dict[TP, int] = {}
        self._record_persisted_offsets()

    def _record_persisted_offsets(self) -> None:
        """Remember the persisted offsets the store is given (and still let the store keep them)."""
        store: Any = self.table.data
        keep = store.set_persisted_offset

        def set_persisted_offset(tp: TP, offset: int) -> None:
            self.persisted[tp] = offset
            keep(tp, offset)

        store.set_persisted_offset = set_persisted_offset

    @property
    def sent(self) -> list[tuple[str, int, Batch, asyncio.Future[Metadata]]]:
        return self.producer._producer.sent

    def partition(self, partition: int) -> TableStore:
        return TableStore(self.table, partition)

    def stored(self, partition: int) -> dict[bytes, bytes]:
        """What the local store holds for ``partition``, keys as stored."""
        store: Any = self.table.data
        if self.store == "memory://":
            return {k: v for k, v in store.data.items() if k.startswith(f"{partition}|".encode())}
        path = str(store.partition_path(partition))
        db: Any = Rdict(path, Options(raw_mode=True), access_type=AccessType.read_only())
        try:  # opened read-only beside Faust's handle; Faust's own offset key left out
            return {bytes(k): bytes(v) for k, v in db.items() if not bytes(k).startswith(b"__faust")}
        finally:
            db.close()


STORES = ["dict", "memory://", "rocksdb://"]
FAUST_STORES = STORES[1:]


@pytest.fixture
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[int], StateStore]]:
    """The state store of a partition, on the store type the test is parametrised with."""
    if request.param == "dict":
        dicts: dict[int, DictStore] = {}
        yield lambda partition: dicts.setdefault(partition, DictStore())  # a dict store holds one partition
    else:
        yield Faust(request.param, tmp_path, capacity=1000).partition


@pytest.fixture
def tables(request: pytest.FixtureRequest, tmp_path: Path) -> Faust:
    """A Faust table on the store type the test is parametrised with; two changelog records a batch."""
    return Faust(request.param, tmp_path, capacity=2)


@pytest.mark.parametrize("stores", STORES, indirect=True)
def test_get_put_delete(stores: Callable[[int], StateStore]) -> None:
    store = stores(0)
    assert store.get(b"LGG") is None
    store.put(b"LGG", b"v1")
    store.put(b"LGG", b"v2")
    assert store.get(b"LGG") == b"v2"
    store.delete(b"LGG")
    assert store.get(b"LGG") is None
    store.delete(b"LGG")  # deleting what is not there is no error
    assert list(store.keys()) == []


@pytest.mark.parametrize("stores", STORES, indirect=True)
def test_keys_by_prefix_are_those_of_the_prefix_and_partition_only(stores: Callable[[int], StateStore]) -> None:
    partition = stores(1)
    for key in (b"DXB/P1", b"KUL/P9", b"LGG", b"LGG/P2", b"LGG/P1", b"LGH/P1", b"SVO/P3", b"#applied/1"):
        partition.put(key, b"v")
    partition.delete(b"KUL/P9")
    other = stores(11)  # "1|" is a prefix of "11|" only without the separator
    other.put(b"LGG", b"other")
    other.put(b"LGG/P7", b"v")
    assert sorted(partition.keys(b"LGG/")) == [b"LGG/P1", b"LGG/P2"]
    assert sorted(partition.keys(b"KUL/")) == []
    assert len(list(partition.keys())) == 7
    assert partition.get(b"LGG") == b"v" and other.get(b"LGG") == b"other"  # one key per partition
    assert list(other.keys(b"LGG")) == [b"LGG", b"LGG/P7"]


@pytest.mark.parametrize("tables", FAUST_STORES, indirect=True)
def test_keys_are_stored_under_the_partition_number(tables: Faust) -> None:
    """Faust's memory store keeps every partition in one mapping, and each partition has an ``LGG`` key."""
    tables.partition(1).put(b"LGG", b"one")
    tables.partition(11).put(b"LGG", b"eleven")
    tables.partition(1).put(b"LGG/P1", b"v")
    tables.partition(1).delete(b"LGG/P1")
    assert tables.stored(1) == {b"1|LGG": b"one"}
    assert tables.stored(11) == {b"11|LGG": b"eleven"}


async def _written_sends_each_key_once_and_waits(tables: Faust) -> None:
    sent = tables.sent  # two records a batch: three keys make two batches
    store = tables.partition(2)
    store.put(b"visit:LGG:P1", b"v1")
    store.put(b"visit:LGG:P2", b"v2")
    store.put(b"hub:LGG", b"state-1")
    store.delete(b"visit:LGG:P1")
    store.put(b"hub:LGG", b"state-2")  # the hub value, written last, is sent last
    # under the partition's number
    assert tables.stored(2) == {b"2|visit:LGG:P2": b"v2", b"2|hub:LGG": b"state-2"}
    assert sent == []  # nothing goes out before the batch is written
    written = asyncio.ensure_future(store.written())
    await asyncio.sleep(0)
    assert [(t, p, b.records) for t, p, b, _ in sent] == [
        (CHANGELOG, 2, [(b"2|visit:LGG:P2", b"v2"), (b"2|visit:LGG:P1", None)]),
        (CHANGELOG, 2, [(b"2|hub:LGG", b"state-2")]),
    ]
    sent[1][3].set_result(Metadata(42))  # the second batch's first record is at offset 42
    await asyncio.sleep(0)
    assert not written.done()  # one batch is not on the broker yet
    assert tables.persisted == {}
    sent[0][3].set_result(Metadata(40))
    await asyncio.wait_for(written, timeout=5)
    assert tables.persisted == {TP(CHANGELOG, 2): 42}  # the last record's offset
    if tables.store == "rocksdb://":  # kept in the partition's database, where recovery reads it
        data: Any = tables.table.data
        assert data.persisted_offset(TP(CHANGELOG, 2)) == 42
    # send_batch does no metadata lookup: the changelog must be among the topics the client refreshes
    assert tables.producer._producer.client.tracked == {CHANGELOG}
    await asyncio.wait_for(store.written(), timeout=5)  # nothing written since: returns at once
    assert len(sent) == 2


async def _a_failed_record_fails_the_wait(tables: Faust) -> None:
    store = tables.partition(0)
    store.put(b"k", b"v")
    written = asyncio.ensure_future(store.written())
    await asyncio.sleep(0)
    tables.sent[0][3].set_exception(RuntimeError("broker refused"))
    with pytest.raises(RuntimeError, match="broker refused"):
        await written
    assert tables.persisted == {}  # a failed batch does not move the persisted offset


@pytest.mark.parametrize("tables", FAUST_STORES, indirect=True)
def test_written_sends_each_key_once_in_order_of_last_write_and_waits_for_the_broker(tables: Faust) -> None:
    asyncio.run(_written_sends_each_key_once_and_waits(tables))


@pytest.mark.parametrize("tables", FAUST_STORES, indirect=True)
def test_a_changelog_record_the_broker_refused_fails_the_wait(tables: Faust) -> None:
    asyncio.run(_a_failed_record_fails_the_wait(tables))
