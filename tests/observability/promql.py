"""Every PromQL expression of the dashboards and rules, and the pieces the tests run of each."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.paths import REPO

PROMETHEUS_DIR = REPO / "infra" / "prometheus"
GRAFANA_DIR = REPO / "infra" / "grafana"
DASHBOARD_DIR = GRAFANA_DIR / "dashboards"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))

# Set by Grafana itself, never by a dashboard's templating.
GRAFANA_GLOBALS = {"__interval", "__interval_ms", "__rate_interval", "__range", "__range_s", "__range_ms"}

_VAR = re.compile(r"\$(?:\{(\w+)(?:[.:][^}]*)?\}|(\w+))|\[\[(\w+)\]\]")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_MODIFIERS = re.compile(r"^\s*(bool\b)?\s*((on|ignoring)\s*\([^)]*\))?\s*((group_left|group_right)\s*(\([^)]*\))?)?")
_SET_OPS = ("unless", "and", "or")
_COMPARISONS = ("==", "!=", ">=", "<=", ">", "<")
_WORD = re.compile(r"[A-Za-z0-9_:]")


@dataclass(frozen=True)
class Expression:
    """One PromQL expression and where it is used."""

    where: str
    name: str  # the panel's title, or the recorded series' or alert's name
    expr: str
    kind: str  # "panel", "record" or "alert"


def load_yaml(path: Path) -> Any:
    """Parse one YAML file."""
    return yaml.safe_load(path.read_text())


def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard file, by file name."""
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARD_DIR.glob("*.json"))}


def all_panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel of a dashboard, including those nested in rows."""
    for panel in board.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def panel_expressions() -> list[Expression]:
    """Every target expression of every panel of every dashboard."""
    found = []
    for name, board in dashboards().items():
        for panel in all_panels(board):
            for target in panel.get("targets", []):
                where = f"{name} panel {panel['id']} {panel['title']!r} target {target['refId']}"
                found.append(Expression(where, panel["title"], target["expr"], "panel"))
    return found


def rule_expressions() -> list[Expression]:
    """Every recording and alerting rule expression."""
    found = []
    for path in RULE_FILES:
        for group in load_yaml(path)["groups"]:
            for rule in group["rules"]:
                kind = "record" if "record" in rule else "alert"
                name = rule.get("record") or rule["alert"]
                found.append(Expression(f"{path.name} {kind} {name}", name, rule["expr"], kind))
    return found


def variable_queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, query) of each templating variable, in order (later ones may use earlier ones)."""
    queries = []
    for variable in board.get("templating", {}).get("list", []):
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query", "")
        queries.append((variable["name"], str(query)))
    return queries


def variables_used(text: str) -> set[str]:
    """Names of the dashboard variables referenced in ``text`` ($x, ${x}, ${x:fmt}, [[x]])."""
    return {next(g for g in match.groups() if g) for match in _VAR.finditer(text)}


def substitute(expr: str, values: dict[str, str]) -> str:
    """Replace every variable reference with a concrete value, as Grafana would before querying."""

    def value(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        if name not in values:
            raise KeyError(f"no value for ${name} in {expr!r}")
        return values[name]

    return _VAR.sub(value, expr)


def _top_level_split(expr: str) -> list[str]:
    """Split at comparison and set operators outside brackets and strings."""
    parts: list[str] = []
    depth, start, i, quote = 0, 0, 0, ""
    while i < len(expr):
        char = expr[i]
        if quote:
            if char == "\\":
                i += 2
                continue
            if char == quote:
                quote = ""
        elif char in "\"'`":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0:
            operator = _operator_at(expr, i)
            if operator:
                parts.append(expr[start:i])
                i += len(operator)
                i += _MODIFIERS.match(expr[i:]).end()  # type: ignore[union-attr]
                start = i
                continue
        i += 1
    parts.append(expr[start:])
    return [part.strip() for part in parts]


def _operator_at(expr: str, i: int) -> str:
    for op in _COMPARISONS:
        if expr.startswith(op, i):
            return op
    for op in _SET_OPS:
        end = i + len(op)
        if (
            expr.startswith(op, i)
            and (i == 0 or not _WORD.match(expr[i - 1]))
            and (end == len(expr) or not _WORD.match(expr[end]))
        ):
            return op
    return ""


def _unwrap(expr: str) -> str:
    """Strip parentheses that enclose the whole expression."""
    while expr.startswith("(") and expr.endswith(")"):
        depth = 0
        for i, char in enumerate(expr):
            depth += char == "("
            depth -= char == ")"
            if depth == 0 and i < len(expr) - 1:
                return expr  # the first "(" closes before the end: "(a) / (b)"
        expr = expr[1:-1].strip()
    return expr


def operands(expr: str) -> list[str]:
    """The queries an expression compares or combines, recursively through enclosing parentheses.

    ``(A or B * 0) == 0 and C > 10`` gives ``A``, ``B * 0`` and ``C``: the number literals are
    thresholds, not queries. An expression without comparison or set operator gives nothing.
    """
    parts = _top_level_split(_unwrap(expr.strip()))
    if len(parts) == 1:
        return []
    found: list[str] = []
    for part in parts:
        inner = _unwrap(part)
        if _NUMBER.match(inner):
            continue
        found.append(inner)
        found.extend(operands(inner))
    return found


def require_tool(name: str) -> str:
    """Path of a command the observability tests need; a missing one fails (infra/dev.sh installs it)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run infra/dev.sh test (it installs the Debian packages)", pytrace=False)
    return path
