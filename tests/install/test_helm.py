"""The Helm chart: lint and template clean, and a real install that an operator then serves."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require_tool
from tests.e2e.conftest import wait_phase
from tests.e2e.kube import apply, get, kubectl, wait_for
from tests.install.deployed_operator import assert_hardened, helm, operator_from_deployment

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
CHART = str(REPO / "charts/dataflow-operator")
ALL_OPTIONS = str(Path(__file__).parent / "all-options-values.yaml")


def template(*args: str) -> dict[tuple[str, str], dict[str, Any]]:
    out = helm("template", "rel", CHART, "-n", "ops", *args).stdout
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out) if d}


@pytest.mark.parametrize("values", [[], ["-f", ALL_OPTIONS]], ids=["default", "all-options"])
def test_lint_clean(values: list[str]) -> None:
    require_tool("helm")
    out = helm("lint", "--strict", CHART, *values)
    assert "0 chart(s) failed" in out.stdout, out.stdout


def test_template_default() -> None:
    require_tool("helm")
    objs = template()
    dep = objs[("Deployment", "rel-dataflow-operator")]
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert "--leader-election-id=dataflow-operator.dataflow.io" in c["args"]
    assert "--ansible-verbosity=0" in c["args"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    # Our own local image name by default (this project publishes none), and processors run it too.
    assert c["image"] == "localhost/dataflow-operator:0.1.0"
    assert env["PROCESSOR_IMAGE"] == c["image"]
    assert_hardened(dep["spec"]["template"]["spec"])
    assert env["OPERATOR_DEPLOYMENT_NAME"] == "rel-dataflow-operator"
    assert env["PROCESSOR_IMAGE_ALLOWED_PREFIXES"] == ""  # only the operator's own processor image
    assert "WATCH_NAMESPACE" not in env  # every namespace
    # The secret watcher runs beside the runtime, on the same image, with the same hardening.
    watch = dep["spec"]["template"]["spec"]["containers"][1]
    assert watch["name"] == "secret-watch" and watch["image"] == c["image"]
    assert watch["command"] == ["python3", "roles/dataflow/files/secret_watch.py"]
    assert watch["securityContext"] == c["securityContext"]
    assert ("ValidatingAdmissionPolicy", "dataflow.dataflow.io") in objs
    assert ("ValidatingAdmissionPolicyBinding", "dataflow.dataflow.io") in objs
    assert not any(k[0] == "ServiceMonitor" for k in objs)
    # Monitoring is opt-in: no PodMonitor, PrometheusRule or dashboard without monitoring.* values.
    assert not any(k[0] in {"PodMonitor", "PrometheusRule"} or k[1].endswith("-dashboard") for k in objs)


def test_template_all_options() -> None:
    require_tool("helm")
    objs = template("-f", ALL_OPTIONS)
    assert not any(k[0] == "ValidatingAdmissionPolicy" for k in objs)
    dep = objs[("Deployment", "dataflow-op")]
    spec = dep["spec"]["template"]["spec"]
    c = spec["containers"][0]
    assert c["image"] == "registry.example/dataflow-operator:9.9.9"
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["PROCESSOR_IMAGE"] == "registry.example/dataflow-processor:9.9.9"
    assert env["PROCESSOR_IMAGE_ALLOWED_PREFIXES"] == "registry.example/team/,quay.io/ours"
    # The runtime and the Secret watch serve the same namespaces.
    assert [{e["name"]: e.get("value") for e in k.get("env", [])}.get("WATCH_NAMESPACE")
            for k in spec["containers"]] == ["team-a,team-b", "team-a,team-b"]
    assert "--max-concurrent-reconciles=8" in c["args"]
    assert "--ansible-verbosity=2" in c["args"]
    assert spec["serviceAccountName"] == "dataflow-sa"
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert spec["tolerations"][0]["key"] == "dedicated"
    assert ("ServiceMonitor", "dataflow-op") in objs
    assert_hardened(spec)
    assert {v["name"]: v for v in spec["volumes"]}["tmp"]["emptyDir"] == {"sizeLimit": "512Mi"}

    # monitoring.*: processor pods of the watched namespaces, job "dataflow-processor"; the dashboard
    # and the rules exactly as tests/monitoring checked them.
    pm = objs[("PodMonitor", "dataflow-op-processors")]
    assert pm["metadata"]["namespace"] == "ops" and pm["metadata"]["labels"]["release"] == "prom"
    assert pm["spec"]["jobLabel"] == "app"
    assert pm["spec"]["selector"]["matchLabels"] == {"app": "dataflow-processor",
                                                     "app.kubernetes.io/managed-by": "dataflow-operator"}
    assert pm["spec"]["namespaceSelector"] == {"matchNames": ["team-a", "team-b"]}
    assert pm["spec"]["podMetricsEndpoints"] == [{"port": "http", "path": "/metrics", "interval": "15s",
                                                  "scrapeTimeout": "5s"}]
    monitoring = REPO / "charts/dataflow-operator/files/monitoring"
    rule = objs[("PrometheusRule", "dataflow-op-alerts")]
    assert rule["metadata"]["labels"]["release"] == "prom"
    assert rule["spec"] == yaml.safe_load((monitoring / "prometheus-rules.yaml").read_text())
    board = objs[("ConfigMap", "dataflow-op-dashboard")]
    assert board["metadata"]["namespace"] == "grafana"
    assert {"grafana_dashboard": "1", "team": "data"}.items() <= board["metadata"]["labels"].items()
    assert board["metadata"]["annotations"] == {"grafana_folder": "DataFlow"}
    assert json.loads(board["data"]["dataflow-dashboard.json"]) == json.loads(
        (monitoring / "dataflow-dashboard.json").read_text())


def test_pod_monitor_without_watch_namespaces_scrapes_every_namespace() -> None:
    require_tool("helm")
    objs = template("--set", "monitoring.podMonitor.enabled=true", "--set", "monitoring.dashboard.enabled=true")
    assert objs[("PodMonitor", "rel-dataflow-operator-processors")]["spec"]["namespaceSelector"] == {"any": True}
    board = objs[("ConfigMap", "rel-dataflow-operator-dashboard")]
    assert board["metadata"]["namespace"] == "ops" and board["metadata"]["labels"]["grafana_dashboard"] == "1"


@pytest.fixture
def release(crd_installed: str, tmp_path: Path) -> Iterator[str]:
    ns = f"helm-{uuid.uuid4().hex[:6]}"
    name = "dfo"
    # Other suites apply the same cluster-scoped policy with kubectl; Helm must own it here.
    kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", "dataflow.dataflow.io",
            "--ignore-not-found")
    helm("install", name, CHART, "-n", ns, "--create-namespace", "--set", "image.tag=test")
    yield ns
    helm("uninstall", name, "-n", ns, "--wait", check=False)
    kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_install_serve_uninstall(release: str, tmp_path: Path) -> None:
    require_tool("helm")
    ns = release
    dep = wait_for("the operator Deployment", lambda: get("deployment", "dfo-dataflow-operator", ns))
    operator = operator_from_deployment(dep, tmp_path).start()
    try:
        apps = f"{ns}-apps"
        kubectl("create", "namespace", apps)
        apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pg", "namespace": apps},
               "stringData": {"dsn": "postgres://u:p@pg/db"}})
        sample = yaml.safe_load((REPO / "config/samples/dataflow_v1_kafka-to-postgres.yaml").read_text())
        sample["spec"]["sink"]["postgresql"]["connectionStringSecretRef"]["name"] = "pg"
        apply(sample, apps)
        assert get("validatingadmissionpolicy", "dataflow.dataflow.io", "") is not None
        df = wait_phase(apps, "kafka-to-postgres", "Running")
        assert df["status"]["observedGeneration"] == 1
        proc_dep = get("deployment", "dataflow-kafka-to-postgres", apps)
        image = proc_dep["spec"]["template"]["spec"]["containers"][0]["image"]  # type: ignore[index]
        assert image == "localhost/dataflow-operator:test"
        kubectl("delete", "dataflow", "kafka-to-postgres", "-n", apps, "--wait=true", "--timeout=90s")
        kubectl("delete", "namespace", apps, "--wait=false")
    finally:
        operator.stop()
    helm("uninstall", "dfo", "-n", ns, "--wait")
    leftovers = {
        "deployment": get("deployment", "dfo-dataflow-operator", ns),
        "serviceaccount": get("serviceaccount", "dfo-dataflow-operator", ns),
        "service": get("service", "dfo-dataflow-operator-metrics", ns),
    }
    assert leftovers == {k: None for k in leftovers}
    assert get("validatingadmissionpolicy", "dataflow.dataflow.io", "") is None
    cluster = json.loads(kubectl("get", "clusterroles,clusterrolebindings,validatingadmissionpolicies,"
                                 "validatingadmissionpolicybindings", "-o", "json"))["items"]
    assert not [o["metadata"]["name"] for o in cluster
                if o["metadata"].get("labels", {}).get("app.kubernetes.io/instance") == "dfo"]


@pytest.mark.parametrize("bad", ["replicaCount=-1", "bogus=1", "image.pullPolicy=Sometimes",
                                 "watchNamespaces[0]=Not_A_Namespace", "monitoring.bogus=1",
                                 "monitoring.podMonitor.interval=soon"])
def test_values_schema_rejects_mistakes(bad: str) -> None:
    require_tool("helm")
    proc = helm("template", "rel", CHART, "--set", bad, check=False)
    assert proc.returncode != 0 and "values don't meet the specifications of the schema" in proc.stderr, proc.stderr
