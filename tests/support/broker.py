"""The real broker the tests run against: its address, names and ports no other test uses, dates older
than its retention."""

from __future__ import annotations

import os
import random
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Broker:
    """The session's broker: its address, and its data dir when this session started it."""

    bootstrap: str
    data_dir: Path | None


RETENTION_CHECK_MS = 1000
"""How often the session's broker enforces time retention (log.retention.check.interval.ms)."""


def days_ago_ms(days: int) -> int:
    """00:00 UTC ``days`` days before today: history older than any default retention, whatever today is.

    Always midnight, never "now minus so many hours": the simulator's timetable repeats daily (a
    20-minute run at 18:00 has no truck at all), so a run must start at the same time of day
    whatever the hour the test runs at. ``PARCELFLOW_TEST_EXTRA_DAYS`` ages every such date by
    that many days more: the suite run with 60 shows that data 60 days older than the machine's
    clock changes nothing.
    """
    day_ms = 86_400_000
    extra = int(os.environ.get("PARCELFLOW_TEST_EXTRA_DAYS", "0"))
    return (int(time.time() * 1000) // day_ms - days - extra) * day_ms


_handed_out: set[int] = set()


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_ports(count: int) -> int:
    """First of ``count`` consecutive free TCP ports on 127.0.0.1, none handed out before.

    Below Linux's ephemeral range (32768+): a port from there can be taken by a client
    connection's local end between this check and the server's bind.
    """
    rng = random.Random()
    for _ in range(1000):
        first = rng.randrange(20_000, 32_000 - count)
        ports = range(first, first + count)
        if not _handed_out.intersection(ports) and all(_bindable(p) for p in ports):
            _handed_out.update(ports)
            return first
    raise RuntimeError(f"no {count} consecutive free ports on 127.0.0.1")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    return free_ports(1)


def unique_name(stem: str) -> str:
    """A topic prefix / group id no other test uses."""
    return f"t-{stem}-{uuid.uuid4().hex[:10]}"
