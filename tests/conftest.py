"""Fixtures: one real Kafka broker per test session (or KAFKA_BOOTSTRAP), a real schema registry for the
tests that ask for one (or SCHEMA_REGISTRY_URL), workers per test."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.broker import RETENTION_CHECK_MS, Broker, free_port
from tests.support.paths import KAFKA_SH, REGISTRY_SH
from tests.support.workers import WorkerProcess


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A real broker: KAFKA_BOOTSTRAP if set, else one started (and stopped) for the session.

    A broker that fails to start fails the tests that need it; it is never a skip.
    """
    existing = os.environ.get("KAFKA_BOOTSTRAP")
    if existing:
        yield Broker(existing, None)
        return
    data_dir = tmp_path_factory.mktemp("kafka")
    flags = ["--dir", str(data_dir), "--port", str(free_port()), "--controller-port", str(free_port())]
    # Time retention is enforced every RETENTION_CHECK_MS (Kafka's default: every 5 minutes), so a
    # test whose records some topic's retention would delete fails here, not on a later calendar day.
    retention = ["--config", f"log.retention.check.interval.ms={RETENTION_CHECK_MS}"]
    started = subprocess.run([str(KAFKA_SH), "start", *flags, *retention], capture_output=True, text=True, timeout=300)
    if started.returncode != 0:
        subprocess.run([str(KAFKA_SH), "stop", *flags[:2]], timeout=60)
        pytest.fail(f"the Kafka broker did not start:\n{started.stderr[-3000:]}", pytrace=False)
    try:
        yield Broker(started.stdout.strip().splitlines()[-1], data_dir)
    finally:
        subprocess.run([str(KAFKA_SH), "stop", *flags[:2]], timeout=60)


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: Broker) -> str:
    """Bootstrap address of the session's real broker."""
    return kafka_broker.bootstrap


@pytest.fixture(scope="session")
def schema_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real schema registry (Apicurio, Confluent-compatible API): SCHEMA_REGISTRY_URL if set,
    else one started (and stopped) for the session, the first time a test asks for it.

    A registry that fails to start fails the tests that need it; it is never a skip.
    """
    existing = os.environ.get("SCHEMA_REGISTRY_URL")
    if existing:
        yield existing.rstrip("/")
        return
    data_dir = tmp_path_factory.mktemp("registry")
    flags = ["--dir", str(data_dir), "--port", str(free_port()), "--management-port", str(free_port())]
    started = subprocess.run([str(REGISTRY_SH), "start", *flags], capture_output=True, text=True, timeout=300)
    if started.returncode != 0:
        subprocess.run([str(REGISTRY_SH), "stop", *flags[:2]], timeout=60)
        pytest.fail(f"the schema registry did not start:\n{started.stderr[-3000:]}", pytrace=False)
    try:
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([str(REGISTRY_SH), "stop", *flags[:2]], timeout=60)


@pytest.fixture
def start_worker(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start ``parcelflow worker`` processes for a test; every one is stopped by PID afterwards."""
    started: list[WorkerProcess] = []

    def start(prefix: str, app_id: str | None = None, registry: str | None = None) -> WorkerProcess:
        worker = WorkerProcess(kafka_bootstrap, prefix, tmp_path, app_id, registry)
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:
        worker.stop()
