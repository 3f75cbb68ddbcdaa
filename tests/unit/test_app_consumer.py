"""The worker's Faust consumer re-reads a stream partition that has nothing committed after a rebalance."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any
from unittest import mock

from aiokafka import TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.settings import Settings
from streams.worker.app import _Consumer, build_app

BY_HUB = "p.app.by-hub"
CHANGELOG = "app-partition-state-changelog"


def _seeks(committed: dict[TopicPartition, int | None]) -> list[tuple[TopicPartition, int]]:
    consumer = _Consumer.__new__(_Consumer)  # no broker: only the method under test runs
    app: Any = SimpleNamespace(topics=SimpleNamespace(acks_enabled_for=lambda topic: topic == BY_HUB))
    consumer.app = app  # a stand-in: the method under test reads only topics.acks_enabled_for
    seek = mock.AsyncMock()
    with (
        mock.patch.object(faust_aiokafka.Consumer, "seek_to_committed", mock.AsyncMock(return_value=committed)),
        mock.patch.object(_Consumer, "seek", seek),
    ):
        assert asyncio.run(consumer.seek_to_committed()) == committed  # Faust's bookkeeping is unchanged
    return [call.args for call in seek.call_args_list]


def test_a_stream_partition_with_nothing_committed_is_read_from_its_start() -> None:
    # aiokafka leaves it where the fetch got to: what Faust fetched and dropped while its flow was
    # suspended would be lost.
    none, zero = TopicPartition(BY_HUB, 0), TopicPartition(BY_HUB, 1)
    assert _seeks({none: None, zero: 0}) == [(none, 0), (zero, 0)]


def test_committed_partitions_and_changelogs_are_left_to_faust() -> None:
    committed, changelog = TopicPartition(BY_HUB, 2), TopicPartition(CHANGELOG, 0)
    assert _seeks({committed: 17, changelog: None}) == []


def test_the_worker_app_uses_it() -> None:
    app, _metrics = build_app(Settings(bootstrap="127.0.0.1:9", topic_prefix="p", app_id="app"))
    assert app.transport.Consumer is _Consumer
