"""Quix Streams peer: parcels and grams per hub and flow in 1-minute event-time tumbling windows.

    python -m bench.peers.quix_throughput --bootstrap HOST:PORT --prefix P --group G --output TOPIC \
        --state-dir D [--grace-ms MS]

The same work as parcelflow's throughput windows, written the way Quix Streams is meant to be used:
the three source topics decoded with fastavro through ``streams.kafka.codec.Codec`` (the same codec, no
validation), the event time taken from the decoded record, a re-key by hub and flow (``group_by``:
Quix's repartition topic), a 60 s tumbling window with 120 s grace summing parcels and grams, and
only closed windows (``final()``) sent to the output topic. Prints ``first <unix time>`` when the first
record is decoded, so the bench can time processing apart from start-up. Runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from typing import Any

from quixstreams import Application
from quixstreams.dataframe.windows import Count, Sum
from quixstreams.models.serializers import Deserializer

from streams.events import FLOW_OF_EVENT_TYPE, datetime_to_ms
from streams.kafka.codec import Codec
from streams.kafka.topics import Topics

WINDOW_MS = 60_000
GRACE_MS = 120_000
COMMIT_INTERVAL_S = 2.8  # Faust's default commit interval, so "all committed" is detected alike


class ScanDeserializer(Deserializer):  # type: ignore[misc]  # quixstreams: untyped here (the peer venv)
    """Avro single-object bytes → the few fields the aggregation needs (hub, flow, time, grams)."""

    def __init__(self, codec: Codec) -> None:
        super().__init__()
        self.codec = codec
        self.first = True

    def __call__(self, value: bytes, ctx: Any) -> dict[str, Any]:
        if self.first:
            self.first = False
            print(f"first {time.time()}", flush=True)
        _source, record = self.codec.decode_record(value)
        header = record["header"]
        at = header["event_time"]
        flow = FLOW_OF_EVENT_TYPE.get(header["event_type"])
        return {
            "hub": header["hub"],
            "flow": None if flow is None else flow.value,
            "event_time_ms": datetime_to_ms(at) if isinstance(at, datetime) else int(at),
            "grams": header["weight_grams"] or 0,
        }


def event_time(value: Any, headers: Any, timestamp: int, timestamp_type: Any) -> int:
    """Window by the scan's own event time, not the record's."""
    return int(value["event_time_ms"])


def is_flow(value: dict[str, Any]) -> bool:
    """Only flow scans (inbound, sorted, outbound) are counted in the windows."""
    return value["flow"] is not None


def hub_and_flow(value: dict[str, Any]) -> str:
    """Aggregation key."""
    return f"{value['hub']}|{value['flow']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--grace-ms", type=int, default=GRACE_MS, help="event-time grace (parcelflow's default: 120 s)")
    args = parser.parse_args()
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        commit_interval=COMMIT_INTERVAL_S,
        state_dir=args.state_dir,
        loglevel="WARNING",
    )
    decode = ScanDeserializer(Codec())
    frames = [
        app.dataframe(app.topic(name, value_deserializer=decode, timestamp_extractor=event_time))
        for name in Topics(args.prefix).sources
    ]
    sdf = frames[0].concat(frames[1]).concat(frames[2])
    sdf = sdf.filter(is_flow).group_by(hub_and_flow, name="hub-flow")
    windows = sdf.tumbling_window(WINDOW_MS, grace_ms=args.grace_ms).agg(parcels=Count(), grams=Sum("grams")).final()
    windows.to_topic(app.topic(args.output, value_serializer="json", key_serializer="str"))
    app.run()
    sys.exit(0)


if __name__ == "__main__":
    main()
