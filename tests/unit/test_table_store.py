"""The table store sends a batch's changelog once per key and waits for it before the batch is acked."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from faust.types import TP

from streams.agents import TableStore


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


class Producer:
    """Faust's producer surface the store uses: ``send`` returns a delivery we resolve by hand."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None, int, asyncio.Future[Metadata]]] = []

    async def send(
        self, topic: str, key: bytes, value: bytes | None, partition: int, timestamp: None, headers: None
    ) -> asyncio.Future[Metadata]:
        delivered: asyncio.Future[Metadata] = asyncio.get_running_loop().create_future()
        self.sent.append((topic, key, value, partition, delivered))
        return delivered


class ChangelogTopic:
    def get_topic_name(self) -> str:
        return "app-hub-state-changelog"


class App:
    def __init__(self) -> None:
        self.producer = Producer()


class Table:
    """A Faust table's surface the store uses."""

    def __init__(self) -> None:
        self.data = Data()
        self.app = App()
        self.changelog_topic = ChangelogTopic()


async def _written_sends_each_key_once_and_waits() -> None:
    table = Table()
    sent = table.app.producer.sent
    store = TableStore(cast(Any, table), 2)
    store.put(b"visit:LGG:P1", b"v1")
    store.put(b"hub:LGG", b"state-1")
    store.delete(b"visit:LGG:P1")
    store.put(b"hub:LGG", b"state-2")  # the hub value, written last, is sent last
    assert table.data == {b"hub:LGG": b"state-2"}
    assert sent == []  # nothing goes out before the batch is written
    written = asyncio.ensure_future(store.written())
    await asyncio.sleep(0)
    assert [(t, k, v, p) for t, k, v, p, _ in sent] == [
        ("app-hub-state-changelog", b"visit:LGG:P1", None, 2),
        ("app-hub-state-changelog", b"hub:LGG", b"state-2", 2),
    ]
    sent[1][4].set_result(Metadata(41))
    await asyncio.sleep(0)
    assert not written.done()  # one record is not on the broker yet
    assert table.data.persisted == {}
    sent[0][4].set_result(Metadata(40))
    await asyncio.wait_for(written, timeout=5)
    assert table.data.persisted == {TP("app-hub-state-changelog", 2): 41}
    await asyncio.wait_for(store.written(), timeout=5)  # nothing written since: returns at once
    assert len(sent) == 2


async def _a_failed_record_fails_the_wait() -> None:
    table = Table()
    store = TableStore(cast(Any, table), 0)
    store.put(b"k", b"v")
    written = asyncio.ensure_future(store.written())
    await asyncio.sleep(0)
    table.app.producer.sent[0][4].set_exception(RuntimeError("broker refused"))
    with pytest.raises(RuntimeError, match="broker refused"):
        await written
    assert table.data.persisted == {}  # a failed batch does not move the persisted offset


def test_written_sends_each_key_once_in_order_of_last_write_and_waits_for_the_broker() -> None:
    asyncio.run(_written_sends_each_key_once_and_waits())


def test_a_changelog_record_the_broker_refused_fails_the_wait() -> None:
    asyncio.run(_a_failed_record_fails_the_wait())
