"""docker-compose.yml validates, mounts only files that exist, and is wired together consistently.

Validation uses Debian's ``docker-compose`` (v1.29, Python): ``config -q`` checks the file against
the Compose specification schema bundled with it and needs no Docker engine. No image is pulled
or run here.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.observability.promql import GRAFANA_DIR, PROMETHEUS_DIR, load_yaml, require_tool
from tests.support.paths import REPO

COMPOSE = REPO / "docker-compose.yml"
SPEC = load_yaml(COMPOSE)
SERVICES: dict[str, dict[str, Any]] = SPEC["services"]


def docker_compose(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("docker-compose"), "-f", str(path), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=path.parent,
        env={"PATH": "/usr/bin:/bin", "DOCKER_HOST": "unix:///nonexistent.sock"},  # prove no engine is needed
    )


def bind_mounts(service: str) -> dict[str, Path]:
    """Container path → host path of each bind mount of a service (named volumes left out)."""
    mounts = {}
    for volume in SERVICES[service].get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts[target] = (COMPOSE.parent / source).resolve()
    return mounts


def test_compose_file_validates_without_an_engine() -> None:
    result = docker_compose(COMPOSE, "config", "-q")
    assert result.returncode == 0, result.stderr


def test_the_validator_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("    restart: unless-stopped", "    restart_policy: always", 1))
    result = docker_compose(broken, "config", "-q")
    assert result.returncode != 0 and "restart_policy" in result.stderr, result.stderr


def test_the_stack_has_every_service_with_a_comment() -> None:
    assert set(SERVICES) == {"kafka", "schema-registry", "topics", "worker", "simulator", "prometheus", "grafana"}
    lines = COMPOSE.read_text().splitlines()
    for name in SERVICES:
        index = lines.index(f"  {name}:")
        assert lines[index - 1].strip().startswith("#"), f"service {name} has no comment line above it"


def test_every_mounted_file_exists() -> None:
    mounted = 0
    for service in SERVICES:
        for target, source in bind_mounts(service).items():
            assert source.exists(), f"{service}: {source.relative_to(REPO)} (mounted at {target}) does not exist"
            mounted += 1
    assert mounted >= 5
    for service, spec in SERVICES.items():
        if "build" in spec:
            assert (COMPOSE.parent / spec["build"] / "Dockerfile").is_file(), service


def test_dockerfile_copies_existing_sources_and_runs_parcelflow() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.M)
    for line in re.findall(r"^COPY (.+)$", dockerfile, re.M):
        for source in line.split()[:-1]:
            assert (REPO / source).exists(), source
    assert 'ENTRYPOINT ["parcelflow"]' in dockerfile
    assert "pip install -c constraints.txt ." in dockerfile


def test_images_are_pinned_and_no_credentials_are_set() -> None:
    for name, spec in SERVICES.items():
        image = spec.get("image", "")
        if "build" not in spec:
            assert re.fullmatch(r"[\w./-]+:[\w.-]+", image) and not image.endswith(":latest"), (name, image)
        for key in spec.get("environment", {}):
            assert not re.search(r"PASSWORD|SECRET|TOKEN|API_KEY", key), f"{name} sets {key}"
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:")
    assert SERVICES["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper


def test_health_gates_point_at_services_with_healthchecks() -> None:
    for name, spec in SERVICES.items():
        for dependency, gate in spec.get("depends_on", {}).items():
            assert dependency in SERVICES, (name, dependency)
            if gate["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dependency], f"{name} waits for {dependency}'s health"
    for name in ("kafka", "worker", "prometheus", "grafana"):
        assert "healthcheck" in SERVICES[name], name


def test_prometheus_finds_its_config_rules_and_every_worker_replica() -> None:
    mounts = bind_mounts("prometheus")
    command = SERVICES["prometheus"]["command"]
    config_path = next(arg.split("=", 1)[1] for arg in command if arg.startswith("--config.file="))
    assert mounts[config_path] == PROMETHEUS_DIR / "prometheus.yml"
    config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    config_dir = str(Path(config_path).parent)
    for pattern in config["rule_files"]:
        folder = f"{config_dir}/{Path(pattern).parent}"
        assert mounts[folder] == PROMETHEUS_DIR / Path(pattern).parent, pattern
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for sd in jobs["parcelflow-replay"]["file_sd_configs"]:
        for pattern in sd["files"]:
            assert f"{config_dir}/{Path(pattern).parent}" in mounts, pattern
    dns = jobs["parcelflow-worker"]["dns_sd_configs"][0]
    assert dns["names"] == ["worker"] and "worker" in SERVICES
    assert str(dns["port"]) == SERVICES["worker"]["environment"]["PARCELFLOW_METRICS_PORT"]
    assert "ports" not in SERVICES["worker"], "published ports would stop the worker from scaling"


def test_grafana_loads_the_provisioned_datasource_and_dashboards() -> None:
    mounts = bind_mounts("grafana")
    assert mounts["/etc/grafana/provisioning"] == GRAFANA_DIR / "provisioning"
    provider = load_yaml(GRAFANA_DIR / "provisioning" / "dashboards" / "parcelflow.yml")["providers"][0]
    assert mounts[provider["options"]["path"]] == GRAFANA_DIR / "dashboards"
    home = Path(SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert (mounts[str(home.parent)] / home.name).is_file()
    source = load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml")["datasources"][0]
    url = urlparse(source["url"])
    assert url.hostname in SERVICES and url.port == 9090, source["url"]


@pytest.mark.parametrize("service", ["topics", "worker", "simulator"])
def test_app_services_reach_kafka_inside_the_network(service: str) -> None:
    env = SERVICES[service]["environment"]
    assert env["PARCELFLOW_BOOTSTRAP"] == "kafka:9092"
    assert "PLAINTEXT://kafka:9092" in SERVICES["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]


@pytest.mark.parametrize("service", ["worker", "simulator"])
def test_app_services_write_through_the_schema_registry_service(service: str) -> None:
    registry = SERVICES["schema-registry"]
    assert registry["image"] == "apicurio/apicurio-registry:3.3.3"
    url = urlparse(SERVICES[service]["environment"]["PARCELFLOW_SCHEMA_REGISTRY_URL"])
    assert url.hostname == "schema-registry" and url.port == 8080 and url.path == "/apis/ccompat/v7"
    assert "schema-registry" in SERVICES[service]["depends_on"]
    env = registry["environment"]
    assert env["APICURIO_RULES_GLOBAL_COMPATIBILITY"] == "BACKWARD"
    # Schemas kept in the broker the topics live in: an id never outlives, or is outlived by, its records.
    assert env["APICURIO_STORAGE_KIND"] == "kafkasql" and env["APICURIO_KAFKASQL_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert all(port.startswith("127.0.0.1:") for port in registry["ports"])
