"""Replay namespaces: the topics, consumer group, workers and scrape targets of one replay run.

A namespace ``NAME`` owns the topic prefix ``replay.NAME`` and the app id (consumer group, table
changelogs) ``replay-NAME``; its workers' metrics are announced to Prometheus in a file_sd target
file labelled ``namespace="NAME"``, so live dashboards (``namespace="live"``) never see them.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

from streams.durations import UNLIMITED
from streams.errors import ParcelflowError
from streams.processes import stop_processes
from streams.settings import Settings
from streams.worker.launch import start_worker

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")
_TOPIC = re.compile(r"^replay\.(?P<name>[a-z0-9][a-z0-9-]*)\.scans\.flight$")


class NamespaceError(ParcelflowError):
    """A replay namespace name that cannot be used."""


@dataclass(frozen=True)
class Namespace:
    """Everything a replay run named ``name`` owns."""

    name: str

    def __post_init__(self) -> None:
        if not _NAME.match(self.name) or self.name == "live":
            raise NamespaceError(f"replay name {self.name!r}: use lowercase letters, digits and '-' (not 'live')")

    @property
    def prefix(self) -> str:
        """Topic prefix of the namespace."""
        return f"replay.{self.name}"

    @property
    def app_id(self) -> str:
        """Faust app id: consumer group and internal topics."""
        return f"replay-{self.name}"

    def settings(self, base: Settings, partitions: int) -> Settings:
        """Settings of the namespace's workers and topics."""
        return base.with_overrides(
            topic_prefix=self.prefix,
            app_id=self.app_id,
            namespace=self.name,
            partitions=partitions,
            # Replayed history keeps its original (old) timestamps: no time retention for the
            # namespace's lifetime. `replay clean` deletes it.
            source_retention_ms=UNLIMITED,
        )

    def owned_topic_prefixes(self) -> list[str]:
        """Prefixes of every topic the namespace created (its own and Faust's internal ones)."""
        return [f"{self.prefix}.", f"{self.app_id}-"]


def names_in(topics: list[str]) -> list[str]:
    """Replay namespaces that have topics in ``topics``."""
    return sorted({m["name"] for t in topics if (m := _TOPIC.match(t))})


def targets_file(directory: Path, namespace: Namespace) -> Path:
    """Prometheus file_sd target file of a namespace's workers."""
    return directory / f"replay-{namespace.name}.json"


def write_targets(directory: Path, namespace: Namespace, host: str, ports: list[int]) -> Path:
    """Announce the namespace's workers to Prometheus (file_sd), labelled with the namespace."""
    directory.mkdir(parents=True, exist_ok=True)
    path = targets_file(directory, namespace)
    entry = [{"targets": [f"{host}:{p}" for p in ports], "labels": {"namespace": namespace.name}}]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entry, indent=2))
    tmp.replace(path)
    return path


class WorkerGroup:
    """``parcelflow worker`` processes for a namespace, stopped by PID."""

    def __init__(self, settings: Settings, count: int, first_port: int, log_dir: Path) -> None:
        self.settings = settings
        self.ports = [first_port + i for i in range(count)]
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        """Start the workers (each serving /metrics on its own port, with its own state directory)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for port in self.ports:
            own = replace(self.settings, metrics_port=port, data_dir=self.settings.data_dir / f"worker-{port}")
            self.processes.append(start_worker(own, self.log_dir / f"worker-{port}.log"))

    def alive(self) -> bool:
        """Whether every worker is still running."""
        return all(p.poll() is None for p in self.processes)

    def stop(self) -> None:
        """SIGTERM each worker, SIGKILL what is still running after 30 s."""
        stop_processes(self.processes)
