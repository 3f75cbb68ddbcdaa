"""Stopping child processes by PID: a signal first, SIGKILL for what does not stop in time."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterable


def stop_processes(
    processes: Iterable[subprocess.Popen[bytes]], sig: int = signal.SIGTERM, timeout: float = 30.0
) -> None:
    """Send ``sig`` to each running process, wait up to ``timeout`` s for each, then SIGKILL."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        process.send_signal(sig)
    for process in running:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
