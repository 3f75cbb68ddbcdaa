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
