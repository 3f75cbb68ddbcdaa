"""What a simulation run is: seed, simulated time span, volume and test impairments (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from streams import durations
from streams.errors import ParcelflowError
from streams.events import MAX_EVENT_TIME_MS, MIN_EVENT_TIME_MS, datetime_to_ms, ms_to_datetime

_DAY_MS = 86_400_000


class ConfigError(ParcelflowError):
    """A simulation option the simulator cannot use."""


@dataclass(frozen=True, kw_only=True)
class SimConfig:
    """Everything that determines a run's events: same config, same bytes.

    ``start_ms`` has no default on purpose: a run is only reproducible with its start given.
    """

    start_ms: int
    seed: int = 1
    duration_s: int = 86_400
    scale: float = 1.0
    disorder: float = 0.0
    disorder_max_s: float = 60.0
    late: float = 0.0
    late_delay_s: float = 1800.0
    corrupt: float = 0.0

    def __post_init__(self) -> None:
        if self.duration_s <= 0:
            raise ConfigError(f"duration must be positive, got {self.duration_s} s")
        if not (MIN_EVENT_TIME_MS <= self.start_ms and self.end_ms < MAX_EVENT_TIME_MS):
            raise ConfigError("start and end must lie between 2000 and 2100")
        if not 0 < self.scale <= 1000:
            raise ConfigError(f"scale must be in (0, 1000], got {self.scale}")
        for name in ("disorder", "late", "corrupt"):
            share = getattr(self, name)
            if not 0 <= share < 1:
                raise ConfigError(f"{name} share must be in [0, 1), got {share}")
        if self.disorder + self.late >= 1:
            raise ConfigError("disorder + late shares must stay below 1")
        if not (0 < self.disorder_max_s < math.inf and 0 < self.late_delay_s < math.inf):  # refuses NaN too
            raise ConfigError("disorder-max and late-delay must be positive and finite")

    @property
    def end_ms(self) -> int:
        """First millisecond after the simulated span: no event is at or after it."""
        return self.start_ms + self.duration_s * 1000

    @property
    def start_iso(self) -> str:
        """Start as ISO 8601 UTC with a ``Z``."""
        return ms_to_datetime(self.start_ms).isoformat().replace("+00:00", "Z")

    @property
    def disorder_max_ms(self) -> int:
        """Largest extra stream delay of an out-of-order event."""
        return round(self.disorder_max_s * 1000)

    @property
    def late_delay_ms(self) -> int:
        """Stream delay of a deliberately late event."""
        return round(self.late_delay_s * 1000)


def parse_duration(text: str) -> int:
    """``90``, ``90s``, ``45m``, ``6h``, ``2d``, ``1h30m`` → whole seconds (positive)."""
    try:
        return durations.parse_duration(text)
    except durations.DurationError as exc:
        raise ConfigError(str(exc)) from None


def parse_start(text: str, now: datetime | None = None) -> int:
    """ISO 8601 with a zone, ``now``, ``now-DURATION`` (``now-24h``), ``today`` or ``yesterday`` (00:00 UTC) → ms."""
    lowered = text.strip().lower()
    if lowered in ("today", "yesterday"):
        midnight = datetime_to_ms(now or datetime.now(UTC)) // _DAY_MS * _DAY_MS
        return midnight - (_DAY_MS if lowered == "yesterday" else 0)
    if lowered == "now" or lowered.startswith("now-"):
        moment = (now or datetime.now(UTC)).replace(microsecond=0)
        back = parse_duration(lowered[4:]) if lowered.startswith("now-") else 0
        return datetime_to_ms(moment) - back * 1000
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"start {text!r}: use ISO 8601 with a zone (e.g. 2026-11-23T00:00:00Z), 'now', 'now-24h', "
            "'today' or 'yesterday'"
        ) from None
    if moment.tzinfo is None:
        raise ConfigError(f"start {text!r} needs a time zone (e.g. a trailing Z)")
    return datetime_to_ms(moment)
