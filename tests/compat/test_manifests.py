"""Manifests in the Go project's current shapes, one per feature, accepted unchanged here.

Each file in ``manifests/`` is a whole resource written the way that project's docs and samples
write it (``config:`` blocks, its field names). A manifest passes when the real API server admits it
(``kubectl apply --dry-run=server`` with the CRDs and the ValidatingAdmissionPolicy installed), when
the offline ``dataflow-processor validate`` agrees, and, for a DataFlow, when the processor can build
its pipeline from it. What each feature then *does* is tested where it is implemented; this suite
guards the promise on docs/compatibility.md that such manifests apply unchanged.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import install_crd

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
MANIFESTS = sorted((HERE / "manifests").glob("*.yaml"))
CRDS = sorted((REPO / "config/crd/bases").glob("*.yaml"))
POLICY = REPO / "config/policy/validating-admission-policy.yaml"
NAMESPACE = "compat-manifests"


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict), path
    return doc


def kubectl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", *args], capture_output=True, text=True, check=check, timeout=120)


def test_each_manifest_says_what_it_exercises() -> None:
    assert len(MANIFESTS) >= 4  # one per feature accepted so far; it only grows
    names = []
    for path in MANIFESTS:
        text = path.read_text()
        assert text.startswith("#"), f"{path.name}: start with a comment naming the feature and its source"
        doc = load(path)
        assert "namespace" not in doc["metadata"], f"{path.name}: the suite picks the namespace"
        names.append((doc["kind"], doc["metadata"]["name"]))
    assert len(names) == len(set(names)), "metadata.name must be unique per kind"


@pytest.fixture(scope="module")
def cluster(crd_installed: str) -> str:
    for crd in CRDS:
        if "dataflows.yaml" not in crd.name:  # install_crd applied and waited for DataFlow's
            kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
            kubectl("wait", "--for=condition=Established", "--timeout=120s", "-f", str(crd))
    install_crd()
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(POLICY))
    kubectl("create", "namespace", NAMESPACE, check=False)
    # The policy loads asynchronously: wait until it denies an object it must deny.
    probe = {"apiVersion": "dataflow.dataflow.io/v1", "kind": "DataFlow", "metadata": {"name": "probe"},
             "spec": {"source": {"type": "kafka", "kafka": {"brokers": [], "topic": "t"}},
                      "sink": {"type": "kafka", "kafka": {"brokers": ["k:9092"], "topic": "t"}}}}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        proc = subprocess.run(["kubectl", "apply", "--dry-run=server", "-n", NAMESPACE, "-f", "-"],
                              input=yaml.safe_dump(probe), capture_output=True, text=True, timeout=60)
        if "denied request" in proc.stdout + proc.stderr:
            return NAMESPACE
        time.sleep(1)
    pytest.fail("the ValidatingAdmissionPolicy never took effect")


@pytest.mark.parametrize("path", MANIFESTS, ids=[p.stem for p in MANIFESTS])
def test_api_server_admits(path: Path, cluster: str) -> None:
    proc = kubectl("apply", "--dry-run=server", "-n", cluster, "-f", str(path), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Warning" not in proc.stderr, proc.stderr  # e.g. unknown fields dropped by the API server


def test_offline_validate_admits_every_manifest() -> None:
    """The command a user runs before moving a manifest (one process for all files)."""
    proc = subprocess.run([sys.executable, "-m", "dataflow_processor", "validate", *map(str, MANIFESTS)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(": valid") == len(MANIFESTS), proc.stdout


@pytest.mark.parametrize("path", [p for p in MANIFESTS if load(p)["kind"] == "DataFlow"],
                         ids=[p.stem for p in MANIFESTS if load(p)["kind"] == "DataFlow"])
def test_processor_builds_the_pipeline(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataflow_processor.pipeline import Pipeline
    from dataflow_processor.spec.loader import load_spec

    monkeypatch.setenv("DATAFLOW_CHECKPOINT_DIR", str(tmp_path))
    spec = load_spec(path, None, require_resolved=False)
    pipeline = Pipeline.from_spec(spec, namespace=NAMESPACE, name=path.stem)
    assert pipeline.source.type_name == spec.source.type
