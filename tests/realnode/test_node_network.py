"""The real node's network as a pod sees it: the servers on the gateway, the API server behind the
`kubernetes` Service VIP, no route off this machine, the kubelet API closed to pods."""

from __future__ import annotations

import json
import os

import pytest

from tests.e2e.kube import apply, kubectl, wait_for
from tests.realnode.conftest import RealNode, restricted_namespace

pytestmark = pytest.mark.realnode

PROBE = """
import json, socket, ssl, urllib.request
def dial(host, port):
    s = socket.socket(); s.settimeout(5)
    try:
        s.connect((host, port)); return "open"
    except OSError as e:
        return type(e).__name__
    finally:
        s.close()
routes = [l.split()[1] for l in open("/proc/net/route").read().splitlines()[1:]]
sa = "/var/run/secrets/kubernetes.io/serviceaccount/"
ctx = ssl.create_default_context(cafile=sa + "ca.crt")
req = urllib.request.Request("https://10.0.0.1:443/version",
                             headers={"Authorization": "Bearer " + open(sa + "token").read()})
version = json.load(urllib.request.urlopen(req, context=ctx, timeout=10))["gitVersion"]
print(json.dumps({"routes": routes, "api": version, "pg": dial(GW, PG), "kubelet": dial(GW, 10250)}))
"""


def test_pod_reaches_only_the_gateway(real_node: RealNode, node_image: str) -> None:
    ns = restricted_namespace("rn-net")
    pg_port = int(os.environ.get("POSTGRES_PORT", "15432"))
    try:
        apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe", "namespace": ns}, "spec": {
            **real_node.scheduling(), "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "probe", "image": node_image, "imagePullPolicy": "Never",
                "command": ["python3", "-c", f"GW, PG = {real_node.gateway!r}, {pg_port}\n{PROBE}"],
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }]}})
        wait_for("the probe pod to finish", lambda: kubectl(
            "get", "pod", "probe", "-n", ns, "-o", "jsonpath={.status.phase}") in ("Succeeded", "Failed"),
            timeout=180, interval=1)
        out = kubectl("logs", "probe", "-n", ns)
        seen = json.loads(out.strip().splitlines()[-1])
        assert "00000000" not in seen["routes"], f"the pod has a default route: {seen['routes']}"
        assert seen["api"].startswith("v1."), seen
        assert seen["pg"] == "open", seen
        assert seen["kubelet"] == "ConnectionRefusedError", seen
    finally:
        kubectl("delete", "namespace", ns, "--wait=false", check=False)
