"""The README's two commands, from a fresh clone: `make demo` really moves data; `make check` is
what CI runs (CI runs it for real; here its recipe is checked, running it would recurse)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require_tool

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block, "the README starts with a sh block of commands"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_readme_starts_with_the_two_commands() -> None:
    assert readme_commands() == ["make demo", "make check"]
    ci = (REPO / ".ci/run").read_text()
    assert "make check" in ci


def test_make_check_brings_the_environment_up_then_runs_the_suite() -> None:
    out = subprocess.run(["make", "-n", "check"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "env/envctl up" in out and "make test" in out, out
    assert out.index("env/envctl up") < out.index("make test"), out


def test_make_demo_from_a_fresh_clone(tmp_path: Path, kubeconfig: str) -> None:
    """The demo as a user runs it: the operator and the processor are pods of the built image on the
    environment's real node, installed with Helm, and rows arrive in PostgreSQL."""
    for tool in ("helm", "podman", "ctr"):
        require_tool(tool)
    node = os.environ.get("DATAFLOW_NODE_NAME", "")
    assert node, "DATAFLOW_NODE_NAME is not set (envctl vars)"
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    proc = subprocess.run(["make", "demo"], cwd=clone, capture_output=True, text=True, timeout=900,
                          env=dict(os.environ, DEMO_RECORDS="500"))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert re.search(r"done: 450 rows arrived; DataFlow orders is Running", out), out[-4000:]
    # `kubectl get pods -o wide` of both: Running, all containers ready, on the real node.
    for pod in (r"demo-dataflow-operator-\S+\s+2/2", r"dataflow-orders-\S+\s+1/1"):
        assert re.search(pod + rf"\s+Running\s+0\s+\S+\s+\S+\s+{re.escape(node)}\s", out), (pod, out[-4000:])
    # The demo cleans up after itself: no operator left serving, nothing left of the DataFlow.
    left = subprocess.run(["kubectl", "get", "deployments", "-n", "dataflow-demo", "-o", "name"],
                          capture_output=True, text=True, timeout=60).stdout
    assert left.strip() == "", left
