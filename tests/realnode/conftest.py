"""Fixtures of the real-node suite: the kubelet node of the local environment and the built image.

The node (env/components/16-kubelet.sh) carries a taint and a label; pods of this suite tolerate
the one and select the other, everything else keeps landing on kwok's fake node. Servers are reached
from pods on the node's gateway address (docs/local-environment/real-node.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import require_env, require_tool
from tests.e2e.kube import get, kubectl

pytestmark = pytest.mark.realnode


@dataclass(frozen=True)
class RealNode:
    name: str
    gateway: str  # the pods' way to this machine: relays and extra listeners
    label: str
    taint: str
    containerd: str  # containerd's socket

    def scheduling(self) -> dict[str, Any]:
        """Pod-spec fields that put a pod on this node and nowhere else."""
        return {"nodeSelector": {self.label: "true"},
                "tolerations": [{"key": self.taint, "operator": "Exists", "effect": "NoSchedule"}]}


@pytest.fixture(scope="session")
def real_node(kubeconfig: str) -> RealNode:
    name, gateway, label, taint, sock = require_env(
        "DATAFLOW_NODE_NAME", "DATAFLOW_NODE_GATEWAY", "DATAFLOW_NODE_LABEL", "DATAFLOW_NODE_TAINT",
        "CONTAINERD_ADDRESS")
    node = get("node", name, "")
    assert node, f"node {name} is not registered (envctl up kubelet)"
    ready = {c["type"]: c["status"] for c in node["status"].get("conditions", [])}.get("Ready")
    assert ready == "True", f"node {name} is not Ready: {node['status'].get('conditions')}"
    return RealNode(name, gateway, label, taint, sock)


def ctr(node: RealNode, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ctr", "--address", node.containerd, "-n", "k8s.io", *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def node_image(real_node: RealNode) -> str:
    """The operator image (`make image`), loaded into the node's containerd.

    DATAFLOW_IMAGE names it; DATAFLOW_IMAGE_TAR is its `podman save` archive. Without the archive,
    the image is saved from the local podman storage. No registry is involved at any point. The
    archive is imported every time (about 30 s): an image already in containerd under the same name
    may be an older build, and a test of it would test stale code.
    """
    (ref,) = require_env("DATAFLOW_IMAGE")
    require_tool("ctr")
    tar = os.environ.get("DATAFLOW_IMAGE_TAR", "")
    with tempfile.TemporaryDirectory() as tmp:
        if not tar or not os.path.exists(tar):
            require_tool("podman")
            tar = f"{tmp}/image.tar"
            saved = subprocess.run(["podman", "save", "-o", tar, ref], capture_output=True, text=True, timeout=600)
            assert saved.returncode == 0, f"podman save {ref}: {saved.stderr}"
        imported = ctr(real_node, "images", "import", tar)
        assert imported.returncode == 0, f"ctr images import {tar}: {imported.stderr}"
    assert ref in ctr(real_node, "images", "ls", "-q").stdout.split(), f"{tar} does not hold {ref}"
    return ref


def restricted_namespace(prefix: str) -> str:
    """A namespace whose pods must meet the `restricted` Pod Security Standard."""
    ns = f"{prefix}-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", ns)
    kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/enforce-version=latest")
    return ns


@pytest.fixture
def apps_namespace(crd_installed: str) -> Iterator[str]:
    ns = restricted_namespace("rn-apps")
    yield ns
    kubectl("delete", "dataflows", "--all", "-n", ns, "--wait=true", "--timeout=90s", check=False)
    kubectl("delete", "namespace", ns, "--wait=false", check=False)


def pods(namespace: str, selector: str) -> list[dict[str, Any]]:
    out = kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json")
    return list(json.loads(out)["items"])


def ready_pod(namespace: str, selector: str, node: RealNode) -> dict[str, Any] | None:
    """The pod matching `selector` when it runs on the real node and its own probes say Ready."""
    for pod in pods(namespace, selector):
        conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
        if pod["spec"].get("nodeName") == node.name and conditions.get("Ready") == "True" \
                and not pod["metadata"].get("deletionTimestamp"):
            return pod
    return None


def describe(namespace: str) -> str:
    """What a failure message needs: the pods, where they run, and the namespace's events."""
    return (kubectl("get", "pods", "-n", namespace, "-o", "wide", check=False)
            + kubectl("get", "events", "-n", namespace, "--sort-by=.lastTimestamp", check=False)[-4000:])
