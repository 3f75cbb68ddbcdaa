"""The dashboard files are valid Grafana dashboards wired to the provisioned data source.

Grafana cannot run here, so this checks what would break them when provisioned: unique panel ids
and layout, data source references that resolve, template variables that are defined, links
between dashboards that exist. The queries themselves run against a real Prometheus in
test_prometheus.py.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.observability.promql import (
    DASHBOARD_DIR,
    GRAFANA_DIR,
    all_panels,
    dashboards,
    load_yaml,
    variable_queries,
    variables_used,
)

PANEL_TYPES = {"timeseries", "stat", "table", "heatmap", "gauge", "bargauge", "text", "row", "piechart"}
BOARDS = dashboards()
REQUIRED = {"Network overview", "Hub detail", "Pipeline health"}


def provisioned_datasources() -> dict[str, str]:
    """uid → type of every provisioned data source."""
    found = {}
    for path in (GRAFANA_DIR / "provisioning" / "datasources").glob("*.yml"):
        for source in load_yaml(path)["datasources"]:
            found[source["uid"]] = source["type"]
    return found


def datasource_refs(board: dict[str, Any]) -> list[tuple[str, Any]]:
    """(where, reference) of every data source reference in a dashboard."""
    refs: list[tuple[str, Any]] = []
    for panel in all_panels(board):
        if panel["type"] == "row":
            continue
        refs.append((f"panel {panel['id']}", panel.get("datasource")))
        refs.extend((f"panel {panel['id']} target {t.get('refId')}", t.get("datasource")) for t in panel["targets"])
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            refs.append((f"variable {variable['name']}", variable.get("datasource")))
    for annotation in board.get("annotations", {}).get("list", []):
        refs.append((f"annotation {annotation.get('name')}", annotation.get("datasource")))
    return refs


def test_the_three_dashboards_exist_with_unique_uids() -> None:
    assert {board["title"] for board in BOARDS.values()} >= REQUIRED
    uids = [board["uid"] for board in BOARDS.values()]
    titles = [board["title"] for board in BOARDS.values()]
    assert len(set(uids)) == len(uids) and len(set(titles)) == len(titles)
    for name, board in BOARDS.items():
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", board["uid"]), name
        assert isinstance(board["schemaVersion"], int) and board["schemaVersion"] >= 36, name
        assert board.get("id") is None, f"{name}: a provisioned dashboard has no database id"
        assert isinstance(board["panels"], list) and board["panels"], name
        assert set(board["time"]) == {"from", "to"}, name


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_panels_have_unique_ids_and_a_layout_without_overlaps(name: str) -> None:
    board = BOARDS[name]
    panels = list(all_panels(board))
    ids = [panel["id"] for panel in panels]
    assert all(isinstance(i, int) and i > 0 for i in ids), ids
    assert len(set(ids)) == len(ids), f"duplicate panel ids in {name}: {ids}"
    cells: dict[tuple[int, int], int] = {}
    for panel in panels:
        assert panel["type"] in PANEL_TYPES, (panel["id"], panel["type"])
        assert panel["title"] and (panel["type"] == "row" or panel.get("description")), panel["id"]
        pos = panel["gridPos"]
        assert all(isinstance(pos[k], int) for k in ("x", "y", "w", "h")), panel["id"]
        assert 0 <= pos["x"] and pos["w"] > 0 and pos["x"] + pos["w"] <= 24 and pos["h"] > 0, panel["id"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"panels {cells[(x, y)]} and {panel['id']} overlap in {name}"
                cells[(x, y)] = panel["id"]


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_targets_have_unique_ref_ids_and_expressions(name: str) -> None:
    for panel in all_panels(BOARDS[name]):
        if panel["type"] in ("row", "text"):
            continue
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(set(refs)) == len(refs), (panel["id"], refs)
        assert all(target["expr"].strip() for target in panel["targets"]), panel["id"]


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_datasource_reference_resolves_to_a_provisioned_one(name: str) -> None:
    provisioned = provisioned_datasources()
    assert provisioned, "no data source provisioned"
    refs = datasource_refs(BOARDS[name])
    assert refs
    for where, ref in refs:
        assert isinstance(ref, dict), f"{name} {where}: data source must be a {{type, uid}} reference, got {ref!r}"
        assert ref.get("uid") in provisioned, f"{name} {where}: unknown data source uid {ref.get('uid')!r}"
        assert ref.get("type") == provisioned[ref["uid"]], f"{name} {where}: type {ref.get('type')!r}"


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_variable_used_is_defined(name: str) -> None:
    board = BOARDS[name]
    defined: list[str] = []
    for variable_name, query in variable_queries(board):
        undefined = {v for v in variables_used(query) if not v.startswith("__")} - set(defined)
        assert not undefined, f"{name}: variable {variable_name} uses {undefined}, not defined before it"
        defined.append(variable_name)
    assert len(set(defined)) == len(defined), defined
    without_templating = {key: value for key, value in board.items() if key != "templating"}
    used = {v for v in variables_used(json.dumps(without_templating)) if not v.startswith("__")}
    assert used <= set(defined), f"{name}: {used - set(defined)} used but not defined in templating"
    assert set(defined) <= used, f"{name}: {set(defined) - used} defined but never used"
    for variable in board["templating"]["list"]:
        assert variable["current"].get("value"), f"{name}: variable {variable['name']} has no default"


def test_links_between_dashboards_resolve() -> None:
    uids = {board["uid"] for board in BOARDS.values()}
    text = "".join(path.read_text() for path in DASHBOARD_DIR.glob("*.json"))
    linked = set(re.findall(r"/d/([A-Za-z0-9_-]+)", text))
    assert linked, "the overview links to the hub detail"
    assert linked <= uids, linked - uids


def test_dashboard_provider_loads_the_dashboard_folder() -> None:
    providers = [
        provider
        for path in (GRAFANA_DIR / "provisioning" / "dashboards").glob("*.yml")
        for provider in load_yaml(path)["providers"]
    ]
    assert [p["type"] for p in providers] == ["file"]
    assert providers[0]["options"]["path"].startswith("/")  # the container path; compose mounts the folder there
