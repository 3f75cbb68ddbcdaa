"""The table store waits for its changelog records: a batch is acknowledged only once its state is durable."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from streams.agents import TableStore


class Table:
    """A Faust table's surface the store uses: a memory store and a changelog whose sends we resolve."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.sent: list[tuple[int, bytes, bytes | None, asyncio.Future[None]]] = []

    def send_changelog(self, partition: int, key: bytes, value: bytes | None, **_: Any) -> asyncio.Future[None]:
        delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sent.append((partition, key, value, delivered))
        return delivered


async def _written_waits_for_every_record() -> None:
    table = Table()
    store = TableStore(cast(Any, table), 2)
    store.put(b"hub:LGG", b"state")
    store.delete(b"visit:LGG:P1")
    assert table.data == {b"hub:LGG": b"state"}
    assert [(p, k, v) for p, k, v, _ in table.sent] == [(2, b"hub:LGG", b"state"), (2, b"visit:LGG:P1", None)]
    written = asyncio.ensure_future(store.written())
    table.sent[0][3].set_result(None)
    await asyncio.sleep(0)
    assert not written.done()  # one record is not on the broker yet
    table.sent[1][3].set_result(None)
    await asyncio.wait_for(written, timeout=5)
    await asyncio.wait_for(store.written(), timeout=5)  # nothing written since: returns at once


async def _a_failed_record_fails_the_wait() -> None:
    table = Table()
    store = TableStore(cast(Any, table), 0)
    store.put(b"k", b"v")
    table.sent[0][3].set_exception(RuntimeError("broker refused"))
    with pytest.raises(RuntimeError, match="broker refused"):
        await store.written()


def test_written_returns_once_the_broker_holds_every_changelog_record() -> None:
    asyncio.run(_written_waits_for_every_record())


def test_a_changelog_record_the_broker_refused_fails_the_wait() -> None:
    asyncio.run(_a_failed_record_fails_the_wait())
