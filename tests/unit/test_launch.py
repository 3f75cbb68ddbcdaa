"""One worker launcher: a worker started from code runs with exactly the Settings it was given."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

import streams.replay.namespaces
from streams.replay.namespaces import Namespace, WorkerGroup
from streams.settings import Settings
from streams.worker.launch import worker_command, worker_env

CODED = Settings(
    bootstrap="127.0.0.1:29092",
    grace_seconds=300,
    store="memory://",
    max_future_seconds=60,
    event_loop="uvloop",
    schema_registry_url=None,
)


def test_the_worker_runs_with_every_setting_whatever_the_parent_environment_says() -> None:
    parent = {"PATH": "/bin", "PARCELFLOW_GRACE_SECONDS": "5", "PARCELFLOW_SCHEMA_REGISTRY_URL": "http://elsewhere"}
    env = worker_env(CODED, parent)
    assert env["PATH"] == "/bin"  # the rest of the environment is inherited
    assert Settings.from_env(env) == CODED


def test_the_worker_command_runs_under_this_interpreter() -> None:
    assert worker_command() == [sys.executable, "-m", "streams.cli", "worker"]


def test_a_replay_group_gives_each_worker_its_port_and_state_dir_and_every_other_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started: list[tuple[Settings, Path]] = []

    def record(settings: Settings, log_path: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
        started.append((settings, log_path))
        return subprocess.Popen([sys.executable, "-c", ""])

    monkeypatch.setattr(streams.replay.namespaces, "start_worker", record)
    target = Namespace("night").settings(replace(CODED, data_dir=tmp_path / "state"), partitions=12)
    group = WorkerGroup(target, 2, 9300, tmp_path / "logs")
    group.start()
    group.stop()
    assert [(s.metrics_port, s.data_dir, log.name) for s, log in started] == [
        (9300, tmp_path / "state" / "worker-9300", "worker-9300.log"),
        (9301, tmp_path / "state" / "worker-9301", "worker-9301.log"),
    ]
    for settings, _ in started:
        assert replace(settings, metrics_port=target.metrics_port, data_dir=target.data_dir) == target
        assert Settings.from_env(worker_env(settings)) == settings
