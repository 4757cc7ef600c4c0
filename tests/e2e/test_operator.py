"""The Ansible operator end to end: real kube-apiserver + controller-manager + kwok, real
`ansible-operator` running this repository's watches.yaml, roles and playbooks."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest

from tests.e2e.conftest import wait_phase
from tests.e2e.kube import apply, get, kubectl, wait_for
from tests.e2e.operator_process import OperatorProcess

pytestmark = pytest.mark.e2e

DSN = "postgres://dataflow:s3cr3t-Pa55word@pg.example:5432/shop"
BROKERS = "kafka-0.example:9092,kafka-1.example:9092"
SECRET_VALUES = ("s3cr3t-Pa55word", "kafka-0.example")


def secret(name: str, ns: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def dataflow(name: str, ns: str, **spec_overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "source": {"type": "kafka", "kafka": {"brokersSecretRef": {"name": "conn", "key": "brokers"},
                                              "topic": "orders"}},
        "transformations": [{"type": "filter", "filter": {"condition": "$.status == 'paid'"}}],
        "sink": {"type": "postgresql", "postgresql": {"connectionStringSecretRef": {"name": "conn", "key": "dsn"},
                                                      "table": "orders"}},
    }
    spec.update(spec_overrides)
    return {"apiVersion": "dataflow.dataflow.io/v1", "kind": "DataFlow",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def owned(ns: str, name: str) -> dict[str, dict[str, Any] | None]:
    return {
        "configmap": get("configmap", f"dataflow-{name}-spec", ns),
        "secret": get("secret", f"dataflow-{name}-secrets", ns),
        "serviceaccount": get("serviceaccount", f"dataflow-{name}-processor", ns),
        "role": get("role", f"dataflow-{name}-processor", ns),
        "rolebinding": get("rolebinding", f"dataflow-{name}-processor", ns),
        "deployment": get("deployment", f"dataflow-{name}", ns),
    }


def spec_hash(ns: str, name: str) -> str:
    dep = get("deployment", f"dataflow-{name}", ns) or {}
    return dep.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations", {}).get(
        "dataflow.dataflow.io/spec-hash", "")


def test_apply_creates_owned_objects_and_runs(operator: OperatorProcess, namespace: str) -> None:
    apply(secret("conn", namespace, {"dsn": DSN, "brokers": BROKERS}))
    apply(dataflow("orders", namespace))
    df = wait_phase(namespace, "orders", "Running")
    assert df["status"]["message"] == "Processor pod is running"
    assert df["status"]["observedGeneration"] == df["metadata"]["generation"]
    ready = {c["type"]: c["status"] for c in df["status"]["conditions"]}
    assert ready == {"Ready": "True", "SecretsResolved": "True"}

    objs = owned(namespace, "orders")
    uid = df["metadata"]["uid"]
    for kind, obj in objs.items():
        assert obj is not None, f"{kind} missing"
        refs = obj["metadata"].get("ownerReferences", [])
        assert any(r["uid"] == uid and r.get("controller") for r in refs), f"{kind} not owned: {refs}"

    spec = json.loads(objs["configmap"]["data"]["spec.json"])  # type: ignore[index]
    assert spec["sink"]["postgresql"]["connectionStringSecretRef"] == {"name": "conn", "key": "dsn"}
    resolved = {k: base64.b64decode(v).decode() for k, v in objs["secret"]["data"].items()}  # type: ignore[index]
    assert resolved == {"sink.postgresql.connectionString": DSN, "source.kafka.brokers": BROKERS}

    pod = objs["deployment"]["spec"]["template"]["spec"]  # type: ignore[index]
    container = pod["containers"][0]
    assert container["name"] == "processor"
    assert "--spec-path=/etc/dataflow/spec.json" in container["args"]
    assert f"--namespace={namespace}" in container["args"] and "--name=orders" in container["args"]
    assert pod["serviceAccountName"] == "dataflow-orders-processor"
    assert objs["deployment"]["status"].get("availableReplicas") == 1  # type: ignore[index]


def test_spec_and_secret_changes_roll_the_pod(operator: OperatorProcess, namespace: str) -> None:
    apply(secret("conn", namespace, {"dsn": DSN, "brokers": BROKERS}))
    apply(dataflow("roll", namespace))
    wait_phase(namespace, "roll", "Running")
    first = spec_hash(namespace, "roll")
    assert first

    apply(dataflow("roll", namespace, transformations=[{"type": "remove", "remove": {"fields": ["pin"]}}]))
    second = wait_for("new spec hash after a spec change",
                      lambda: (h := spec_hash(namespace, "roll")) != first and h)
    cm = get("configmap", "dataflow-roll-spec", namespace)
    assert json.loads(cm["data"]["spec.json"])["transformations"][0]["type"] == "remove"  # type: ignore[index]

    new_dsn = DSN.replace("pg.example", "pg2.example")
    apply(secret("conn", namespace, {"dsn": new_dsn, "brokers": BROKERS}))
    # Not a dependent, and the reconcile period is hours: the secret watcher starts the reconcile.
    wait_for("new spec hash after a secret change", lambda: spec_hash(namespace, "roll") not in (first, second),
             timeout=120)
    data = get("secret", "dataflow-roll-secrets", namespace)["data"]  # type: ignore[index]
    assert base64.b64decode(data["sink.postgresql.connectionString"]).decode() == new_dsn


def test_missing_secret_is_an_error_then_recovers(operator: OperatorProcess, namespace: str) -> None:
    apply(dataflow("broken", namespace))
    df = wait_phase(namespace, "broken", "Error")
    assert "secret" in df["status"]["message"] and f"{namespace}/conn" in df["status"]["message"]
    events = json.loads(kubectl("get", "events", "-n", namespace, "-o", "json"))["items"]
    warn = [e for e in events if e["type"] == "Warning" and e["involvedObject"]["name"] == "broken"]
    assert warn and warn[0]["reason"] == "SecretResolutionFailed"
    assert f"{namespace}/conn" in warn[0]["message"]

    apply(secret("conn", namespace, {"dsn": DSN}))  # the key `brokers` is still missing
    def names_missing_key() -> dict[str, Any] | None:
        d = get("dataflow", "broken", namespace)
        return d if d and "key brokers not found" in d.get("status", {}).get("message", "") else None

    df = wait_for("an error naming the missing key", names_missing_key, timeout=180)
    assert df["status"]["phase"] == "Error"

    apply(secret("conn", namespace, {"dsn": DSN, "brokers": BROKERS}))
    wait_phase(namespace, "broken", "Running", timeout=180)


def test_delete_removes_everything(operator: OperatorProcess, namespace: str) -> None:
    apply(secret("conn", namespace, {"dsn": DSN, "brokers": BROKERS}))
    apply(dataflow("gone", namespace))
    wait_phase(namespace, "gone", "Running")
    kubectl("delete", "dataflow", "gone", "-n", namespace, "--wait=true", "--timeout=90s")
    assert get("dataflow", "gone", namespace) is None
    wait_for("owned objects gone", lambda: all(v is None for v in owned(namespace, "gone").values()), timeout=60)


def test_second_reconcile_changes_nothing(operator: OperatorProcess, namespace: str) -> None:
    apply(secret("conn", namespace, {"dsn": DSN, "brokers": BROKERS}))
    df = dataflow("steady", namespace)
    df["metadata"]["annotations"] = {"ansible.sdk.operatorframework.io/reconcile-period": "2s"}
    apply(df)
    wait_phase(namespace, "steady", "Running")
    time.sleep(6)  # let the reconcile that followed the status change settle
    before = {k: v["metadata"]["resourceVersion"] for k, v in owned(namespace, "steady").items() if v}
    df_rv = get("dataflow", "steady", namespace)["metadata"]["resourceVersion"]  # type: ignore[index]
    runs_before = operator.reconciles()
    # Two more full reconciles (each takes seconds: every task is an ansible-runner round trip).
    wait_for("two more reconciles", lambda: operator.reconciles() >= runs_before + 2, timeout=120)
    after = {k: v["metadata"]["resourceVersion"] for k, v in owned(namespace, "steady").items() if v}
    assert after == before
    assert get("dataflow", "steady", namespace)["metadata"]["resourceVersion"] == df_rv  # type: ignore[index]


def test_no_secret_value_leaks(operator: OperatorProcess, namespace: str) -> None:
    apply(secret("conn", namespace, {"dsn": DSN, "brokers": BROKERS}))
    apply(dataflow("quiet", namespace))
    wait_phase(namespace, "quiet", "Running")
    apply(dataflow("noisy", namespace, sink={"type": "postgresql", "postgresql": {
        "connectionStringSecretRef": {"name": "conn", "key": "nope"}, "table": "t"}}))
    wait_phase(namespace, "noisy", "Error")
    places = {
        "configmaps": kubectl("get", "configmaps", "-n", namespace, "-o", "json"),
        "events": kubectl("get", "events", "-n", namespace, "-o", "json"),
        "dataflows": kubectl("get", "dataflows", "-n", namespace, "-o", "json"),
        "operator log": operator.log(),
    }
    for where, text in places.items():
        for value in SECRET_VALUES:
            assert value not in text, f"secret value found in {where}"
