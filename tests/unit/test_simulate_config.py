from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from streams.pacing import SpeedError, parse_speed
from streams.simulate.config import ConfigError, SimConfig, parse_duration, parse_start


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("45m", 2700), ("6h", 21600), ("2d", 172800), ("1h30m", 5400), ("1.5h", 5400)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "2x", "h", "0", "0.5s", "1h 30x", "-5m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_duration(text)


@pytest.mark.parametrize(("text", "speed"), [("max", None), ("MAX", None), ("1", 1.0), ("60", 60.0), ("0.5", 0.5)])
def test_speeds(text: str, speed: float | None) -> None:
    assert parse_speed(text) == speed


@pytest.mark.parametrize("text", ["fast", "0", "-1", ""])
def test_bad_speeds(text: str) -> None:
    with pytest.raises(SpeedError):
        parse_speed(text)


def test_starts() -> None:
    assert parse_start("2026-11-23T00:00:00Z") == 1_795_392_000_000
    assert parse_start("2026-11-23T01:00:00+01:00") == 1_795_392_000_000
    now = datetime(2026, 11, 24, 10, 17, 42, 123456, tzinfo=UTC)
    assert parse_start("now", now=now) == parse_start("2026-11-24T10:17:42Z")
    with pytest.raises(ConfigError, match="time zone"):
        parse_start("2026-11-23T00:00:00")
    with pytest.raises(ConfigError, match="ISO 8601"):
        parse_start("the day before")


def test_a_config_names_its_start_so_no_run_depends_on_the_calendar() -> None:
    with pytest.raises(TypeError, match="start_ms"):
        SimConfig(seed=1)  # type: ignore[call-arg]
    config = SimConfig(start_ms=parse_start("2026-11-23T00:00:00Z"), duration_s=60)
    assert config.start_iso == "2026-11-23T00:00:00Z"
    assert config.end_ms == config.start_ms + 60_000


def test_day_aligned_starts() -> None:
    now = datetime(2026, 11, 24, 0, 0, 0, 1000, tzinfo=UTC)
    assert parse_start("today", now) == parse_start("2026-11-24T00:00:00Z")
    assert parse_start("yesterday", now) == parse_start("2026-11-23T00:00:00Z")
    late = datetime(2026, 11, 24, 23, 59, 59, tzinfo=UTC)
    assert parse_start("Yesterday", late) == parse_start("yesterday", now)


def test_the_cli_default_start_follows_the_calendar() -> None:
    from streams.cli import SIM_START

    assert parse_start(SIM_START, datetime(2027, 3, 1, 12, tzinfo=UTC)) == parse_start("2027-02-28T00:00:00Z")


@pytest.mark.parametrize(
    "changes",
    [
        {"duration_s": 0},
        {"scale": 0},
        {"disorder": 1.0},
        {"late": -0.1},
        {"corrupt": 1.5},
        {"disorder": 0.6, "late": 0.5},
        {"disorder_max_s": 0},
        {"late_delay_s": -1},
        {"start_ms": 0},
    ],
)
def test_invalid_configs(changes: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        SimConfig(**{"start_ms": parse_start("2026-11-23T00:00:00Z"), **changes})  # type: ignore[arg-type]


def test_start_relative_to_now() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 24, 12, 0, 0, 500_000, tzinfo=UTC)
    assert parse_start("now-24h", now) == parse_start("2026-11-23T12:00:00Z")
    assert parse_start("now", now) == parse_start("2026-11-24T12:00:00Z")
    with pytest.raises(ConfigError):
        parse_start("now-soon", now)


@pytest.mark.parametrize("field", ["disorder_max_s", "late_delay_s"])
@pytest.mark.parametrize("value", [0.0, -1.0, float("nan"), float("inf")])
def test_delays_must_be_positive_and_finite(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match="positive and finite"):
        wrong: dict[str, Any] = {field: value}  # a float where the field is a whole number of seconds
        SimConfig(start_ms=1_795_392_000_000, **wrong)
