"""Pure helpers of the benchmark: medians, nearest-rank quantiles, publish→metric latency matching."""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Sequence


def median(values: Sequence[float]) -> float:
    """Median of the repetitions (the figure the table shows)."""
    return float(statistics.median(values))


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile: value number ceil(q·n) of the sorted values."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def publish_to_count_latencies(
    published: Sequence[tuple[float, int]], scrapes: Sequence[tuple[float, float]]
) -> list[float]:
    """Seconds from publishing event k until a scrape counted at least k events, for every event.

    ``published``: (time, cumulative events sent) after each send burst, in time order.
    ``scrapes``: (time, events counted by the worker, net of any warm-up) in time order.
    Event k is taken as counted at the first scrape whose count reaches k (counts are cumulative, so
    this matches by position in the stream; events of different partitions may overtake each other,
    which moves single events but not the distribution). Events never counted are left out.
    """
    counts = [count for _, count in scrapes]
    for earlier, later in zip(counts, counts[1:], strict=False):
        if later < earlier:
            raise ValueError("scraped counts must not decrease")
    latencies = []
    sent_before = 0
    for sent_at, sent in published:
        for k in range(sent_before + 1, sent + 1):
            index = bisect.bisect_left(counts, k)
            if index == len(counts):
                break
            latencies.append(max(0.0, scrapes[index][0] - sent_at))
        sent_before = sent
    return latencies


def cpu_per_event_by_hour(samples: Sequence[tuple[float, float, float]], start_ms: int) -> dict[int, float]:
    """CPU µs per event in each hour of event time the samples span.

    ``samples``: (CPU seconds, events counted, event time reached in ms) of the workers, summed
    (CPU, events) and newest (event time), scraped in time order. Each sample is put in the hour of
    its event time (hour 0 starts at ``start_ms``); an hour's figure is the CPU spent over the events
    counted between the sample before its first one and its last one, so consecutive hours share no
    events and a gap in the scrapes only widens the span measured. A sample that counted no new
    events is left out (the CPU of a pause is charged to the events after it; the idle time after
    the last event is not charged at all).
    """
    by_hour: dict[int, float] = {}
    previous: tuple[float, float, float] | None = None
    first_of_hour: dict[int, tuple[float, float]] = {}
    last_of_hour: dict[int, tuple[float, float]] = {}
    for sample in samples:
        cpu, events, event_ms = sample
        if previous is not None and events <= previous[1]:
            continue
        hour = int((event_ms - start_ms) // 3_600_000)
        if hour not in first_of_hour:
            base = previous if previous is not None else sample
            first_of_hour[hour] = (base[0], base[1])
        last_of_hour[hour] = (cpu, events)
        previous = sample
    for hour, (cpu0, events0) in first_of_hour.items():
        cpu1, events1 = last_of_hour[hour]
        by_hour[hour] = (cpu1 - cpu0) / (events1 - events0) * 1e6 if events1 > events0 else 0.0
    return {hour: us for hour, us in sorted(by_hour.items()) if us > 0}
