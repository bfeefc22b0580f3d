"""The Grafana dashboard in deploy/grafana: valid JSON, known metrics only, valid PromQL."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "streamagg.json"
DASHBOARD_PROVIDER = ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "streamagg.yml"
DATASOURCE = ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
RECORDING_RULES = ROOT / "deploy" / "prometheus" / "rules.yml"

# What the workers export (streamagg/metrics.py) plus Prometheus' own `up`.
WORKER_METRICS = {
    "streamagg_cdrs_total",
    "streamagg_calls_total",
    "streamagg_calls_answered_total",
    "streamagg_calls_effective_total",
    "streamagg_answered_seconds_total",
    "streamagg_consumer_lag_messages",
    "streamagg_processing_latency_seconds_bucket",
    "streamagg_processing_latency_seconds_sum",
    "streamagg_processing_latency_seconds_count",
    "streamagg_partition_stopped",
    "streamagg_event_loop_lag_seconds_bucket",
    "streamagg_messages_lost_total",
    "up",
}

PROMQL_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset", "inf", "nan",
}  # fmt: skip

# Grafana's variables, replaced by plausible values before PromQL is parsed.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "6h",
    "$window": "15m",
    "$tech_prefix": ".*",
}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions, keywords and labels left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range and subquery durations
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = re.findall(r"(?<![\w.:$])([A-Za-z_:][\w:]*)\b(?!\s*\()", text)
    return {n for n in names if n.lower() not in PROMQL_KEYWORDS}


def recorded_names() -> set[str]:
    return set(re.findall(r"^\s*- record:\s*(\S+)\s*$", RECORDING_RULES.read_text(), flags=re.M))


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def expressions(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable."""
    found = [
        (f"panel {panel['id']} {panel.get('title')!r} {target['refId']}", target["expr"])
        for panel in all_panels(dashboard["panels"])
        for target in panel.get("targets", [])
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            query = query["query"] if isinstance(query, dict) else query
            inner = re.fullmatch(r"label_values\((.*),\s*\w+\)", query)
            found.append((f"variable {variable['name']}", inner.group(1) if inner else query))
    return found


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def test_metric_names_extracts_selected_metrics_only() -> None:
    expr = (
        'label_replace(sum by (tech_prefix) (increase(streamagg_calls_total{tech_prefix=~"$x"}'
        "[$window])) / on (tech_prefix) (tech_prefix:streamagg_asr:ratio24h > 0.7), "
        '"tech_prefix", "(none)", "tech_prefix", "") or histogram_quantile(0.99, '
        "sum by (le) (rate(streamagg_processing_latency_seconds_bucket[1m]))) offset 1d * 1e3"
    )
    assert metric_names(expr) == {
        "streamagg_calls_total",
        "tech_prefix:streamagg_asr:ratio24h",
        "streamagg_processing_latency_seconds_bucket",
    }


def test_dashboard_is_a_dashboard(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "streamagg"
    assert dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    assert dashboard["panels"]


def test_panel_ids_are_unique(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in all_panels(dashboard["panels"])]
    assert all(isinstance(i, int) for i in ids)
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {sorted(ids)}"


def test_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], int] = {}
    for panel in all_panels(dashboard["panels"]):
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, f"panel {panel['id']} is wider than the grid"
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"panels {cells[(x, y)]} and {panel['id']} overlap"
                cells[(x, y)] = panel["id"]


def test_variables_datasource_and_tech_prefix(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    tech_prefix = variables["tech_prefix"]
    assert tech_prefix["type"] == "query"
    assert tech_prefix["datasource"]["uid"] == "${datasource}"
    assert "label_values(streamagg_calls_total, tech_prefix)" in json.dumps(tech_prefix["query"])
    # "All" must also match calls without a tech prefix (an empty label value).
    assert tech_prefix["includeAll"] and tech_prefix["allValue"] == ".*"


def test_every_query_uses_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    for panel in all_panels(dashboard["panels"]):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_expressions_reference_only_known_metrics(dashboard: dict[str, Any]) -> None:
    allowed = WORKER_METRICS | recorded_names()
    for where, expr in expressions(dashboard):
        names = metric_names(expr)
        assert names, f"{where}: no metric found in {expr!r}"
        unknown = {n for n in names if n not in allowed}
        assert not unknown, f"{where}: unknown metric(s) {sorted(unknown)} in {expr!r}"


def test_per_prefix_queries_follow_the_tech_prefix_variable(dashboard: dict[str, Any]) -> None:
    per_prefix = re.compile(
        r"\b(streamagg_calls_total|streamagg_calls_answered_total|streamagg_answered_seconds_total"
        r"|tech_prefix:[\w:]+)(\{[^}]*\})?"
    )
    for where, expr in expressions(dashboard):
        if where.startswith("variable"):
            continue
        for name, matchers in per_prefix.findall(expr):
            assert 'tech_prefix=~"$tech_prefix"' in matchers, (
                f"{where}: {name} ignores $tech_prefix"
            )


def test_dashboard_covers_the_issue_panels(dashboard: dict[str, Any]) -> None:
    exprs = [expr for _, expr in expressions(dashboard)]
    used = set().union(*(metric_names(e) for e in exprs))
    histogram_extras = {
        "streamagg_processing_latency_seconds_sum",
        "streamagg_processing_latency_seconds_count",
    }
    assert WORKER_METRICS - histogram_extras <= used, WORKER_METRICS - histogram_extras - used
    # ASR and ACD recomputed from summed counts, per prefix.
    assert any(
        "streamagg_calls_answered_total" in e and "streamagg_calls_total" in e and "/" in e
        for e in exprs
    )
    assert any(
        "streamagg_answered_seconds_total" in e and "streamagg_calls_answered_total" in e
        for e in exprs
    )
    quantiles = {q for e in exprs for q in re.findall(r"histogram_quantile\(([\d.]+),", e)}
    assert {"0.5", "0.99"} <= quantiles
    assert any('outcome="rejected"' in e for e in exprs)
    assert any("by (topic, partition)" in e for e in exprs)


def test_expressions_are_valid_promql(dashboard: dict[str, Any], tmp_path: Path) -> None:
    """Each expression, with Grafana's variables filled in, parses as a recording rule."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail(
            "promtool not found on PATH: the dashboard's PromQL cannot be checked. "
            "It ships with Debian's `prometheus` package: apt-get install -y prometheus",
            pytrace=False,
        )
    lines = ["groups:", "  - name: dashboard", "    rules:"]
    for i, (_, panel_expr) in enumerate(expressions(dashboard)):
        expr = panel_expr
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"unreplaced Grafana variable in {expr!r}"
        lines += [f"      - record: dashboard:expr_{i}", f"        expr: {json.dumps(expr)}"]
    rules = tmp_path / "dashboard_rules.yml"
    rules.write_text("\n".join(lines) + "\n")
    result = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"


def test_provisioning_points_at_the_mounted_dashboard_folder() -> None:
    provider = DASHBOARD_PROVIDER.read_text()
    assert re.search(r"^\s+path: /var/lib/grafana/dashboards$", provider, flags=re.M)
    datasource = DATASOURCE.read_text()
    assert re.search(r"^\s+type: prometheus$", datasource, flags=re.M)
