"""`kubectl apply -k config/default` installs the same operator; a DataFlow is then served."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import wait_phase
from tests.e2e.kube import apply, get, kubectl, wait_for
from tests.install.deployed_operator import assert_hardened, operator_from_deployment, processor_image

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
NS = "dataflow-operator-system"


def test_build_has_everything() -> None:
    docs = list(yaml.safe_load_all(kubectl("kustomize", str(REPO / "config/default"))))
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert {("CustomResourceDefinition", "dataflows.dataflow.dataflow.io"),
            ("ClusterRole", "dataflow-operator-manager-role"),
            ("Deployment", "dataflow-operator-controller-manager"),
            ("ValidatingAdmissionPolicy", "dataflow.dataflow.io"),
            ("ValidatingAdmissionPolicyBinding", "dataflow.dataflow.io")} <= kinds
    dep = next(d for d in docs if d["kind"] == "Deployment")
    env = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["OPERATOR_DEPLOYMENT_NAME"] == dep["metadata"]["name"]
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "localhost/dataflow-operator:0.1.0"
    assert processor_image(container) == container["image"]
    assert_hardened(dep["spec"]["template"]["spec"])


def test_processor_image_follows_a_set_image(tmp_path: Path) -> None:
    """`kustomize edit set image controller=…` in config/manager moves the processors along."""
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    kustomization = config / "manager/kustomization.yaml"
    doc = yaml.safe_load(kustomization.read_text())
    doc["images"] = [{"name": "controller", "newName": "registry.example/you/dataflow-operator", "newTag": "1.2.3"}]
    kustomization.write_text(yaml.safe_dump(doc))
    docs = list(yaml.safe_load_all(kubectl("kustomize", str(config / "default"))))
    container = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example/you/dataflow-operator:1.2.3"
    assert processor_image(container) == "registry.example/you/dataflow-operator:1.2.3"


def test_apply_serve_delete(crd_installed: str, tmp_path: Path) -> None:
    kubectl("apply", "--server-side", "--force-conflicts", "-k", str(REPO / "config/default"))
    try:
        dep = wait_for("operator Deployment", lambda: get("deployment", "dataflow-operator-controller-manager", NS))
        assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "localhost/dataflow-operator:0.1.0"
        operator = operator_from_deployment(dep, tmp_path).start()
        try:
            apps = "kustomize-apps"
            kubectl("create", "namespace", apps, check=False)
            sample = yaml.safe_load((REPO / "config/samples/dataflow_v1_router-example.yaml").read_text())
            apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "postgres-credentials",
                   "namespace": apps}, "stringData": {"dsn": "postgres://u:p@pg/db"}})
            apply(sample, apps)
            wait_phase(apps, "router-example", "Running")
            kubectl("delete", "dataflow", "router-example", "-n", apps, "--wait=true", "--timeout=90s")
            assert get("deployment", "dataflow-router-example", apps) is None
            kubectl("delete", "namespace", apps, "--wait=false")
        finally:
            operator.stop()
    finally:
        # Keep the CRD (other suites use it): delete everything else the kustomization made.
        docs = [d for d in yaml.safe_load_all(kubectl("kustomize", str(REPO / "config/default")))
                if d["kind"] not in ("CustomResourceDefinition", "Namespace")]
        kubectl("delete", "--ignore-not-found", "--wait=true", "-f", "-", stdin=yaml.safe_dump_all(docs))
    assert get("deployment", "dataflow-operator-controller-manager", NS) is None
    assert get("clusterrole", "dataflow-operator-manager-role", "") is None
