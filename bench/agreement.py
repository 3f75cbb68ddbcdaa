"""Do the peers compute what parcelflow computes? Compare the closed windows the three emitted.

Reads the output of the peers' runs with parcelflow's 120 s grace (groups ``t-quixg-…`` and
``t-kstreamsg-…``) and parcelflow's throughput topic of the same prefix.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

from streams.kafka.admin import list_topics
from streams.kafka.clients import ConsumerConfig, consumer_client, partitions_of
from streams.kafka.codec import ThroughputCodec
from streams.kafka.topics import Topics
from streams.settings import Settings

Windows = dict[tuple[str, str, int], tuple[int, int]]  # (hub, flow, start ms) → (parcels, grams)


async def _records(bootstrap: str, topic: str) -> list[tuple[bytes, bytes]]:
    async with consumer_client(ConsumerConfig(bootstrap)) as consumer:
        partitions = await partitions_of(consumer, [topic])
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        out: list[tuple[bytes, bytes]] = []
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                out.extend((r.key or b"", r.value or b"") for r in records)
        return out


def parcelflow_windows(records: list[tuple[bytes, bytes]]) -> Windows:
    """1-minute windows of the throughput topic (the last revision of each)."""
    codec = ThroughputCodec()
    windows: Windows = {}
    for _, value in records:
        w = codec.decode(value)
        if w.size_ms == 60_000:
            windows[(w.hub, w.flow, w.start_ms)] = (w.parcels, w.grams)
    return windows


def quix_windows(records: list[tuple[bytes, bytes]]) -> Windows:
    """Key ``hub|flow``, value JSON with start, parcels, grams."""
    windows: Windows = {}
    for key, value in records:
        hub, flow = key.decode().split("|")
        v = json.loads(value)
        windows[(hub, flow, int(v["start"]))] = (int(v["parcels"]), int(v["grams"]))
    return windows


def kafka_streams_windows(records: list[tuple[bytes, bytes]]) -> Windows:
    """Key ``hub|flow|60|start``, value JSON with parcels, grams."""
    windows: Windows = {}
    for key, value in records:
        hub, flow, _, start = key.decode().split("|")
        v = json.loads(value)
        windows[(hub, flow, int(start))] = (int(v["parcels"]), int(v["grams"]))
    return windows


@dataclass(frozen=True)
class Agreement:
    """Closed windows of a peer next to parcelflow's."""

    peer: str
    peer_windows: int
    parcelflow_windows: int
    common: int
    equal: int
    parcels_share: float  # peer's parcels / parcelflow's, summed over the windows both closed


def compare(bootstrap: str, prefix: str) -> list[Agreement]:
    """Each peer's windows against parcelflow's, on the windows both closed."""
    ours = parcelflow_windows(asyncio.run(_records(bootstrap, Topics(prefix).throughput)))
    results = []
    for peer, marker, parse in (
        ("Quix Streams", ".t-quixg-", quix_windows),
        ("Kafka Streams", ".t-kstreamsg-", kafka_streams_windows),
    ):
        theirs: Windows = {}
        deadline = time.monotonic() + 30  # a peer's last windows may reach the broker as it stops
        while not theirs and time.monotonic() < deadline:
            names = asyncio.run(list_topics(Settings(bootstrap=bootstrap)))
            outputs = sorted(n for n in names if n.startswith(prefix) and marker in n and n.endswith(".windows"))
            theirs = parse(asyncio.run(_records(bootstrap, outputs[0]))) if outputs else {}
            time.sleep(0 if theirs else 1)
        common = ours.keys() & theirs.keys()
        equal = sum(1 for k in common if ours[k] == theirs[k])
        share = sum(theirs[k][0] for k in common) / max(1, sum(ours[k][0] for k in common))
        results.append(Agreement(peer, len(theirs), len(ours), len(common), equal, round(share, 4)))
    return results
