"""Install paths on the real node: the operator runs in-cluster as a pod from the built image (its
in-cluster config, its Lease, its metrics and health ports), and serves a Kafka → PostgreSQL DataFlow
whose processor is a pod too. Both namespaces enforce the `restricted` Pod Security Standard.

The host-process install tests (tests/install) stay: they are cheaper and run without a node.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require_tool
from tests.e2e.kube import get, kubectl, wait_for
from tests.install.deployed_operator import helm
from tests.realnode.conftest import RealNode, describe, ready_pod, restricted_namespace
from tests.realnode.dataflow_flow import run_kafka_to_postgres

pytestmark = [pytest.mark.realnode, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
CHART = str(REPO / "charts/dataflow-operator")
LEASE = "dataflow-operator.dataflow.io"


def operator_pod(namespace: str, deployment: str, node: RealNode) -> dict[str, Any]:
    dep = wait_for("the operator Deployment", lambda: get("deployment", deployment, namespace))
    selector = ",".join(f"{k}={v}" for k, v in dep["spec"]["selector"]["matchLabels"].items())
    try:
        return wait_for(f"the operator pod Ready on {node.name}", lambda: ready_pod(namespace, selector, node),
                        timeout=300, interval=2)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{describe(namespace)}") from None


def watch_only(namespace: str, deployment: str, watched: str) -> None:
    """Give the installed operator WATCH_NAMESPACE, then its one replica.

    The environment is shared: an operator watching every namespace would also reconcile other
    suites' DataFlows (with its own processor image), and theirs would reconcile ours.
    """
    dep = get("deployment", deployment, namespace)
    assert dep
    name = dep["spec"]["template"]["spec"]["containers"][0]["name"]
    kubectl("patch", "deployment", deployment, "-n", namespace, "--type", "strategic", "-p", json.dumps(
        {"spec": {"replicas": 1, "template": {"spec": {"containers": [{
            "name": name, "env": [{"name": "WATCH_NAMESPACE", "value": watched}]}]}}}}))


def stop_serving(apps_namespace: str) -> None:
    """Delete the DataFlows while their operator still runs: their finalizer needs it."""
    kubectl("delete", "dataflows", "--all", "-n", apps_namespace, "--wait=true", "--timeout=120s",
            check=False, timeout=150)


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as r:
        return str(r.read().decode())


def check_operator_in_cluster(pod: dict[str, Any], namespace: str, image: str) -> None:
    """In-cluster config, the leader Lease, metrics and health: what an installed operator shows."""
    c = pod["spec"]["containers"][0]
    assert c["image"] == image
    assert not any(e["name"] in ("KUBECONFIG", "K8S_AUTH_KUBECONFIG") for e in c.get("env", []))
    name = pod["metadata"]["name"]
    lease = wait_for("the leader-election Lease", lambda: (le := get("lease", LEASE, namespace))
                     and (le["spec"].get("holderIdentity") or "").startswith(name) and le, timeout=120)
    assert lease["spec"]["holderIdentity"].startswith(name)
    ip = pod["status"]["podIP"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert http_get(f"http://{ip}:{ports['health']}/healthz") == "ok"
    assert "controller_runtime_reconcile_total" in http_get(f"http://{ip}:{ports['metrics']}/metrics")


def test_helm_install_runs_on_the_real_node(real_node: RealNode, node_image: str, apps_namespace: str,
                                            tmp_path: Path) -> None:
    require_tool("helm")
    ops = restricted_namespace("rn-helm")
    repository, tag = node_image.rsplit(":", 1)
    values = tmp_path / "values.yaml"
    # watchNamespaces: the environment is shared, and this operator must serve only its namespace.
    values.write_text(json.dumps({"image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
                                  "watchNamespaces": [apps_namespace], **real_node.scheduling()}))
    # Other suites apply the same cluster-scoped policy with kubectl; Helm must own it here.
    kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", "dataflow.dataflow.io",
            "--ignore-not-found")
    helm("install", "rn", CHART, "-n", ops, "-f", str(values))
    try:
        pod = operator_pod(ops, "rn-dataflow-operator", real_node)
        check_operator_in_cluster(pod, ops, node_image)
        run_kafka_to_postgres(apps_namespace, real_node, node_image)
    finally:
        stop_serving(apps_namespace)
        helm("uninstall", "rn", "-n", ops, "--wait", check=False)
        kubectl("delete", "namespace", ops, "--wait=false", check=False)


def test_kustomize_install_runs_on_the_real_node(real_node: RealNode, node_image: str, apps_namespace: str,
                                                 crd_installed: str) -> None:
    ns = "dataflow-operator-system"
    # The namespace first, labelled, so that every pod of the install meets `restricted`.
    kubectl("create", "namespace", ns, check=False)
    kubectl("label", "--overwrite", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/enforce-version=latest")
    kubectl("apply", "--server-side", "--force-conflicts", "-k", str(REPO / "config/default"))
    deployment = "dataflow-operator-controller-manager"
    try:
        dep = wait_for("the operator Deployment", lambda: get("deployment", deployment, ns))
        c = dep["spec"]["template"]["spec"]["containers"][0]
        # What a user does with `kustomize edit set image` and their cluster's scheduling: here the
        # locally built image, pods steered to the real node. Nothing else of the install changes.
        kubectl("patch", "deployment", deployment, "-n", ns, "--type", "strategic", "-p", json.dumps(
            {"spec": {"replicas": 0, "template": {"spec": {**real_node.scheduling(), "containers": [{
                "name": c["name"], "image": node_image, "imagePullPolicy": "Never",
                "env": [{"name": "PROCESSOR_IMAGE", "value": node_image}]}]}}}}))
        watch_only(ns, deployment, apps_namespace)
        pod = operator_pod(ns, deployment, real_node)
        check_operator_in_cluster(pod, ns, node_image)
        run_kafka_to_postgres(apps_namespace, real_node, node_image)
    finally:
        stop_serving(apps_namespace)
        # Keep the CRD (other suites use it): delete everything else the kustomization made.
        docs = [d for d in yaml.safe_load_all(kubectl("kustomize", str(REPO / "config/default")))
                if d["kind"] not in ("CustomResourceDefinition",)]
        kubectl("delete", "--ignore-not-found", "--wait=true", "--timeout=180s", "-f", "-",
                stdin=yaml.safe_dump_all(docs), check=False, timeout=240)
    assert get("deployment", deployment, ns) is None
