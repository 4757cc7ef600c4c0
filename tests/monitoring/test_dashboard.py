"""The Grafana dashboard has what Grafana needs to load it from the sidecar, the panels the issue
asks for, and config/prometheus carries the same dashboard, rules and kube-state-metrics config."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from tests.monitoring.coverage import NOT_EVALUABLE, POD_PANELS, PROCESSOR_ALERTS, PROCESSOR_PANELS

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "charts/dataflow-operator/files/monitoring"
DASHBOARD = MONITORING / "dataflow-dashboard.json"
PANELS = [
    "Flows by phase",
    "Records in / s",
    "Records out / s by sink and route",
    "Errors sink writes / s",
    "Errors / s by stage and type",
    "Connectors up",
    "Transformations: in / out / dropped per step",
    "Sink write latency p95 / p99",
    "Queue sizes",
    "In-flight records",
    "Processor CPU",
    "Processor memory",
    "Processor restarts (1 h)",
]


def dashboard() -> dict[str, Any]:
    board: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return board


def test_panels_are_the_ones_asked_for() -> None:
    assert [p["title"] for p in dashboard()["panels"]] == PANELS


def test_datasource_variable_and_every_query_uses_it() -> None:
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for name in ("namespace", "dataflow"):
        v = variables[name]
        assert v["type"] == "query" and v["multi"] and v["includeAll"] and v["allValue"] == ".*"
        assert v["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    for panel in dashboard()["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            # every query honours both variables
            assert '=~"$namespace"' in target["expr"], (panel["title"], target["expr"])
            assert "$dataflow" in target["expr"], (panel["title"], target["expr"])
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])


def test_unique_ids_and_a_valid_grid() -> None:
    board = dashboard()
    assert board["uid"] and re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", board["uid"])
    ids = [p["id"] for p in board["panels"]]
    assert len(set(ids)) == len(ids) and all(isinstance(i, int) and i > 0 for i in ids)
    cells: set[tuple[int, int]] = set()
    for p in board["panels"]:
        g = p["gridPos"]
        assert set(g) == {"h", "w", "x", "y"} and all(isinstance(v, int) for v in g.values()), p["title"]
        assert g["w"] > 0 and g["h"] > 0 and g["x"] >= 0 and g["y"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, f"{p['title']} overlaps another panel"
        cells |= mine


def test_config_prometheus_carries_the_same_files() -> None:
    kustomize = REPO / "config/prometheus"
    assert (kustomize / "dataflow-dashboard.json").read_bytes() == DASHBOARD.read_bytes()
    name = "kube-state-metrics-dataflow.yaml"
    assert (kustomize / name).read_bytes() == (MONITORING / name).read_bytes()
    rule = yaml.safe_load((kustomize / "prometheusrule.yaml").read_text())
    assert rule["spec"] == yaml.safe_load((MONITORING / "prometheus-rules.yaml").read_text())


def test_kube_state_metrics_config_exports_every_phase() -> None:
    """The phase StateSet lists every phase the CRD documents for status.phase."""
    crd = yaml.safe_load((REPO / "config/crd/bases/dataflow.dataflow.io_dataflows.yaml").read_text())
    version = crd["spec"]["versions"][0]
    phases = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["phase"]
    config = yaml.safe_load((MONITORING / "kube-state-metrics-dataflow.yaml").read_text())
    (resource,) = config["spec"]["resources"]
    assert resource["groupVersionKind"] == {"group": crd["spec"]["group"], "version": version["name"],
                                            "kind": crd["spec"]["names"]["kind"]}
    (metric,) = resource["metrics"]
    assert metric["each"]["stateSet"]["path"] == ["status", "phase"]
    assert phases["description"] == "Pending, Running, Error or Stopped."
    assert metric["each"]["stateSet"]["list"] == re.findall(r"[A-Z][a-z]+", phases["description"])


def test_every_panel_and_alert_is_evaluated_live_or_listed_with_its_reason() -> None:
    """No silent gaps: each panel and alert is evaluated on a live Prometheus by one test, or is in
    NOT_EVALUABLE, whose entries are exactly these and are named in docs/monitoring.md."""
    assert set(NOT_EVALUABLE) == {"panel Flows by phase", "panel Processor restarts (1 h)",
                                  "alert DataFlowProcessorRestarting", "alert DataFlowInError"}
    panels = [p["title"] for p in dashboard()["panels"]]
    listed = {k.removeprefix("panel ") for k in NOT_EVALUABLE if k.startswith("panel ")}
    for title in panels:
        assert [title in PROCESSOR_PANELS, title in POD_PANELS, title in listed].count(True) == 1, title
    assert set(panels) == PROCESSOR_PANELS | POD_PANELS | listed
    rules = yaml.safe_load((MONITORING / "prometheus-rules.yaml").read_text())["groups"]
    alerts = {r["alert"] for g in rules for r in g["rules"]}
    assert alerts == PROCESSOR_ALERTS | {k.removeprefix("alert ") for k in NOT_EVALUABLE if k.startswith("alert ")}
    doc = " ".join((REPO / "docs/monitoring.md").read_text().split())
    for key in NOT_EVALUABLE:
        assert f"*{key.split(' ', 1)[1]}*" in doc or f"`{key.split(' ', 1)[1]}`" in doc, key


def test_config_prometheus_builds_the_three_objects() -> None:
    """`kubectl apply -k config/prometheus`: what the chart's monitoring.* values make, beside the operator."""
    import subprocess

    from tests.conftest import require_tool

    out = subprocess.run([require_tool("kubectl"), "kustomize", str(REPO / "config/prometheus")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    objs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out.stdout) if d}
    assert set(objs) == {("PodMonitor", "dataflow-operator-processors"), ("PrometheusRule", "dataflow-operator-alerts"),
                         ("ConfigMap", "dataflow-operator-dashboard")}
    assert {d["metadata"]["namespace"] for d in objs.values()} == {"dataflow-operator-system"}
    board = objs[("ConfigMap", "dataflow-operator-dashboard")]
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(board["data"]["dataflow-dashboard.json"]) == dashboard()
    pm = objs[("PodMonitor", "dataflow-operator-processors")]["spec"]
    assert pm["jobLabel"] == "app" and pm["namespaceSelector"] == {"any": True}
    assert pm["selector"]["matchLabels"]["app"] == "dataflow-processor"
    assert pm["podMetricsEndpoints"][0]["port"] == "http"
