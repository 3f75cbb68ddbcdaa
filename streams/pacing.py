"""Pacing a stream of timestamped records against the wall clock: real time, N×, or as fast as possible.

Used by the simulator (simulated clock) and by replay (original event times).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from streams.errors import ParcelflowError


class SpeedError(ParcelflowError):
    """A speed that is neither ``max`` nor a positive number."""


def parse_speed(text: str) -> float | None:
    """``max`` → ``None`` (as fast as possible); else simulated seconds per wall-clock second."""
    if text.strip().lower() == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        raise SpeedError(f"speed must be a number or 'max', got {text!r}") from None
    if not speed > 0:
        raise SpeedError(f"speed must be positive, got {text!r}")
    return speed


class Pacer:
    """Maps simulated time to wall-clock time at ``speed`` simulated seconds per second (``None``: no waits)."""

    def __init__(self, speed: float | None, sim_start_ms: int, now: Callable[[], float] = time.monotonic) -> None:
        self.speed = speed
        self.sim_start_ms = sim_start_ms
        self.now = now
        self.wall_start = now()

    def wait_s(self, clock_ms: int) -> float:
        """Seconds to wait before the simulated clock may show ``clock_ms``."""
        if self.speed is None:
            return 0.0
        due = self.wall_start + (clock_ms - self.sim_start_ms) / 1000 / self.speed
        return max(0.0, due - self.now())

    def sim_now(self, limit_ms: int) -> int:
        """The simulated time the wall clock stands for now (never beyond ``limit_ms``)."""
        if self.speed is None:
            return limit_ms
        return min(limit_ms, self.sim_start_ms + int((self.now() - self.wall_start) * self.speed * 1000))
