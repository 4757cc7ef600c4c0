"""The reconcile benchmark runs end to end at a tiny scale and reports what it promises.

Its figures are measured, not asserted (bench/bench_reconcile.py; docs/operator.md): this keeps the
script working, so the figures in the docs can be reproduced.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import require_tool

REPO = Path(__file__).resolve().parents[2]


def test_bench_reconcile_small(crd_installed: str) -> None:
    require_tool("ansible-operator")
    proc = subprocess.run([sys.executable, str(REPO / "bench/bench_reconcile.py"), "--single", "2", "--burst", "3",
                           "--floor", "3", "--idle", "10", "--rotate", "2"],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["single"] == 2 and result["burst"] == 3
    assert result["burst_running"] == 3  # every DataFlow of the burst reached Running
    assert 0 < result["apply_to_deployment_p50_s"] <= result["apply_to_deployment_p95_s"]
    assert result["burst_all_running_s"] > 0
    # Each DataFlow is reconciled at least twice: once to create its objects, once more when its
    # Deployment becomes ready (the dependent watch) to write Running.
    assert result["burst_reconciles"] >= 2 * 3
    assert result["floor_reconciles"] >= 3
    assert result["empty_playbook_cpu_per_reconcile_s"] > 0 and result["burst_cpu_per_reconcile_s"] > 0
    assert result["idle_dataflows"] == 5 and result["idle_mcpu_per_dataflow"] >= 0
    # Nothing changed while idle: no reconcile ran (the periodic one is hours away).
    assert result["idle_reconciles"] == 0
    assert result["rotated"] == 2 and result["secret_change_to_rolled_pod_max_s"] > 0
