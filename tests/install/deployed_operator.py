"""Run the operator exactly as an installed Deployment would, but as a local process.

No container can run here, so an install test reads the operator Deployment that Helm or kustomize
created, and starts the real `ansible-operator` with that Deployment's args and env, authenticated
as that Deployment's ServiceAccount (a token from the TokenRequest API) — so the installed RBAC is
what the operator really gets. Only the listen addresses are moved to free local ports.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.e2e.kube import kubectl
from tests.e2e.operator_process import OperatorProcess, free_port


def service_account_kubeconfig(namespace: str, service_account: str, path: Path) -> Path:
    token = kubectl("create", "token", service_account, "-n", namespace, "--duration=2h").strip()
    admin = json.loads(kubectl("config", "view", "--raw", "--minify", "-o", "json"))
    cluster = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "local", "cluster": cluster}],
        "users": [{"name": service_account, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "local", "user": service_account}}],
        "current-context": "sa",
    }
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


def operator_from_deployment(deployment: dict[str, Any], workdir: Path) -> OperatorProcess:
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    namespace = deployment["metadata"]["namespace"]
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        elif item.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[item["name"]] = namespace
    kubeconfig = service_account_kubeconfig(namespace, pod["serviceAccountName"], workdir / "sa.kubeconfig")
    env["KUBECONFIG"] = str(kubeconfig)
    env["K8S_AUTH_KUBECONFIG"] = str(kubeconfig)
    args = [a for a in container.get("args", [])
            if not a.startswith(("--metrics-bind-address", "--health-probe-bind-address", "--zap-"))]
    proc = OperatorProcess(workdir / "operator.log", namespace, env=env, extra_args=args)
    return proc


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["helm", *args], capture_output=True, text=True, timeout=300, env=dict(os.environ))
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed: {proc.stderr}")
    return proc


__all__ = ["free_port", "helm", "operator_from_deployment", "service_account_kubeconfig"]


def assert_hardened(pod: dict[str, Any]) -> None:
    """The operator pod of every install: restricted securityContext, read-only root, /tmp an emptyDir.

    The image's only writable path is /tmp (its label io.dataflow.writable-paths; tests/install/test_image.py).
    """
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    containers = pod["containers"] + pod.get("initContainers", [])
    assert [c["name"] for c in pod["containers"]] == ["manager", "secret-watch"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    for container in containers:
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True, container["name"]
        assert sc["allowPrivilegeEscalation"] is False, container["name"]
        assert sc["capabilities"]["drop"] == ["ALL"], container["name"]
        if container["name"] != "secret-watch":  # it writes nothing
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], volumes


def processor_image(container: dict[str, Any]) -> str:
    return next(e["value"] for e in container["env"] if e["name"] == "PROCESSOR_IMAGE")
