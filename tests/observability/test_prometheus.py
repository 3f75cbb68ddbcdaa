"""A real Prometheus scrapes real workers on the real broker; every dashboard and rule query returns data.

The Prometheus server (Debian's ``prometheus``) runs with the committed ``prometheus.yml`` and rule
files, changed only where a test must: 1 s scrape and evaluation intervals, the worker job's DNS
discovery replaced by the test workers' addresses, and every alert's ``for:`` set to 0 so alerts
can fire within the test (``promtool test rules`` covers the ``for:`` durations). Two live workers
and one replay worker (announced through the replay ``file_sd`` directory, as replay runs will
be) process scan traffic with sorter exceptions, truck departures, late scans and corrupt records.

Then every expression is sent to ``/api/v1/query`` after substituting the dashboard variables
(values taken from the variables' own ``label_values`` queries) and Grafana's interval macros:

* panel targets and recording rules must return at least one sample with a finite value;
* alert rules are conditions that a healthy run leaves false, so the whole expression must run
  without error, and each query it compares or combines (every operand of a top-level comparison
  or ``and``/``or``/``unless``, recursively; thresholds left out) must return a finite sample;
* every recording rule must also have produced its series in the server, every rule must report
  health "ok", and the alerts the traffic warrants (dead letters) must fire while those it does
  not (worker down, no events, lag) must not.
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.kafka.topics import Source, Topics
from streams.processes import stop_processes
from streams.settings import Settings
from tests.observability.promql import (
    PROMETHEUS_DIR,
    RULE_FILES,
    Expression,
    dashboards,
    load_yaml,
    operands,
    panel_expressions,
    require_tool,
    rule_expressions,
    substitute,
    variable_queries,
)
from tests.support.broker import free_port, unique_name
from tests.support.flows import closing_rows, make_flows
from tests.support.pipeline import publish_rows, send_raw
from tests.support.workers import WorkerProcess, wait_for

pytestmark = pytest.mark.broker

HOUR_MS = 3_600_000
PARCELS = 1500
CORRUPT_PER_SOURCE = 100  # 3-6 % of each source's records: DeadLetterRateHigh (> 1 %) must fire
CHUNKS = 5
# Grafana's macros, as it would fill them for a 1 h dashboard range on this 1 s scrape interval.
MACROS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}


@dataclass
class Prometheus:
    """A Prometheus server process of this test, stopped by PID."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=30) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", (expr, data["resultType"])
        return list(data["result"])

    def value(self, expr: str) -> float:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else math.nan

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"prometheus exited ({self.process.returncode}):\n{self.log()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_processes([self.process], timeout=20)


