"""The Grafana dashboard in ``deploy/grafana`` is well formed, and every metric its queries
read is one that the real servers expose, so no panel stays empty because of a typo or a
renamed metric."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests._auth import AUTH
from tests._models import iris, iris_classifier
from tests.e2e.conftest import Platform

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "aiaas-dashboard.json"
_METRIC = re.compile(r"\b((?:aiaas|process)_[a-z_]+)\b")
_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("_sum", "_count"),
}


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def test_the_dashboard_is_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        covered = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not covered & cells, f"{panel['title']!r} overlaps another panel"
        cells |= covered
    for panel in _panels(dashboard):
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            expr = target["expr"]
            assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), expr
            used = {name for name in re.findall(r"\$(\w+)", expr) if not name.startswith("__")}
            assert used <= variables, f"{panel['title']!r} uses undefined variables {used - variables}"


def _exposed(text: str) -> set[str]:
    """Every metric name a scrape can hold: each family's name and its samples' names."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


def test_every_metric_the_dashboard_reads_is_exposed_by_the_servers(platform: Platform) -> None:
    x, _ = iris()
    c = platform.client
    c.register_model("dashboard-iris", iris_classifier(), example=x[:5])
    c.deploy("dashboard-iris", model="dashboard-iris", version=1, batching={"enabled": True})
    c.wait_until_served("dashboard-iris", 1)
    for _ in range(5):
        c.predict("dashboard-iris", x[:3])

    exposed = _exposed(httpx.get(f"{platform.inference_url}/metrics", headers=AUTH).text)
    exposed |= _exposed(httpx.get(f"{platform.api_url}/metrics", headers=AUTH).text)
    dashboard = json.loads(DASHBOARD.read_text())
    read = {
        name for panel in _panels(dashboard) for t in panel["targets"] for name in _METRIC.findall(t["expr"])
    }
    variables = " ".join(v.get("query", "") for v in dashboard["templating"]["list"] if v["type"] == "query")
    read |= set(_METRIC.findall(variables))
    assert read, "the dashboard reads aiaas metrics"
    assert read <= exposed, f"not exposed by either server: {sorted(read - exposed)}"
