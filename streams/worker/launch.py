"""Starting ``parcelflow worker`` processes: the one place a Settings becomes a worker's command and environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from streams.settings import Settings


def worker_command() -> list[str]:
    """The command line of a worker, run by this interpreter (so a virtualenv's worker runs in it)."""
    return [sys.executable, "-m", "streams.cli", "worker"]


def worker_env(settings: Settings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (this process's environment by default) with every ``PARCELFLOW_*`` variable set from ``settings``.

    All the settings are written, so the worker runs with exactly them, whatever ``PARCELFLOW_*``
    the parent's environment holds.
    """
    return {**(os.environ if base is None else base), **settings.to_env()}


def start_worker(settings: Settings, log_path: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start a worker with ``settings``, its output in ``log_path``; stopped by PID (``streams.processes``)."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            worker_command(), env=worker_env(settings), stdout=log, stderr=subprocess.STDOUT, cwd=cwd
        )
