"""Is a worker live? Readiness from its heartbeat and failures, served as ``/ready`` beside ``/metrics``.

A worker whose agent or timer failed, or whose event loop stopped turning, must not look healthy:
``/ready`` answers 503 with the reason (compose's healthcheck and Kubernetes probes read it) and
the ``parcelflow_worker_ready`` gauge is 0 (the ``WorkerDown`` alert reads it).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

STALL_SECONDS = 30.0
"""A heartbeat older than this means the event loop is blocked: not ready."""

EXIT_STATUS = 70  # EX_SOFTWARE: an internal error, the supervisor restarts the worker
EXIT_DELAY_SECONDS = 2.0
"""Between readiness turning false and the exit: time for a probe or scrape to see why."""


class Health:
    """Readiness of one worker: started, no failure, heartbeat recent (clock injected for tests)."""

    def __init__(self, stall_seconds: float = STALL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_seconds = stall_seconds
        self._clock = clock
        self._started = False
        self._beat = clock()
        self._failure: str | None = None
        self._waiting: str | None = None

    def beat(self) -> None:
        """The event loop turned (called by a timer): the worker is running."""
        self._started = True
        self._beat = self._clock()

    def fail(self, reason: str) -> None:
        """Something the worker cannot go on without failed."""
        if self._failure is None:
            self._failure = reason

    def wait(self, reason: str) -> None:
        """Processing is held up by something outside the worker (the schema registry): not ready, and why."""
        self._waiting = reason

    def resume(self) -> None:
        """What held processing up is back."""
        self._waiting = None

    @property
    def failure(self) -> str | None:
        """Why the worker failed, if it did."""
        return self._failure

    def status(self) -> tuple[bool, str]:
        """(ready, why)."""
        if self._failure is not None:
            return False, f"failed: {self._failure}"
        if self._waiting is not None:
            return False, f"waiting: {self._waiting}"
        if not self._started:
            return False, "starting"
        silent = self._clock() - self._beat
        if silent > self.stall_seconds:
            return False, f"stalled: no heartbeat for {silent:.0f} s"
        return True, "ready"

    def ready(self) -> float:
        """1.0 when ready, else 0.0 (the gauge's value at each scrape)."""
        return 1.0 if self.status()[0] else 0.0


def exit_after_failure(what: str, exc: BaseException, health: Health, log: Callable[[str], None]) -> None:
    """Mark the worker failed, say so in one line, and exit non-zero shortly after (never a silent stall)."""
    if health.failure is not None:
        return  # already leaving: the first failure is the one line that explains it
    line = (
        f"{what} failed: {type(exc).__name__}: {exc}; the worker exits ({EXIT_STATUS}) for its supervisor to restart it"
    )
    health.fail(f"{what}: {type(exc).__name__}: {exc}")
    log(line)

    def leave() -> None:
        sys.stderr.flush()
        os._exit(EXIT_STATUS)  # no graceful stop: nothing of the failed batch may be committed

    threading.Timer(EXIT_DELAY_SECONDS, leave).start()


def serve(registry: CollectorRegistry, health: Health, host: str, port: int) -> ThreadingHTTPServer:
    """Serve ``/metrics`` and ``/ready`` in a background thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            path = self.path.split("?", 1)[0]
            if path == "/ready":
                ready, why = health.status()
                self._reply(200 if ready else 503, "text/plain; charset=utf-8", f"{why}\n".encode())
            elif path in ("/metrics", "/"):
                self._reply(200, CONTENT_TYPE_LATEST, generate_latest(registry))
            else:
                self._reply(404, "text/plain; charset=utf-8", b"not found: try /metrics or /ready\n")

        def _reply(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
            """Scrapes are not worth a log line each."""

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server
