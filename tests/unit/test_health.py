from __future__ import annotations

import urllib.error
import urllib.request

from prometheus_client import CollectorRegistry, Gauge

from streams.worker.health import Health, serve
from tests.support.broker import free_port


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_ready_once_running_not_when_stalled_or_failed() -> None:
    clock = Clock()
    health = Health(stall_seconds=30, clock=clock)
    assert health.status() == (False, "starting") and health.ready() == 0.0
    health.beat()
    assert health.status() == (True, "ready") and health.ready() == 1.0
    clock.now += 31
    assert health.status() == (False, "stalled: no heartbeat for 31 s")
    health.beat()
    health.fail("the intake agent: KeyError: 'x'")
    health.fail("a second failure is not the first")
    assert health.status() == (False, "failed: the intake agent: KeyError: 'x'")


def test_ready_and_metrics_are_served_side_by_side() -> None:
    registry = CollectorRegistry()
    health = Health()
    Gauge("parcelflow_worker_ready", "ready", registry=registry).set_function(health.ready)
    port = free_port()
    server = serve(registry, health, "127.0.0.1", port)
    try:

        def get(path: str) -> tuple[int, str]:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
                    return response.status, response.read().decode()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read().decode()

        assert get("/ready") == (503, "starting\n")
        assert "parcelflow_worker_ready 0.0" in get("/metrics")[1]
        health.beat()
        assert get("/ready") == (200, "ready\n")
        assert "parcelflow_worker_ready 1.0" in get("/metrics")[1]
        assert get("/nope")[0] == 404
    finally:
        server.shutdown()
        server.server_close()


def test_waiting_on_something_outside_is_not_ready_and_says_why() -> None:
    health = Health(clock=Clock())
    health.beat()
    health.wait("schema registry: cannot reach it")
    assert health.status() == (False, "waiting: schema registry: cannot reach it") and health.ready() == 0.0
    health.resume()
    assert health.status() == (True, "ready")
    health.wait("schema registry: down")
    health.fail("the intake agent: KeyError: 'x'")
    assert health.status()[1].startswith("failed:")  # a failure is what a probe must see first
