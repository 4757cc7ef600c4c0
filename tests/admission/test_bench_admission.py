"""The admission benchmark runs and reports both configurations (figures are for the note, not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_admission_reports_both_configurations(crd_installed: str) -> None:
    proc = subprocess.run([sys.executable, str(REPO / "bench/bench_admission.py"), "--blocks", "1",
                           "--per-block", "5", "--kubectl", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("api_create", "kubectl_apply"):
        assert set(result[key]) >= {"crd_only", "with_policy", "policy_overhead_p50_ms", "ratio_p50"}
        assert result[key]["crd_only"]["n"] == result[key]["with_policy"]["n"] > 0
    # The policy is left in force, as installed.
    policies = subprocess.run(["kubectl", "get", "validatingadmissionpolicybindings", "-o", "name"],
                              capture_output=True, text=True, check=True).stdout
    assert "dataflow.dataflow.io" in policies
