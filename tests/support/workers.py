"""``parcelflow`` processes a test starts (the CLI, workers), their ``/metrics`` and ``/ready``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from streams.processes import stop_processes
from streams.settings import Settings, registry_url
from streams.worker.launch import start_worker, worker_env
from tests.support.broker import free_port
from tests.support.paths import REPO

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
"""Samples of a /metrics page by (sample name, labels)."""


def cli(
    *args: str, env: dict[str, str] | None = None, stdin: str | bytes | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``parcelflow ARGS`` as a user would, in a subprocess; ``stdin`` as bytes may be in any encoding."""
    raw = isinstance(stdin, bytes)
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        input=stdin,
        capture_output=True,
        text=not raw,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        cwd=REPO,
    )
    if raw:  # the output is text either way
        result.stdout, result.stderr = result.stdout.decode(errors="replace"), result.stderr.decode(errors="replace")
    return result


def scrape(port: int) -> Samples:
    """Every sample of a worker's /metrics, keyed by (sample name, labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and wanted <= lab)


class WorkerProcess:
    """A ``parcelflow worker`` subprocess, stopped by PID (SIGTERM, then SIGKILL).

    Its settings are those of the environment with the test's own on top; ``overrides`` replace
    any field (e.g. ``partitions=6``). The worker gets all of them through ``worker_env``.
    """

    def __init__(
        self,
        bootstrap: str,
        prefix: str,
        workdir: Path,
        app_id: str | None = None,
        registry: str | None = None,
        **overrides: Any,
    ) -> None:
        self.metrics_port = free_port()
        self.log_path = workdir / f"worker-{self.metrics_port}.log"
        base = Settings.from_env()
        self.settings = replace(
            base,
            bootstrap=bootstrap,
            topic_prefix=prefix,
            app_id=app_id or prefix,
            metrics_port=self.metrics_port,
            data_dir=workdir / f"data-{self.metrics_port}",  # one state dir per worker
            partitions=3,
            purge_interval_seconds=2,  # purge by-hub often: it must never lose a record
            schema_registry_url=base.schema_registry_url if registry is None else registry_url(registry),
        )
        self.settings = replace(self.settings, **overrides)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> Mapping[str, str]:
        """The worker's environment (read-only: change ``settings`` instead)."""
        return MappingProxyType(worker_env(self.settings))

    def start(self) -> WorkerProcess:
        self.process = start_worker(self.settings, self.log_path, cwd=REPO)
        wait_for(lambda: self._metrics_up(), timeout=60, what=f"worker /metrics on {self.metrics_port}", proc=self)
        return self

    def _metrics_up(self) -> bool:
        try:
            scrape(self.metrics_port)
            return True
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None:
            stop_processes([self.process], sig)


def wait_for(check: Callable[[], bool], timeout: float, what: str, proc: WorkerProcess | None = None) -> None:
    """Poll ``check`` until true; fail with ``what`` (and the worker's log tail) after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and proc.process is not None and proc.process.poll() is not None:
            raise AssertionError(
                f"worker exited ({proc.process.returncode}) while waiting for {what}:\n{proc.log()[-3000:]}"
            )
        time.sleep(0.25)
    tail = f"\n{proc.log()[-3000:]}" if proc is not None else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{tail}")


def readiness(port: int) -> tuple[int, str]:
    """Status and body of a worker's ``/ready`` (0 and the error when it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as response:
            return response.status, response.read().decode().strip()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode().strip()
    except OSError as exc:
        return 0, str(exc)
