"""Durations as people write them (``90s``, ``45m``, ``6h``, ``2d``) and Kafka retention (pure)."""

from __future__ import annotations

import re

from streams.errors import ParcelflowError

_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
UNLIMITED = -1
"""Kafka's ``retention.ms`` for "never delete by time"."""


class DurationError(ParcelflowError):
    """A duration or retention that cannot be read."""


def parse_duration(text: str) -> int:
    """``90``, ``90s``, ``45m``, ``6h``, ``2d``, ``1h30m`` → whole seconds (at least one)."""
    compact = text.strip().lower().replace(" ", "")
    if compact.isdigit():
        seconds = float(compact)
    else:
        parts = _PART.findall(compact)
        if not parts or "".join(n + u for n, u in parts) != compact:
            raise DurationError(f"cannot read duration {text!r} (e.g. 90s, 45m, 6h, 2d, 1h30m)")
        seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    if seconds < 1:
        raise DurationError(f"duration {text!r} is shorter than a second")
    return int(seconds)


def parse_retention(text: str) -> int:
    """``unlimited`` (or ``-1``) → -1, else a duration (``7d``, ``168h``) → Kafka ``retention.ms``."""
    lowered = text.strip().lower()
    if lowered in ("unlimited", "-1", "none", "forever"):
        return UNLIMITED
    try:
        return parse_duration(lowered) * 1000
    except DurationError:
        raise DurationError(f"cannot read retention {text!r} (e.g. unlimited, 30d, 168h)") from None


def describe_retention(retention_ms: int) -> str:
    """Retention for people: ``unlimited``, ``7d``, ``36h``, ``90m`` or ``45s``."""
    if retention_ms < 0:
        return "unlimited"
    seconds = retention_ms // 1000
    for unit in ("d", "h", "m"):
        if seconds and seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{retention_ms / 1000:g}s"
