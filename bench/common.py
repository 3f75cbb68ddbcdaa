"""Shared bench plumbing: a broker (started here or KAFKA_BOOTSTRAP), a schema registry (started here or
SCHEMA_REGISTRY_URL), results as JSON."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.broker import free_port
from tests.support.paths import KAFKA_SH, REGISTRY_SH

RESULTS = Path(__file__).resolve().parent / "results"
START_MS = 1_795_392_000_000
"""2026-11-23T00:00:00Z: the simulated events' start, so every bench run times the same events (the
bench's source topics are created with unlimited time retention: the broker keeps them)."""


@contextmanager
def broker() -> Iterator[str]:
    """Bootstrap address of a real broker: KAFKA_BOOTSTRAP, or one started and stopped here."""
    existing = os.environ.get("KAFKA_BOOTSTRAP")
    if existing:
        yield existing
        return
    with tempfile.TemporaryDirectory(prefix="parcelflow-bench-") as data:
        flags = ["--dir", data, "--port", str(free_port()), "--controller-port", str(free_port())]
        started = subprocess.run([str(KAFKA_SH), "start", *flags], capture_output=True, text=True, check=False)
        if started.returncode != 0:
            raise SystemExit(f"broker did not start: {started.stderr.strip().splitlines()[-1:]}")
        try:
            yield started.stdout.strip().splitlines()[-1]
        finally:
            subprocess.run([str(KAFKA_SH), "stop", "--dir", data], check=False)


@contextmanager
def schema_registry() -> Iterator[str]:
    """URL of a real schema registry: SCHEMA_REGISTRY_URL, or one started and stopped here."""
    existing = os.environ.get("SCHEMA_REGISTRY_URL")
    if existing:
        yield existing.rstrip("/")
        return
    with tempfile.TemporaryDirectory(prefix="parcelflow-bench-registry-") as data:
        flags = ["--dir", data, "--port", str(free_port()), "--management-port", str(free_port())]
        started = subprocess.run([str(REGISTRY_SH), "start", *flags], capture_output=True, text=True, check=False)
        if started.returncode != 0:
            raise SystemExit(f"schema registry did not start: {started.stderr.strip().splitlines()[-1:]}")
        try:
            yield started.stdout.strip().splitlines()[-1]
        finally:
            subprocess.run([str(REGISTRY_SH), "stop", "--dir", data], check=False)


def rss_mib(pid: int) -> float:
    """Resident set size of a process, MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def save(name: str, figures: dict[str, object]) -> Path:
    """Write figures as bench/results/<name>-<time>.json and return the path."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(figures, indent=2, sort_keys=True))
    return path


def table(rows: list[tuple[str, str]]) -> str:
    """A two-column text table."""
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