def prometheus_config(workdir: Path, port: int, workers: list[int], replay: dict[str, int]) -> Path:
    """The committed config and rules, pointed at the test's processes (see the module docstring)."""
    config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    config["global"] = {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    jobs["prometheus"]["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
    live = jobs["parcelflow-worker"]
    del live["dns_sd_configs"]
    live["static_configs"] = [{"targets": [f"127.0.0.1:{p}" for p in workers]}]
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    (workdir / "rules").mkdir()
    for path in RULE_FILES:
        rules = load_yaml(path)
        for group in rules["groups"]:
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = "0s"
        (workdir / "rules" / path.name).write_text(yaml.safe_dump(rules, sort_keys=False))
    (workdir / "replay").mkdir()
    for namespace, replay_port in replay.items():
        targets = [
            {"targets": [f"127.0.0.1:{replay_port}"], "labels": {"namespace": namespace}},
            # Both must be dropped by the replay job's relabelling: no namespace, or one posing as live.
            {"targets": [f"127.0.0.1:{free_port()}"], "labels": {"namespace": "live"}},
            {"targets": [f"127.0.0.1:{free_port()}"]},
        ]
        (workdir / "replay" / f"{namespace}.json").write_text(json.dumps(targets))
    return workdir / "prometheus.yml"


@pytest.fixture
def start_prometheus(tmp_path: Path) -> Iterator[Callable[[list[int], dict[str, int]], Prometheus]]:
    """Start this test's Prometheus (temporary storage, free port); stopped by PID afterwards."""
    servers: list[Prometheus] = []

    def start(workers: list[int], replay: dict[str, int]) -> Prometheus:
        workdir = tmp_path / "prometheus"
        workdir.mkdir()
        port = free_port()
        config = prometheus_config(workdir, port, workers, replay)
        log_path = workdir / "prometheus.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    require_tool("prometheus"),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--storage.tsdb.retention.time=1h",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=workdir,
            )
        server = Prometheus(f"http://127.0.0.1:{port}", process, log_path)
        servers.append(server)
        wait_for(server.ready, timeout=60, what="prometheus to be ready")
        return server

    yield start
    for server in servers:
        server.stop()


def scan_traffic(start_ms: int, parcels: int, seed: int) -> list[dict[str, object]]:
    """Parcel flows plus the sorter exceptions, flight arrivals and truck departures the panels show."""
    flows = make_flows(seed=seed, parcels=parcels, start_ms=start_ms, late=0.02)
    rows: list[dict[str, object]] = []
    seen: dict[str, int] = {}
    for row in flows.rows:
        rows.append(row)
        event_type = str(row["event_type"])
        n = seen[event_type] = seen.get(event_type, 0) + 1
        at = int(str(row["event_time"]))
        if event_type == "INDUCTED" and n % 20 < 3:
            exception = ("NO_READ", "RECIRCULATED", "MISSORTED")[n % 20]
            rows.append({**row, "event_type": exception, "event_time": at + 5000, "event_id": f"{row['event_id']}-x"})
        elif event_type == "ULD_BREAKDOWN" and n % 100 == 0:
            rows.append(
                {
                    "event_time": at - 60_000,
                    "hub": row["hub"],
                    "event_type": "FLIGHT_ARRIVED",
                    "flight_id": f"{row['flight_id']}-{n}",
                    "read_point": "STAND-1",
                    "event_id": f"arr-{seed}-{n}",
                }
            )
        elif event_type == "LOADED" and n % 50 == 0:
            rows.append(
                {
                    "event_time": at + 60_000,
                    "hub": row["hub"],
                    "event_type": "TRUCK_DEPARTED",
                    "trailer_id": row["trailer_id"],
                    "destination": row["destination"],
                    "read_point": "GATE-1",
                    "event_id": f"dep-{seed}-{n}",
                }
            )
    return rows + closing_rows(flows)


def publish(bootstrap: str, prefix: str, rows: list[dict[str, object]]) -> int:
    return publish_rows(Settings(bootstrap=bootstrap, topic_prefix=prefix, partitions=3, app_id=prefix), rows)


def resolve_variables(server: Prometheus, board: dict[str, Any]) -> dict[str, str]:
    """Each variable's value, from its own label_values query run on the server (its default if offered)."""
    values = dict(MACROS)
    defaults = {v["name"]: v["current"]["value"] for v in board["templating"]["list"]}
    for name, query in variable_queries(board):
        selector, label = substitute(query, values).removeprefix("label_values(").removesuffix(")").rsplit(",", 1)
        series = server.api("series", **{"match[]": selector.strip()})
        offered = sorted({s[label.strip()] for s in series if label.strip() in s})
        assert offered, f"variable {name}: {query} offers no value"
        assert defaults[name] in offered, f"variable {name}: default {defaults[name]!r} not among {offered}"
        values[name] = defaults[name]
    return values


def finite(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(sample["value"][1])) for sample in result)


def check(server: Prometheus, expression: Expression, values: dict[str, str]) -> list[str]:
    """What is wrong with one expression's results (nothing, when it passes)."""
    expr = substitute(expression.expr, values)
    problems = []
    try:
        whole = server.query(expr)
    except (OSError, AssertionError) as exc:
        return [f"{expression.where}: query failed: {exc}\n    {expr}"]
    if expression.kind != "alert" and not finite(whole):
        problems.append(f"{expression.where}: no finite sample ({whole[:3]})\n    {expr}")
    for operand in operands(expr):
        if not finite(server.query(operand)):
            problems.append(f"{expression.where}: operand returned no finite sample\n    {operand}")
    return problems


def firing(server: Prometheus, alertname: str) -> list[dict[str, str]]:
    return [s["metric"] for s in server.query(f'ALERTS{{alertname="{alertname}", alertstate="firing"}}')]


