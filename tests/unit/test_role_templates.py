"""The role's manifests are pure templates: rendered here by Ansible's own templar, no cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles/dataflow"



@pytest.fixture(scope="module")
def render(role_plugins: None) -> Any:
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    source = (ROLE / "templates/objects.yaml.j2").read_text()

    def _render(spec: dict[str, Any], secret_data: dict[str, str] | None = None) -> list[dict[str, Any]]:
        variables = {
            **{k: v for k, v in defaults.items() if "lookup(" not in str(v)},
            "dataflow_processor_log_level": "debug",
            "dataflow_name": "orders", "dataflow_namespace": "shop", "dataflow_uid": "uid-1", "dataflow_spec": spec,
            "dataflow_secret_data": secret_data or {}, "dataflow_spec_hash": "abc123", "dataflow_image": "reg/proc:1",
        }
        templar = Templar(loader=DataLoader(), variables=variables)
        return [d for d in yaml.safe_load_all(templar.template(source)) if d]

    return _render


SPEC = {
    "source": {"type": "kafka", "kafka": {"brokers": ["k:9092"], "topic": "orders"}},
    "sink": {"type": "postgresql", "postgresql": {"connectionStringSecretRef": {"name": "pg", "key": "dsn"},
                                                  "table": "orders"}},
    "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
    "nodeSelector": {"disk": "ssd"},
    "tolerations": [{"key": "k", "operator": "Exists"}],
}


def by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in docs}


def test_every_object_is_owned_and_labelled(render: Any) -> None:
    docs = by_kind(render(SPEC, {"sink.postgresql.connectionString": "cG9zdGdyZXM6Ly8="}))
    assert set(docs) == {"ConfigMap", "Secret", "ServiceAccount", "Role", "RoleBinding", "Deployment"}
    for kind, doc in docs.items():
        assert doc["metadata"]["namespace"] == "shop", kind
        (owner,) = doc["metadata"]["ownerReferences"]
        assert owner == {"apiVersion": "dataflow.dataflow.io/v1", "kind": "DataFlow", "name": "orders",
                         "uid": "uid-1", "controller": True, "blockOwnerDeletion": True}
        assert doc["metadata"]["labels"]["dataflow.dataflow.io/name"] == "orders"


def test_configmap_holds_the_spec_with_refs_and_secret_holds_values(render: Any) -> None:
    docs = by_kind(render(SPEC, {"sink.postgresql.connectionString": "cG9zdGdyZXM6Ly8="}))
    assert docs["ConfigMap"]["metadata"]["name"] == "dataflow-orders-spec"
    assert json.loads(docs["ConfigMap"]["data"]["spec.json"]) == SPEC
    assert docs["Secret"]["metadata"]["name"] == "dataflow-orders-secrets"
    assert docs["Secret"]["data"] == {"sink.postgresql.connectionString": "cG9zdGdyZXM6Ly8="}


def test_deployment_runs_the_processor_as_specified(render: Any) -> None:
    dep = by_kind(render(SPEC))["Deployment"]
    assert dep["metadata"]["name"] == "dataflow-orders"
    pod = dep["spec"]["template"]
    assert pod["metadata"]["annotations"]["dataflow.dataflow.io/spec-hash"] == "abc123"
    assert dep["spec"]["selector"]["matchLabels"] == {"app": "dataflow-processor", "dataflow.dataflow.io/name": "orders"}
    (c,) = pod["spec"]["containers"]
    assert c["name"] == "processor" and c["image"] == "reg/proc:1"
    assert c["args"] == ["--spec-path=/etc/dataflow/spec.json", "--secrets-path=/etc/dataflow-secrets",
                         "--namespace=shop", "--name=orders"]
    assert c["env"] == [{"name": "LOG_LEVEL", "value": "debug"}, {"name": "HOME", "value": "/tmp"}]
    assert c["resources"] == {"limits": {"cpu": "1", "memory": "1Gi"}}
    assert pod["spec"]["nodeSelector"] == {"disk": "ssd"}
    assert pod["spec"]["tolerations"] == [{"key": "k", "operator": "Exists"}]
    assert "affinity" not in pod["spec"]
    assert pod["spec"]["serviceAccountName"] == "dataflow-orders-processor"


def test_processor_pod_meets_the_restricted_pod_security_profile(render: Any) -> None:
    pod = by_kind(render(SPEC))["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    (c,) = pod["containers"]
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}}
    # The root filesystem is read-only: /tmp (and HOME) is an emptyDir.
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}} in pod["volumes"]


def test_default_resources(render: Any) -> None:
    spec = {k: v for k, v in SPEC.items() if k in ("source", "sink")}
    dep = by_kind(render(spec))["Deployment"]
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["resources"] == {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}}


def test_template_text_in_the_spec_is_rendered_as_text(render: Any) -> None:
    # The runtime hands the DataFlow over marked unsafe (watches.yaml markUnsafe): the template
    # copies it, it never evaluates it.
    from ansible.utils.unsafe_proxy import wrap_var

    payload = "{{ lookup('ansible.builtin.pipe', 'id') }} {% raw %}x{% endraw %} {# c #}"
    spec = {"source": SPEC["source"], "sink": {"type": "postgresql", "postgresql": {"table": payload}},
            "nodeSelector": {"k": payload}}
    docs = by_kind(render(wrap_var(spec)))
    assert json.loads(docs["ConfigMap"]["data"]["spec.json"])["sink"]["postgresql"]["table"] == payload
    assert docs["Deployment"]["spec"]["template"]["spec"]["nodeSelector"] == {"k": payload}


def test_processor_role_is_least_privilege(render: Any) -> None:
    role = by_kind(render(SPEC))["Role"]
    named = [r for r in role["rules"] if r.get("resourceNames")]
    assert {(r["resources"][0], tuple(r["verbs"])) for r in named} == {
        ("dataflows", ("get",)), ("dataflows/status", ("get", "patch")),
        ("configmaps", ("get", "update", "patch")),
    }
    assert all(r["resourceNames"] in (["orders"], ["dataflow-orders-checkpoint"]) for r in named)
    unnamed = [r for r in role["rules"] if not r.get("resourceNames")]
    assert unnamed == [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}]
