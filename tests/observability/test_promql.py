"""The expression helpers the observability tests rely on: operands, variables, extraction."""

from __future__ import annotations

import pytest

from tests.observability.promql import (
    operands,
    panel_expressions,
    rule_expressions,
    substitute,
    variables_used,
)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("sum(rate(x[5m]))", []),
        ("a > 0.5", ["a"]),
        ('a{l=~"x|y"} >= 1e3', ['a{l=~"x|y"}']),
        ("a < 0.25 * b and b > 0.5", ["a", "0.25 * b", "b"]),
        ("(a or b * 0) == 0", ["a or b * 0", "a", "b * 0"]),
        ('(sum(up{job="w"}) or vector(0)) == 0', ['sum(up{job="w"}) or vector(0)', 'sum(up{job="w"})', "vector(0)"]),
        ("deriv(x[15m]) > 0\nand\nx > 10000", ["deriv(x[15m])", "x"]),
        ("a / on () group_left () b", []),
        ("a == bool 1", ["a"]),
        ("a unless on (hub) b", ["a", "b"]),
        ("count(up == 1)", []),
        ("(a) / (b) > 1", ["(a) / (b)"]),
        ("order_total > 1", ["order_total"]),  # "or" inside a name is no operator
        ('x{reason="a > b"} > 1', ['x{reason="a > b"}']),
    ],
)
def test_operands(expr: str, expected: list[str]) -> None:
    assert operands(expr) == expected


def test_variables_and_substitution() -> None:
    expr = 'x{hub="$hub", ns="${namespace}"}[$__rate_interval] [[hub]] ${hub:raw}'
    assert variables_used(expr) == {"hub", "namespace", "__rate_interval"}
    got = substitute(expr, {"hub": "LGG", "namespace": "live", "__rate_interval": "1m"})
    assert got == 'x{hub="LGG", ns="live"}[1m] LGG LGG'
    with pytest.raises(KeyError):
        substitute("$unknown", {})


def test_every_dashboard_and_rule_has_expressions() -> None:
    panels = panel_expressions()
    rules = rule_expressions()
    assert len(panels) >= 30 and all(e.expr.strip() for e in panels)
    assert {e.kind for e in rules} == {"record", "alert"}
    assert all(operands(e.expr) for e in rules if e.kind == "alert"), "every alert compares a signal"