def test_every_dashboard_and_rule_query_returns_data(
    kafka_bootstrap: str,
    start_worker: Callable[..., WorkerProcess],
    start_prometheus: Callable[[list[int], dict[str, int]], Prometheus],
) -> None:
    live, replay = unique_name("obs"), unique_name("obs-replay")
    replay_namespace = f"replay-{uuid.uuid4().hex[:8]}"
    workers = [start_worker(live), start_worker(live)]
    replay_worker = start_worker(replay)
    server = start_prometheus([w.metrics_port for w in workers], {replay_namespace: replay_worker.metrics_port})
    wait_for(
        lambda: server.value('count(up{job=~"parcelflow-.*"} == 1)') == 3,
        timeout=60,
        what="prometheus to scrape the three workers",
    )
    targets = server.api("targets")["activeTargets"]
    replay_targets = [t for t in targets if t["labels"]["job"] == "parcelflow-replay"]
    assert [t["labels"]["namespace"] for t in replay_targets] == [replay_namespace]  # the other two dropped
    assert {t["labels"]["namespace"] for t in targets if t["labels"]["job"] == "parcelflow-worker"} == {"live"}

    # Traffic in chunks while Prometheus scrapes: a labelled counter appears at its first
    # increment, and rate() sees only the increases after its first scrape.
    start_ms = (int(time.time() * 1000) // HOUR_MS - 12) * HOUR_MS  # history: all event times are past
    rows = scan_traffic(start_ms, parcels=PARCELS, seed=61)
    sent = 0
    for chunk in range(CHUNKS):
        sent += publish(kafka_bootstrap, live, rows[chunk * len(rows) // CHUNKS : (chunk + 1) * len(rows) // CHUNKS])
        corrupt = [
            (Topics(live).source(source), f"not avro {chunk}-{i}".encode(), "undecodable")
            for source in Source
            for i in range(CORRUPT_PER_SOURCE // CHUNKS)
        ]
        asyncio.run(send_raw(kafka_bootstrap, corrupt))
        time.sleep(2)
    replay_sent = publish(kafka_bootstrap, replay, scan_traffic(start_ms, parcels=100, seed=62))

    wanted = {
        'sum(parcelflow_events_total{namespace="live"})': sent,
        'sum(parcelflow_invalid_events_total{namespace="live"})': 3 * CORRUPT_PER_SOURCE,
        'sum(parcelflow_dwell_seconds_count{namespace="live"})': PARCELS,  # each departs once
        f'sum(parcelflow_events_total{{namespace="{replay_namespace}"}})': replay_sent,
    }
    seen: dict[str, float] = {}

    def processed() -> bool:
        seen.update({expr: server.value(expr) for expr in wanted})
        return all(seen[expr] >= count for expr, count in wanted.items())

    try:
        wait_for(processed, timeout=180, what="prometheus to see every event processed", proc=workers[0])
    except AssertionError:
        raise AssertionError(f"wanted {wanted}, prometheus saw {seen}") from None
    try:
        wait_for(
            lambda: {a["source"] for a in firing(server, "DeadLetterRateHigh")} == {"flight", "sorter", "truck"},
            timeout=30,
            what="DeadLetterRateHigh to fire for the three sources",
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {server.query('source:parcelflow_invalid_events:ratio_rate5m')}") from None

    problems: list[str] = []
    checked = 0
    expressions = rule_expressions()
    for name, board in dashboards().items():
        values = resolve_variables(server, board)
        for expression in panel_expressions():
            if expression.where.startswith(f"{name} "):
                problems.extend(check(server, expression, values))
                checked += 1
    for expression in expressions:
        problems.extend(check(server, expression, MACROS))
        checked += 1
    assert not problems, f"{len(problems)} queries without data:\n" + "\n".join(problems)
    assert checked == len(panel_expressions()) + len(expressions) > 50

    groups = server.api("rules")["groups"]
    loaded = {rule["name"]: rule for group in groups for rule in group["rules"]}
    assert set(loaded) == {e.name for e in expressions}
    assert all(rule["health"] == "ok" for rule in loaded.values()), [r for r in loaded.values() if r["health"] != "ok"]
    for expression in expressions:
        if expression.kind == "record":
            assert finite(server.query(expression.name)), f"recording rule {expression.name} produced no series"
    for quiet in ("WorkerDown", "NoLiveWorker", "NoEventsFromSource", "ConsumerLagGrowing"):
        assert firing(server, quiet) == [], quiet
