"""Generated files (CRD, admission policy) and every copy of them match their generator."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("generator", ["scripts/gen_crd.py", "scripts/gen_policy.py", "scripts/gen_spec_docs.py"])
def test_generated_files_are_current(generator: str) -> None:
    proc = subprocess.run([sys.executable, generator, "--check"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_chart_rbac_rules_match_kustomize() -> None:
    """The chart's ClusterRole rules are the kustomize ClusterRole's rules, not a second opinion."""
    import yaml

    kustomize = yaml.safe_load((REPO / "config/rbac/role.yaml").read_text())["rules"]
    chart = yaml.safe_load((REPO / "charts/dataflow-operator/files/manager-rules.yaml").read_text())
    assert chart == kustomize
