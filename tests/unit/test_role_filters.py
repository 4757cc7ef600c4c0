"""The role's filter plugins: finding, looking up and resolving secret refs; phase from a Deployment."""

from __future__ import annotations

import base64
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def load(name: str) -> ModuleType:
    path = REPO / "roles/dataflow/filter_plugins" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


secrets = load("dataflow_secrets")
deployment = load("dataflow_deployment")

SPEC = {
    "source": {"type": "kafka", "kafka": {"brokersSecretRef": {"name": "k", "key": "brokers"}, "topic": "t",
                                          "sasl": {"passwordSecretRef": {"name": "k", "key": "pw", "namespace": "ops"}}}},
    "sink": {"type": "postgresql", "config": {"connectionStringSecretRef": {"name": "pg", "key": "dsn"}, "table": "t"}},
    "transformations": [
        {"type": "filter", "filter": {"condition": "$.a"}},
        {"type": "router", "router": {"routes": [
            {"condition": "$.b", "sink": {"type": "trino", "trino": {"serverURLSecretRef": {"name": "tr", "key": "url"}}}},
        ]}},
    ],
}


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def test_refs_are_found_with_literal_twin_paths() -> None:
    refs = secrets.dataflow_secret_refs(SPEC, "shop")
    assert {r["path"]: (r["namespace"], r["name"], r["key"]) for r in refs} == {
        "source.kafka.brokers": ("shop", "k", "brokers"),
        "source.kafka.sasl.password": ("ops", "k", "pw"),
        "sink.config.connectionString": ("shop", "pg", "dsn"),
        "transformations.1.router.routes.0.sink.trino.serverURL": ("shop", "tr", "url"),
    }
    # Only the DataFlow's own namespace is ever looked up.
    assert secrets.dataflow_secret_ids(refs) == ["shop/k", "shop/pg", "shop/tr"]
    assert [r["path"] for r in refs if r["foreign"]] == ["source.kafka.sasl.password"]


def test_resolution_names_missing_secret_and_key_without_values() -> None:
    refs = secrets.dataflow_secret_refs(SPEC, "shop")
    found = {
        "shop/k": [{"metadata": {"resourceVersion": "7"}, "data": {"brokers": b64("b:9092")}}],
        # Even if a lookup of another namespace had happened, a foreign ref never uses it.
        "ops/k": [{"metadata": {"resourceVersion": "9"}, "data": {"pw": b64("root-pw")}}],
        "shop/pg": [{"metadata": {"resourceVersion": "3"}, "data": {"dsn": b64("postgres://u:hunter2@h/db")}}],
        "shop/tr": [],
    }
    out = secrets.dataflow_resolve_secrets(refs, found)
    assert out["values"] == {"source.kafka.brokers": "b:9092", "sink.config.connectionString": "postgres://u:hunter2@h/db"}
    assert out["data"]["sink.config.connectionString"] == b64("postgres://u:hunter2@h/db")
    assert out["versions"] == {"shop/k": "7", "shop/pg": "3"}
    assert out["missing"] == [
        "secret shop/tr not found (referenced by transformations.1.router.routes.0.sink.trino.serverURLSecretRef)",
        "spec.source.kafka.sasl.passwordSecretRef.namespace: a secret reference may only name a Secret in the "
        "DataFlow's own namespace (omit namespace)",
    ]
    assert not any(s in m for m in out["missing"] for s in ("hunter2", "b:9092", "root-pw", "ops"))
    assert "source.kafka.sasl.password" not in out["data"]


def test_phase_follows_the_original_messages() -> None:
    assert deployment.dataflow_phase({}, 3) == {"phase": "Pending", "message": "Deployment not found",
                                                "observedGeneration": 3}
    starting = {"spec": {"replicas": 1}, "status": {}}
    assert deployment.dataflow_phase(starting, "2")["message"] == "Processor pod is starting"
    running = {"spec": {"replicas": 1}, "status": {"readyReplicas": 1}}
    assert deployment.dataflow_phase(running, 2) == {"phase": "Running", "message": "Processor pod is running",
                                                     "observedGeneration": 2}
    assert deployment.dataflow_phase({"spec": {"replicas": 0}, "status": {}}, 1)["phase"] == "Error"


def test_pods_that_cannot_be_created_show_why() -> None:
    failing: dict[str, Any] = {"spec": {"replicas": 1}, "status": {"conditions": [
        {"type": "Progressing", "status": "True"},
        {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
         "message": 'pods "dataflow-x-1" is forbidden: violates PodSecurity "restricted:latest"'}]}}
    out = deployment.dataflow_phase(failing, 4)
    assert out["phase"] == "Error"
    assert out["message"] == ('Processor pod cannot be created: FailedCreate: pods "dataflow-x-1" is forbidden: '
                              'violates PodSecurity "restricted:latest"')
    # A cleared failure (status False) is not shown; a ready pod wins over an old failure.
    failing["status"]["conditions"][1]["status"] = "False"
    assert deployment.dataflow_phase(failing, 4)["phase"] == "Pending"


def test_processor_image_allow_list() -> None:
    own = "registry.example.com/dataflow/processor:1.2"
    pick = deployment.dataflow_image
    assert pick("", own, "") == {"image": own, "error": ""}
    assert pick(own, own, "") == {"image": own, "error": ""}
    refused = pick("evil.example/x:1", own, "")
    assert refused["image"] == "" and refused["error"].startswith("spec.processorImage: evil.example/x:1 is not allowed")
    assert pick("registry.example.com/team/p:2", own, "registry.example.com/team")["image"] == "registry.example.com/team/p:2"
    # A prefix ends at a path separator: no look-alike repository or registry host gets through.
    for lookalike in ("registry.example.com/team-evil/p:2", "registry.example.com.evil.org/team/p:2"):
        assert pick(lookalike, own, "registry.example.com/team, quay.io/ours/")["error"], lookalike
    assert pick("quay.io/ours/p@sha256:ab", own, " ,quay.io/ours/")["image"] == "quay.io/ours/p@sha256:ab"


def test_filter_results_are_never_templated_again() -> None:
    from ansible.utils.unsafe_proxy import AnsibleUnsafe

    filters = secrets.FilterModule().filters()
    spec = {"sink": {"postgresql": {"tableSecretRef": {"name": "{{ lookup('pipe', 'id') }}", "key": "k"}}}}
    refs = filters["dataflow_secret_refs"](spec, "shop")
    assert isinstance(refs[0]["name"], AnsibleUnsafe)
    out = filters["dataflow_resolve_secrets"](refs, {})
    assert all(isinstance(m, AnsibleUnsafe) for m in out["missing"])
