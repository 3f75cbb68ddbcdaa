"""Both aggregation stages in one process, for the pure tests."""

from __future__ import annotations

from collections.abc import Iterable

from streams.aggregate.aggregator import BatchResult, HubAggregator, Limits, StateStore
from streams.aggregate.observation import Observation
from streams.aggregate.partials import HubMerge
from tests.support.stores import DictStore


class TwoStages:
    """The first stage on a given store, its partials merged at once by the second (the worker goes via Kafka)."""

    def __init__(self, limits: Limits | None = None, merge_store: DictStore | None = None) -> None:
        self.limits = limits or Limits()
        self.first = HubAggregator(self.limits)
        self.merge = HubMerge(self.limits.windows)  # its state is read from merge_store, as after a restart
        self.merge_store = merge_store if merge_store is not None else DictStore()

    def process(self, store: StateStore, observations: Iterable[Observation], now: float) -> BatchResult:
        return self.merged(self.first.process(store, observations, now))

    def merged(self, result: BatchResult) -> BatchResult:
        """``result`` with the windows its partials closed and the hubs' watermarks."""
        merged = self.merge.apply(self.merge_store, result.partials)
        result.closed, result.watermark_ms = merged.closed, merged.watermark_ms
        result.outcomes.update(merged.outcomes)
        return result

    def restarted(self) -> TwoStages:
        """A new process on the same merge store (the first stage's store is passed to each call)."""
        return TwoStages(self.limits, self.merge_store)
