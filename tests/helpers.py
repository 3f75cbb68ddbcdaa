"""Helpers shared by the broker tests: free ports, worker processes, scraping /metrics."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from streams.processes import stop_processes

REPO = Path(__file__).resolve().parent.parent
KAFKA_SH = REPO / "infra" / "kafka" / "kafka.sh"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique_name(stem: str) -> str:
    """A topic prefix / group id no other test uses."""
    return f"t-{stem}-{uuid.uuid4().hex[:10]}"


def cli(*args: str, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 120):
    """Run ``parcelflow ARGS`` as a user would, in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        cwd=REPO,
    )


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
    """A ``parcelflow worker`` subprocess, stopped by PID (SIGTERM, then SIGKILL)."""

    def __init__(self, bootstrap: str, prefix: str, workdir: Path, app_id: str | None = None) -> None:
        self.metrics_port = free_port()
        self.log_path = workdir / f"worker-{self.metrics_port}.log"
        self.env = {
            **os.environ,
            "PARCELFLOW_BOOTSTRAP": bootstrap,
            "PARCELFLOW_TOPIC_PREFIX": prefix,
            "PARCELFLOW_APP_ID": app_id or prefix,
            "PARCELFLOW_METRICS_PORT": str(self.metrics_port),
            "PARCELFLOW_DATA_DIR": str(workdir / f"data-{self.metrics_port}"),  # one state dir per worker
            "PARCELFLOW_PARTITIONS": "3",
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
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
