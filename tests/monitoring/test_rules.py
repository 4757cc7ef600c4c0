"""The alert rules: promtool accepts them, and its unit tests fire each alert on the series it is
written for and keep it quiet on the healthy neighbours (rules_test.yaml beside this file)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import require_tool

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "charts/dataflow-operator/files/monitoring/prometheus-rules.yaml"
UNIT_TESTS = Path(__file__).parent / "rules_test.yaml"
ALERTS = ["DataFlowNoProgress", "DataFlowConnectorDown", "DataFlowErrorRatioHigh", "DataFlowProcessorRestarting",
          "DataFlowInError"]


def promtool(*args: str) -> str:
    proc = subprocess.run([require_tool("promtool"), *args], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, f"promtool {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def alerts() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r]


def test_promtool_check_rules() -> None:
    assert f"SUCCESS: {len(ALERTS)} rules found" in promtool("check", "rules", str(RULES))


def test_promtool_unit_tests_pass() -> None:
    assert "SUCCESS" in promtool("test", "rules", str(UNIT_TESTS))


def test_the_alerts_the_issue_asks_for_each_with_a_firing_unit_test() -> None:
    assert [a["alert"] for a in alerts()] == ALERTS
    tests = yaml.safe_load(UNIT_TESTS.read_text())["tests"]
    fired = {c["alertname"] for t in tests for c in t["alert_rule_test"] if c["exp_alerts"]}
    quiet = {c["alertname"] for t in tests for c in t["alert_rule_test"] if not c["exp_alerts"]}
    assert fired == set(ALERTS) and quiet == set(ALERTS)
    for alert in alerts():
        labels = alert["labels"]
        assert isinstance(labels, dict) and labels["severity"] in {"warning", "critical"}
        assert {"summary", "description"} <= set(alert["annotations"])
