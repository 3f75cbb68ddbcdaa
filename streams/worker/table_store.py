"""A partition of a Faust table as the aggregation's :class:`~streams.aggregate.aggregator.StateStore`.

The one module that reaches into Faust's private parts, because Faust offers no public way to do
what the worker needs: its stores pick the partition of a key from the event being processed
(``current_event()``), while a worker batch holds events of several partitions, so this store
opens the partition's own RocksDB database (``_db_for_partition``) and keeps Faust's key index
(``_key_index``, an LRU cache of key -> partition) as Faust's own writes do. It sends the
changelog through the aiokafka producer under Faust's, reached through :mod:`streams.kafka.clients`
(the one place for that). A Faust upgrade that moves any of these fails the shared store tests
(``tests/unit/test_table_store.py``) rather than the broker suite.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, MutableMapping
from typing import Any

from faust.types import TP, TableT

from streams.kafka import clients


class TableStore:
    """One partition of a Faust table as the aggregator's key-value store.

    Keys are stored under the partition's number (``3|LGG``): Faust's memory store keeps every
    partition in one mapping, and the first stage has a ``LGG`` key in each of its partitions.
    The changelog carries the same keys, so a changelog restores into either store.

    Writes go to the local store at once; their changelog records are sent by :meth:`written`, once
    per key and batch (the last value of a key is the only one recovery needs), straight to the
    producer with the partition given explicitly: the batch being processed may hold events of
    several partitions, so Faust's "current event" cannot tell which one a key belongs to. With
    the RocksDB store the partition's own database is used for the same reason.

    Not ``Table.send_changelog``: that goes through Faust's producer buffer (~7x the cost of a
    direct send, and it pauses the intake whenever more than 100 records are pending), and Faust's
    commit does not reliably drain it. :meth:`written` returns once the broker holds every record,
    sent in the order of each key's last write: a hub's value (with its applied offsets) is written
    after its visits, so a crash part-way leaves visits ahead of the offsets (re-applied
    harmlessly), never offsets ahead of the visits (re-delivered scans skipped, updates lost). Then it
    records the partition's persisted offset as Faust's own changelog callback does; the agent
    calls it before its batch is acknowledged, so offsets are committed only once the batch's
    state would survive a SIGKILL.
    """

    def __init__(self, table: TableT[bytes, bytes], partition: int) -> None:
        self.table = table
        self.partition = partition
        self._prefix = f"{partition}|".encode()
        self._pending: dict[bytes, bytes | None] = {}  # stored key -> last value (None: deleted), by last write
        store = table.data
        # Faust-private (see the module's docstring): the partition's RocksDB database, None for the
        # memory store (one mapping for all partitions), and the RocksDB store's key -> partition cache.
        self._db = store._db_for_partition(partition) if hasattr(store, "_db_for_partition") else None  # noqa: SLF001
        self._key_index: MutableMapping[bytes, int] = getattr(store, "_key_index", {})

    def get(self, key: bytes) -> bytes | None:
        """Current value of ``key``."""
        stored = self._prefix + key
        value = self.table.data.get(stored) if self._db is None else self._db.get(stored)
        return None if value is None else bytes(value)

    def _changed(self, key: bytes, value: bytes | None) -> None:
        self._pending.pop(key, None)  # re-inserted: the order is that of the last writes
        self._pending[key] = value

    def put(self, key: bytes, value: bytes) -> None:
        """Set ``key`` locally; its changelog record goes with the batch's (:meth:`written`)."""
        stored = self._prefix + key
        if self._db is None:
            self.table.data[stored] = value
        else:
            self._db.put(stored, value)
            self._key_index[stored] = self.partition  # as Faust's own _set does
        self._changed(stored, value)

    def delete(self, key: bytes) -> None:
        """Remove ``key`` locally; its tombstone goes with the batch's changelog records."""
        stored = self._prefix + key
        if self._db is None:
            self.table.data.pop(stored, None)
        else:
            self._db.delete(stored)
            self._key_index.pop(stored, None)
        self._changed(stored, None)

    async def written(self) -> None:
        """Send the changelog records written so far; return once the broker holds them all.

        The records go out as whole record batches built here (aiokafka's ``create_batch`` /
        ``send_batch``: a few per partition and agent batch), not one ``send`` each: a future, a
        callback and an accumulator append per record cost more than the aggregation of the scan
        that wrote it. Batches of one partition are delivered in the order sent, so the last-write
        order holds. Raises if one of them failed for good (the batch must not be acknowledged then).
        """
        pending, self._pending = self._pending, {}
        if not pending:
            return
        topic = self.table.changelog_topic.get_topic_name()
        producer = clients.faust_kafka_producer(self.table.app)
        await clients.track_topics(producer, [topic])  # send_batch does no metadata lookup
        batches = [producer.create_batch()]
        for key, value in pending.items():
            if batches[-1].append(key=key, value=value, timestamp=None) is None:  # full
                batches.append(producer.create_batch())
                batches[-1].append(key=key, value=value, timestamp=None)  # a first record always fits
        deliveries = [await producer.send_batch(batch, topic, partition=self.partition) for batch in batches]
        delivered = await asyncio.gather(*deliveries)  # each is the offset of its batch's first record
        last = delivered[-1].offset + batches[-1].record_count() - 1
        # What keeps recovery from re-reading the whole changelog (a no-op for the memory store).
        store: Any = self.table.data  # typed as a mapping in Faust; it is the table's StoreT
        store.set_persisted_offset(TP(topic, self.partition), last)

    def keys(self, prefix: bytes = b"") -> Iterable[bytes]:
        """Keys of this partition that start with ``prefix``.

        RocksDB keeps keys sorted: the scan seeks to ``prefix`` and stops after its last key, so it
        costs what it returns, not what the partition holds.
        """
        start, cut = self._prefix + prefix, len(self._prefix)
        if self._db is None:
            return [k[cut:] for k in self.table.data.keys() if k.startswith(start)]
        keys = []
        for raw in self._db.keys(from_key=start):
            key = bytes(raw)
            if not key.startswith(start):
                break
            keys.append(key[cut:])
        return keys
