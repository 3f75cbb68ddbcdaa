import pytest

from bench.stats import cpu_per_event_by_hour, median, publish_to_count_latencies, quantile


def test_median_of_repetitions() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0]) == 2.5


@pytest.mark.parametrize(("q", "expected"), [(0.5, 5), (0.9, 9), (0.99, 10), (1.0, 10), (0.01, 1)])
def test_quantile_is_nearest_rank(q: float, expected: int) -> None:
    assert quantile(list(range(10, 0, -1)), q) == expected


def test_latency_of_each_event_is_first_scrape_reaching_its_position() -> None:
    published = [(0.0, 2), (1.0, 4)]  # events 1-2 sent at t=0, events 3-4 at t=1
    scrapes = [(0.5, 0), (0.7, 1), (1.2, 3), (2.0, 4)]
    assert publish_to_count_latencies(published, scrapes) == pytest.approx([0.7, 1.2, 0.2, 1.0])


def test_events_never_counted_are_left_out() -> None:
    assert publish_to_count_latencies([(0.0, 3)], [(0.1, 1)]) == [pytest.approx(0.1)]


def test_decreasing_counts_are_refused() -> None:
    with pytest.raises(ValueError):
        publish_to_count_latencies([(0.0, 1)], [(0.1, 2), (0.2, 1)])


def test_profile_summary_by_area_and_inclusive_share() -> None:
    from bench.profile import summarise

    text = (
        "run (asyncio/events.py:80);count_scans (streams/worker/pipeline.py:100);decode (streams/kafka/codec.py:5) 3\n"
        "run (asyncio/events.py:80);_read (faust/streams.py:9) 1\n"
    )
    summary = summarise(text)
    assert summary["samples"] == 4
    assert summary["self_share_by_area"] == {"parcelflow (streams/)": 0.75, "faust": 0.25}
    assert summary["inclusive_share_parcelflow_functions"]["worker/pipeline.py:count_scans"] == 0.75
    assert summary["inclusive_share_top_functions"]["asyncio/events.py:run"] == 1.0


def test_cpu_per_event_by_hour_of_event_time() -> None:
    hour = 3_600_000
    samples = [
        (1.0, 0, 0),  # (CPU s, events, event time ms): the first scrape
        (2.0, 1000, hour // 2),  # hour 0: 1 s over 1000 events since the first scrape
        (3.0, 2000, hour + 1),  # hour 1 starts: its span begins at the last scrape of hour 0
        (7.0, 3000, 2 * hour - 1),  # hour 1: 5 s over 3000 - 1000 events
        (9.0, 4000, 5 * hour),  # hour 5 (hours 2-4 never scraped): 2 s over 1000 events
    ]
    assert cpu_per_event_by_hour(samples, 0) == pytest.approx({0: 1000.0, 1: 2500.0, 5: 2000.0})


def test_cpu_per_event_leaves_out_scrapes_without_new_events() -> None:
    hour = 3_600_000
    samples = [(1.0, 0, 0), (2.0, 10, 60_000), (3.0, 10, 60_000), (4.0, 20, hour), (9.0, 20, hour)]
    # The pause's second (2 -> 3 s) goes to the next events; the idle time at the end to nothing.
    assert cpu_per_event_by_hour(samples, 0) == pytest.approx({0: 100_000.0, 1: 200_000.0})
    assert cpu_per_event_by_hour([(1.0, 10, 0), (2.0, 10, 60_000)], 0) == {}
