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


def _descriptions(node: object, path: str = "") -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        if isinstance(node.get("description"), str):
            found.append((path, node["description"]))
        for key, child in node.items():
            found += _descriptions(child, f"{path}.{key}")
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _descriptions(child, f"{path}[{index}]")
    return found


def test_crd_descriptions_describe_this_product() -> None:
    """`kubectl explain` text says what this operator does; the Go project is docs/compatibility.md's subject."""
    import yaml

    crd = yaml.safe_load((REPO / "config/crd/bases/dataflow.dataflow.io_dataflows.yaml").read_text())
    offending = [f"{path}: {text}" for path, text in _descriptions(crd) if "original" in text.lower()]
    assert offending == []


def test_every_connector_page_has_generated_field_tables() -> None:
    """The field tables of docs/connectors/<type>.md come from the spec models (scripts/gen_spec_docs.py)."""
    sys.path.insert(0, str(REPO / "processor/src"))
    from dataflow_processor.spec.catalog import CONNECTOR_TYPES

    for name in CONNECTOR_TYPES:
        page = (REPO / f"docs/connectors/{name}.md").read_text()
        assert f"<!-- generated: fields {name} " in page, name
        assert page.count("<!-- generated: fields") == page.count("<!-- end generated -->"), name
