"""promtool accepts the scrape config and the rules, and the rule unit tests pass and cover every alert."""

from __future__ import annotations

import subprocess

from tests.observability.promql import PROMETHEUS_DIR, RULE_FILES, load_yaml, require_tool

RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("promtool"), *args], capture_output=True, text=True, timeout=120, cwd=PROMETHEUS_DIR
    )


def test_promtool_check_config() -> None:
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout + result.stderr


def test_promtool_check_rules() -> None:
    assert RULE_FILES
    result = promtool("check", "rules", *(str(path) for path in RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules() -> None:
    assert RULE_TESTS
    result = promtool("test", "rules", *(str(path) for path in RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout, result.stdout


def test_rule_tests_show_every_alert_firing_and_not_firing() -> None:
    alerts = {
        rule["alert"]
        for path in RULE_FILES
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in load_yaml(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert alerts - firing == set(), f"never shown firing: {alerts - firing}"
    assert alerts - quiet == set(), f"never shown not firing: {alerts - quiet}"


def test_alerts_are_labelled_and_described() -> None:
    for path in RULE_FILES:
        for group in load_yaml(path)["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
                assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]
                assert rule.get("for"), f"{rule['alert']} has no for: duration"
