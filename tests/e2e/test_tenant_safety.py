"""What a tenant who may create DataFlows in one namespace can make the operator do: nothing more.

The real runtime reconciles DataFlows whose every string is a Jinja payload, references to other
namespaces' secrets, processor images outside the allow-list, pods that a namespace refuses and
specs that the API server refuses. Each must end as text in the tenant's own objects or as phase
`Error` with a reason, never as code run, a secret read or a DataFlow stuck in `Pending`.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import wait_phase
from tests.e2e.kube import apply, get, kubectl, wait_for
from tests.e2e.operator_process import OperatorProcess
from tests.e2e.test_operator import BROKERS, DSN, dataflow, secret

pytestmark = pytest.mark.e2e

OWN_IMAGE = "registry.example.com/dataflow/processor:1"
OPERATOR_ENV = {"PROCESSOR_IMAGE": OWN_IMAGE, "PROCESSOR_IMAGE_ALLOWED_PREFIXES": "registry.example.com/team"}


def payloads(canary: Path) -> tuple[str, str]:
    """A Jinja expression and a Jinja statement that each create `canary` if ever evaluated."""
    expr = "{{ lookup('ansible.builtin.pipe', 'touch " + str(canary) + "') }}"
    stmt = "{% set x = lookup('ansible.builtin.pipe', 'touch " + str(canary) + "') %}{{ x }}"
    return expr, stmt


def test_template_text_in_a_dataflow_stays_text(operator: OperatorProcess, namespace: str, tmp_path: Path) -> None:
    canary = tmp_path / f"pwned-{uuid.uuid4().hex}"
    expr, stmt = payloads(canary)
    apply(secret("conn", namespace, {"dsn": DSN, "brokers": BROKERS}))
    df = dataflow("jinja", namespace)
    # Valid CEL that is also a Jinja expression; and a statement in other free-text fields.
    df["spec"]["transformations"] = [
        {"type": "filter", "filter": {"condition": f'record.status == "{expr}"'}},
        {"type": "mask", "mask": {"fields": [stmt], "maskChar": "#"}},
        {"type": "timestamp", "timestamp": {"fieldName": "at", "format": "{{ 7 * 7 }}"}},
    ]
    df["spec"]["sink"]["postgresql"]["table"] = stmt
    apply(df)
    wait_phase(namespace, "jinja", "Running")

    cm = get("configmap", "dataflow-jinja-spec", namespace)
    assert cm is not None
    stored = cm["data"]["spec.json"]
    live = get("dataflow", "jinja", namespace)
    assert live is not None
    # Byte for byte: the ConfigMap holds the spec as the API server stores it, serialised once.
    assert stored == json.dumps(live["spec"], sort_keys=True)
    spec = json.loads(stored)
    assert spec["transformations"][0]["filter"]["condition"] == f'record.status == "{expr}"'
    assert spec["transformations"][1]["mask"]["fields"] == [stmt]
    assert spec["transformations"][2]["timestamp"]["format"] == "{{ 7 * 7 }}"
    assert spec["sink"]["postgresql"]["table"] == stmt
    assert not canary.exists(), "a template in the DataFlow ran in the operator"


def test_template_text_in_an_error_message_stays_text(operator: OperatorProcess, namespace: str,
                                                      tmp_path: Path) -> None:
    canary = tmp_path / f"pwned-{uuid.uuid4().hex}"
    expr, _ = payloads(canary)
    apply(secret("conn", namespace, {"dsn": DSN, "brokers": BROKERS}))
    df = dataflow("jinja-key", namespace)
    # A missing key is named in the status message and an Event: the key's text goes there as is.
    df["spec"]["sink"]["postgresql"]["connectionStringSecretRef"]["key"] = expr
    apply(df)
    status = wait_phase(namespace, "jinja-key", "Error")["status"]
    assert expr in status["message"], status
    assert not canary.exists(), "a template in the DataFlow ran in the operator"


POLICY = Path(__file__).resolve().parents[2] / "config/policy/validating-admission-policy.yaml"


def foreign_ref_dataflow(name: str, ns: str, victim: str, ref_name: str) -> dict[str, Any]:
    df = dataflow(name, ns)
    df["spec"]["sink"]["postgresql"]["connectionStringSecretRef"] = {"name": ref_name, "namespace": victim,
                                                                     "key": "dsn"}
    return df


def policy_denies(df: dict[str, Any]) -> str | None:
    proc = subprocess.run(["kubectl", "apply", "--dry-run=server", "-f", "-"], input=json.dumps(df),
                          capture_output=True, text=True, timeout=60)
    return proc.stderr if proc.returncode != 0 and "denied request" in proc.stderr else None


def admitted(df: dict[str, Any]) -> bool:
    return policy_denies(df) is None


@pytest.fixture
def admission_policy_off() -> Iterator[None]:
    """The operator's own check is for DataFlows admitted without the policy (say, a chart installed
    with validation.enabled=false): the binding is removed for the test, and put back after."""
    kubectl("delete", "validatingadmissionpolicybinding", "dataflow.dataflow.io", "--ignore-not-found")
    yield
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(POLICY))


def test_admission_refuses_secrets_of_other_namespaces(namespace: str) -> None:
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(POLICY))
    df = foreign_ref_dataflow("steal", namespace, "kube-system", "db")
    # Policies load asynchronously: wait until this one answers.
    denied = wait_for("the policy to deny a foreign secret ref", lambda: policy_denies(df), timeout=120)
    assert "spec.sink.postgresql.*SecretRef.namespace" in denied, denied


def test_secrets_of_other_namespaces_are_never_read(admission_policy_off: None, operator: OperatorProcess,
                                                    namespace: str) -> None:
    victim = f"victim-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", victim)
    try:
        apply(secret("db", victim, {"dsn": "postgres://root:victim-password@db/prod"}))
        apply(secret("conn", namespace, {"dsn": DSN, "brokers": BROKERS}))
        messages = {}
        for name, ref_name in (("steal", "db"), ("probe", "does-not-exist")):
            df = foreign_ref_dataflow(name, namespace, victim, ref_name)
            # The binding's removal takes effect asynchronously too.
            wait_for("the policy to let the DataFlow in", partial(admitted, df), timeout=120)
            apply(df)
            status = wait_phase(namespace, name, "Error")["status"]
            messages[name] = status["message"]
            assert "spec.sink.postgresql.connectionStringSecretRef.namespace" in status["message"], status
            # Nothing copied, nothing learned about the other namespace.
            copied = get("secret", f"dataflow-{name}-secrets", namespace)
            assert copied is None or "victim-password" not in json.dumps(copied)
            assert get("deployment", f"dataflow-{name}", namespace) is None
            assert victim not in status["message"] and ref_name not in status["message"]
        # An existing and a missing secret elsewhere look the same: no oracle.
        assert messages["steal"] == messages["probe"]
    finally:
        kubectl("delete", "namespace", victim, "--wait=false", check=False)


def test_processor_image_must_be_allowed(operator: OperatorProcess, namespace: str) -> None:
    apply(secret("conn", namespace, {"dsn": DSN, "brokers": BROKERS}))
    apply(dataflow("theirs", namespace, processorImage="evil.example/steal-secrets:1"))
    apply(dataflow("team", namespace, processorImage="registry.example.com/team/processor:2"))
    apply(dataflow("own", namespace))
    status = wait_phase(namespace, "theirs", "Error")["status"]
    assert status["message"].startswith("spec.processorImage: evil.example/steal-secrets:1 is not allowed"), status
    assert get("deployment", "dataflow-theirs", namespace) is None
    assert get("secret", "dataflow-theirs-secrets", namespace) is None
    for name, image in (("team", "registry.example.com/team/processor:2"), ("own", OWN_IMAGE)):
        wait_phase(namespace, name, "Running")
        dep = get("deployment", f"dataflow-{name}", namespace)
        assert dep is not None and dep["spec"]["template"]["spec"]["containers"][0]["image"] == image


def test_processor_pods_pass_the_restricted_pod_security_profile(operator: OperatorProcess, namespace: str) -> None:
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    apply(secret("conn", namespace, {"dsn": DSN, "brokers": BROKERS}))
    apply(dataflow("restricted", namespace))
    wait_phase(namespace, "restricted", "Running")
    pods = json.loads(kubectl("get", "pods", "-n", namespace, "-l", "dataflow.dataflow.io/name=restricted",
                              "-o", "json"))["items"]
    assert pods
    container = pods[0]["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


def test_pods_a_namespace_refuses_show_the_reason(operator: OperatorProcess, namespace: str) -> None:
    apply({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "no-pods", "namespace": namespace},
           "spec": {"hard": {"pods": "0"}}})
    apply(secret("conn", namespace, {"dsn": DSN, "brokers": BROKERS}))
    apply(dataflow("quota", namespace))
    status = wait_phase(namespace, "quota", "Error")["status"]
    assert status["message"].startswith("Processor pod cannot be created: FailedCreate:"), status
    assert "exceeded quota" in status["message"], status


def test_a_spec_the_api_server_refuses_shows_the_reason(operator: OperatorProcess, namespace: str) -> None:
    apply(secret("conn", namespace, {"dsn": DSN, "brokers": BROKERS}))
    # Admitted (the CRD types nodeSelector as a string map), refused in the Deployment.
    apply(dataflow("badsel", namespace, nodeSelector={"disk": "fast ssd!"}))
    status = wait_phase(namespace, "badsel", "Error")["status"]
    assert f"Deployment {namespace}/dataflow-badsel" in status["message"], status
    assert "nodeSelector" in status["message"] and "fast ssd!" in status["message"], status
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "ApplyFailed"
    # Nothing of the connection secret leaks into the message, and fixing the spec recovers.
    assert "s3cr3t" not in json.dumps(status)
    kubectl("patch", "dataflow", "badsel", "-n", namespace, "--type=json",
            "-p", json.dumps([{"op": "remove", "path": "/spec/nodeSelector"}]))
    wait_phase(namespace, "badsel", "Running")


def events_for(namespace: str, name: str) -> list[dict[str, Any]]:
    items = json.loads(kubectl("get", "events", "-n", namespace, "-o", "json"))["items"]
    return [e for e in items if e.get("involvedObject", {}).get("name") == name]


def test_refusals_are_recorded_as_events(operator: OperatorProcess, namespace: str) -> None:
    apply(dataflow("ev", namespace, processorImage="evil.example/x:1"))
    wait_phase(namespace, "ev", "Error")
    event = wait_for("ImageNotAllowed event", lambda: next(
        (e for e in events_for(namespace, "ev") if e.get("reason") == "ImageNotAllowed"), None))
    assert event["type"] == "Warning" and "spec.processorImage" in event["message"]
